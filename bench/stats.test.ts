import { describe, expect, it } from 'vitest'
import { alternation, median, percentile, ratio } from './stats.ts'

describe('median', () => {
  it('takes the middle of an odd count and the mean of the middle two of an even one', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([7])).toBe(7)
  })

  it('ignores values that are not finite, and has no median of nothing', () => {
    expect(median([])).toBeUndefined()
    expect(median([Number.NaN, 5, Number.POSITIVE_INFINITY])).toBe(5)
  })

  it('does not reorder its input', () => {
    const values = [3, 1, 2]
    median(values)
    expect(values).toEqual([3, 1, 2])
  })
})

describe('percentile', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i) // 100..1, unsorted

  it('uses the nearest rank: p50 of 1..100 is 50, p99 is 99, p100 is the maximum', () => {
    expect(percentile(hundred, 50)).toBe(50)
    expect(percentile(hundred, 99)).toBe(99)
    expect(percentile(hundred, 100)).toBe(100)
    expect(percentile(hundred, 0)).toBe(1)
  })

  it('works on typed arrays and on small samples', () => {
    expect(percentile(Float64Array.from([0.5, 2.5, 1.5]), 50)).toBe(1.5)
    expect(percentile([10, 20], 99)).toBe(20)
    expect(percentile([], 50)).toBeUndefined()
  })

  it('refuses a percentile outside 0..100', () => {
    expect(() => percentile([1], 101)).toThrow(RangeError)
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError)
  })
})

describe('ratio', () => {
  it('divides subject by baseline', () => {
    expect(ratio(9, 10)).toBeCloseTo(0.9)
    expect(ratio(15, 10)).toBe(1.5)
  })

  it('has no ratio to a missing or zero baseline', () => {
    expect(ratio(1, 0)).toBeUndefined()
    expect(ratio(undefined, 1)).toBeUndefined()
    expect(ratio(1, undefined)).toBeUndefined()
    expect(ratio(Number.NaN, 1)).toBeUndefined()
  })
})

describe('alternation', () => {
  it('runs every contender once per round, in turn', () => {
    expect(alternation(['subject', 'baseline'], 3).map((r) => `${r.round}:${r.contender}`)).toEqual([
      '1:subject',
      '1:baseline',
      '2:subject',
      '2:baseline',
      '3:subject',
      '3:baseline',
    ])
  })

  it('takes any number of baselines', () => {
    expect(alternation(['a', 'b', 'c'], 2).map((r) => r.contender)).toEqual(['a', 'b', 'c', 'a', 'b', 'c'])
  })

  it('refuses no rounds, fractional rounds and duplicate names', () => {
    expect(() => alternation(['a'], 0)).toThrow(RangeError)
    expect(() => alternation(['a'], 1.5)).toThrow(RangeError)
    expect(() => alternation(['a', 'a'], 1)).toThrow(/distinct/)
  })
})
