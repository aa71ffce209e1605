import { describe, expect, it } from 'vitest'
import { UsageError, benchmarkNames, parseOptions, parseSeconds } from './options.ts'

describe('parseOptions', () => {
  it('runs everything for 10 s runs over 3 rounds by default', () => {
    const o = parseOptions([])
    expect(o.benchmarks).toEqual([...benchmarkNames])
    expect(o).toMatchObject({ quick: false, rounds: 3, durationS: 10, warmupS: 2, coldStarts: 10, orders: 1000 })
  })

  it('shortens every run with --quick, keeping at least 3 rounds', () => {
    expect(parseOptions(['--quick'])).toMatchObject({ quick: true, rounds: 3, durationS: 2, warmupS: 1 })
  })

  it('takes benchmarks by name or number, in the order they run', () => {
    expect(parseOptions(['events', '1']).benchmarks).toEqual(['overhead', 'events'])
    expect(() => parseOptions(['nope'])).toThrow(UsageError)
    expect(() => parseOptions(['9'])).toThrow(UsageError)
  })

  it('takes --rounds of 3 or more and durations with units', () => {
    expect(parseOptions(['--rounds', '5', '--duration', '500ms', '--warmup', '1s'])).toMatchObject({ rounds: 5, durationS: 0.5, warmupS: 1 })
    expect(() => parseOptions(['--rounds', '2'])).toThrow(/at least 3/)
    expect(() => parseOptions(['--bogus'])).toThrow(UsageError)
  })
})

describe('parseSeconds', () => {
  it('reads ms, s, m and bare seconds', () => {
    expect(parseSeconds('250ms', 'x')).toBe(0.25)
    expect(parseSeconds('10s', 'x')).toBe(10)
    expect(parseSeconds('1.5m', 'x')).toBe(90)
    expect(parseSeconds('3', 'x')).toBe(3)
    expect(() => parseSeconds('0s', 'x')).toThrow(UsageError)
    expect(() => parseSeconds('ten', 'x')).toThrow(UsageError)
  })
})
