import { afterEach, describe, expect, it, vi } from 'vitest'
import { parseSchedule } from './cron.ts'

// Starts `text` at `now` (fake clock) and answers the fake times at which it fired.
function ticks(text: string, now: string, forMs: number, timezone?: string): string[] {
  vi.useFakeTimers({ now: new Date(now) })
  const fired: string[] = []
  const stop = parseSchedule(text, timezone).start(() => fired.push(new Date().toISOString()))
  vi.advanceTimersByTime(forMs)
  stop()
  vi.advanceTimersByTime(forMs)
  return fired
}

afterEach(() => {
  vi.useRealTimers()
})

describe('parseSchedule', () => {
  it('fires a cron on its wall-clock times, in UTC, until stopped', () => {
    expect(ticks('*/5 * * * *', '2024-05-01T10:04:59Z', 10 * 60_000)).toEqual(['2024-05-01T10:05:00.000Z', '2024-05-01T10:10:00.000Z'])
  })

  it("reads a cron in the PingSource's timezone", () => {
    // 09:00 in Berlin is 07:00 UTC in summer time.
    expect(ticks('0 9 * * *', '2024-05-01T06:59:00Z', 2 * 60_000, 'Europe/Berlin')).toEqual(['2024-05-01T07:00:00.000Z'])
  })

  it('takes a seconds field first when there are 6 fields, and robfig’s a/n', () => {
    expect(ticks('*/20 * * * * *', '2024-05-01T10:00:00.500Z', 60_000)).toEqual(['2024-05-01T10:00:20.000Z', '2024-05-01T10:00:40.000Z', '2024-05-01T10:01:00.000Z'])
    expect(ticks('5/20 * * * *', '2024-05-01T10:00:00Z', 60 * 60_000)).toEqual(['2024-05-01T10:05:00.000Z', '2024-05-01T10:25:00.000Z', '2024-05-01T10:45:00.000Z'])
  })

  it('fires @every at a fixed interval from the start', () => {
    expect(ticks('@every 250ms', '2024-05-01T10:00:00.100Z', 800)).toEqual(['2024-05-01T10:00:00.350Z', '2024-05-01T10:00:00.600Z', '2024-05-01T10:00:00.850Z'])
    expect(ticks('@every 2m', '2024-05-01T10:00:00Z', 5 * 60_000)).toHaveLength(2)
  })

  it.each([
    ['* * * *', /schedule "\* \* \* \*": .*five/],
    ['* * * * * * *', /requires exactly 5 or 6 parts/],
    ['60 * * * *', /minute/],
    ['0 0 30 2 *', /never fires/],
    ['@every often', /use @every <n>ms\|s\|m\|h/],
    ['@every 0s', /at least 1 ms/],
    ['@reboot', /schedule "@reboot"/],
  ])('refuses %s, naming it', (text, message) => {
    expect(() => parseSchedule(text)).toThrow(message)
  })

  it('refuses an unknown timezone when parsed, not at the first tick', () => {
    expect(() => parseSchedule('0 9 * * *', 'Nowhere/City')).toThrow(/schedule "0 9 \* \* \*": .*Nowhere\/City/)
  })
})
