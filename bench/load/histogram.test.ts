import { describe, expect, it } from 'vitest'
import { bucketOf, createHistogram, highestIn } from './histogram.ts'
import { seededRandom } from './random.ts'

// The nearest-rank percentile of a sorted list: what the histogram approximates.
const exact = (sorted: number[], p: number) => sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!

describe('the latency histogram', () => {
  it('is exact below 256 µs and for the max', () => {
    const h = createHistogram()
    for (const ms of [0.001, 0.002, 0.003, 0.1, 0.25]) h.record(ms)
    expect(h.count).toBe(5)
    expect(h.percentile(50)).toBe(0.003)
    expect(h.percentile(100)).toBe(0.25)
    expect(h.max).toBe(0.25)
    expect(h.summary()).toEqual({ p50: 0.003, p90: 0.25, p99: 0.25, max: 0.25 })
  })

  it('answers 0 when empty, and the one value when there is one', () => {
    expect(createHistogram().summary()).toEqual({ p50: 0, p90: 0, p99: 0, max: 0 })
    const h = createHistogram()
    h.record(12.3456)
    expect(h.summary()).toEqual({ p50: 12.346, p90: 12.346, p99: 12.346, max: 12.346 })
  })

  it('is within 1 % of the exact percentiles over a long-tailed sample', () => {
    const random = seededRandom(7)
    const h = createHistogram()
    const values: number[] = []
    for (let i = 0; i < 50_000; i++) {
      // Log-normal-ish: mostly a few ms, a tail into seconds.
      const ms = Math.round(Math.exp(1 + 1.2 * (random() + random() + random() - 1.5) * 2) * 1000) / 1000
      values.push(ms)
      h.record(ms)
    }
    values.sort((a, b) => a - b)
    for (const p of [1, 10, 50, 90, 99, 99.9, 100]) {
      const want = exact(values, p)
      const got = h.percentile(p)
      expect(got, `p${p}`).toBeGreaterThanOrEqual(want) // never flatters
      expect(got / want - 1, `p${p}`).toBeLessThan(0.01)
    }
    expect(h.max).toBe(values.at(-1))
    expect(h.mean).toBeCloseTo(values.reduce((a, b) => a + b, 0) / values.length, 2)
  })

  it('has buckets that hold their values, in order, within 0.8 %', () => {
    let last = -1
    for (let us = 0; us < 300_000; us += 1 + Math.floor(us / 500)) {
      const b = bucketOf(us)
      expect(b).toBeGreaterThanOrEqual(last)
      expect(highestIn(b)).toBeGreaterThanOrEqual(us)
      expect(highestIn(b) - us).toBeLessThanOrEqual(Math.max(0, us / 128))
      last = b
    }
    for (const us of [2 ** 20 - 1, 2 ** 20, 2 ** 31, 2 ** 32 - 1]) {
      expect(highestIn(bucketOf(us))).toBeGreaterThanOrEqual(us)
      expect(highestIn(bucketOf(us)) / us - 1).toBeLessThan(0.008)
    }
  })

  it('merges into the histogram of all recordings', () => {
    const [a, b, both] = [createHistogram(), createHistogram(), createHistogram()]
    const random = seededRandom(3)
    for (let i = 0; i < 2_000; i++) {
      const ms = random() * 200
      ;(i % 3 ? a : b).record(ms)
      both.record(ms)
    }
    a.merge(b)
    expect(a.count).toBe(both.count)
    expect(a.summary()).toEqual(both.summary())
    expect(a.mean).toBeCloseTo(both.mean, 6)
  })

  it('counts latencies longer than an hour without breaking', () => {
    const h = createHistogram()
    h.record(5 * 3_600_000)
    expect(h.percentile(50)).toBeGreaterThan(3_600_000)
  })
})
