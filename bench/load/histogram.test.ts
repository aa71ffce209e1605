import { describe, expect, it } from 'vitest'
import { createHistogram } from './histogram.ts'

describe('the latency summary', () => {
  it('gives p50, p90, p99 within 0.1 % above the true value, and the exact max', () => {
    const h = createHistogram()
    // 1, 2, …, 10 000 ms, shuffled a little: the nearest-rank percentiles are 5 000, 9 000 and 9 900 ms.
    for (let i = 0; i < 10_000; i++) h.record(((i * 7_919) % 10_000) + 1)
    const { p50, p90, p99, max } = h.summary()
    for (const [got, want] of [[p50, 5_000], [p90, 9_000], [p99, 9_900]] as const) {
      expect(got).toBeGreaterThanOrEqual(want)
      expect(got / want - 1).toBeLessThan(0.001)
    }
    expect(max).toBe(10_000)
  })

  it('answers 0 when empty, and the one value, to the µs, when there is one', () => {
    expect(createHistogram().summary()).toEqual({ p50: 0, p90: 0, p99: 0, max: 0 })
    const h = createHistogram()
    h.record(12.3456)
    expect(h.summary()).toEqual({ p50: 12.346, p90: 12.346, p99: 12.346, max: 12.346 })
  })

  it('takes answers under a microsecond and over an hour', () => {
    const h = createHistogram()
    h.record(0)
    h.record(0.0004)
    h.record(5 * 3_600_000)
    expect(h.summary()).toMatchObject({ p50: 0.001, max: 5 * 3_600_000 })
  })
})
