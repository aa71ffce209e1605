import { describe, expect, it, vi } from 'vitest'
import { nextCron, parseCron, parseSchedule, runSchedule } from './cron.ts'

const at = (iso: string) => new Date(iso)
const next = (expr: string, after: string) => parseSchedule(expr).next(at(after)).toISOString()

describe('parseCron', () => {
  it('reads *, numbers, lists, ranges and steps', () => {
    const cron = parseCron('*/15 1,2,3 1-5 */4 1-5/2')
    expect([...cron.minutes]).toEqual([0, 15, 30, 45])
    expect([...cron.hours]).toEqual([1, 2, 3])
    expect([...cron.days]).toEqual([1, 2, 3, 4, 5])
    expect([...cron.months]).toEqual([1, 5, 9])
    expect([...cron.weekdays]).toEqual([1, 3, 5])
    expect([...parseCron('5/20 * * * *').minutes]).toEqual([5, 25, 45]) // a/n runs to the end
  })

  it('takes 7 for Sunday and a seconds field first when there are 6 fields', () => {
    expect([...parseCron('0 0 * * 7').weekdays]).toEqual([0])
    expect([...parseCron('*/20 * * * * *').seconds]).toEqual([0, 20, 40])
    expect([...parseCron('* * * * *').seconds]).toEqual([0])
  })

  it.each([
    ['* * * *', /expected 5 fields/],
    ['60 * * * *', /minute "60" is outside 0-59/],
    ['* 24 * * *', /hour "24"/],
    ['* * 0 * *', /day of month "0"/],
    ['* * * 13 *', /month "13"/],
    ['* * * * 8', /day of week "8"/],
    ['*/0 * * * *', /step of 0/],
    ['5-1 * * * *', /backwards/],
    ['a * * * *', /"a", not a number/],
    ['1/2/3 * * * *', /more than one/],
    ['* * * JAN *', /not a number/],
  ])('refuses %s', (expr, message) => {
    expect(() => parseCron(expr)).toThrow(message)
  })
})

describe('next fire time (UTC)', () => {
  it.each([
    ['*/5 * * * *', '2024-05-01T10:02:30Z', '2024-05-01T10:05:00.000Z'],
    ['*/5 * * * *', '2024-05-01T10:05:00Z', '2024-05-01T10:10:00.000Z'], // strictly after
    ['*/5 * * * *', '2024-05-01T23:59:00Z', '2024-05-02T00:00:00.000Z'],
    ['0 3 * * *', '2024-05-01T10:00:00Z', '2024-05-02T03:00:00.000Z'],
    ['30 8 1 * *', '2024-12-15T00:00:00Z', '2025-01-01T08:30:00.000Z'], // across a year
    ['0 0 29 2 *', '2025-01-01T00:00:00Z', '2028-02-29T00:00:00.000Z'], // leap day
    ['0 12 * * 1-5', '2024-05-04T13:00:00Z', '2024-05-06T12:00:00.000Z'], // Saturday → Monday
    ['0 0 13 * 5', '2024-05-01T00:00:00Z', '2024-05-03T00:00:00.000Z'], // day 13 OR Friday
    ['0 0 */10 * 5', '2024-05-02T00:00:00Z', '2024-05-03T00:00:00.000Z'], // a step is not "any": OR as well
    ['0 0 13 * *', '2024-05-01T00:00:00Z', '2024-05-13T00:00:00.000Z'],
    ['*/10 * * * * *', '2024-05-01T10:00:01.500Z', '2024-05-01T10:00:10.000Z'],
    ['@hourly', '2024-05-01T10:00:00Z', '2024-05-01T11:00:00.000Z'],
  ])('%s after %s is %s', (expr, after, expected) => {
    expect(next(expr, after)).toBe(expected)
  })

  it('never fires on 30 February', () => {
    expect(() => nextCron(parseCron('0 0 30 2 *'), at('2024-01-01T00:00:00Z'))).toThrow(/never fires/)
  })

  it('reads @every as an interval from the last fire', () => {
    expect(next('@every 250ms', '2024-05-01T10:00:00.000Z')).toBe('2024-05-01T10:00:00.250Z')
    expect(next('@every 2m', '2024-05-01T10:00:00.000Z')).toBe('2024-05-01T10:02:00.000Z')
    expect(() => parseSchedule('@every often')).toThrow(/unknown descriptor/)
  })
})

describe('runSchedule', () => {
  it('fires at each due time until stopped', () => {
    vi.useFakeTimers({ now: at('2024-05-01T10:04:59Z') })
    try {
      const fire = vi.fn()
      const stop = runSchedule(parseSchedule('*/5 * * * *'), fire)
      vi.advanceTimersByTime(999)
      expect(fire).not.toHaveBeenCalled()
      vi.advanceTimersByTime(1)
      expect(fire).toHaveBeenCalledTimes(1)
      vi.advanceTimersByTime(5 * 60_000)
      expect(fire).toHaveBeenCalledTimes(2)
      stop()
      vi.advanceTimersByTime(60 * 60_000)
      expect(fire).toHaveBeenCalledTimes(2)
    } finally {
      vi.useRealTimers()
    }
  })
})
