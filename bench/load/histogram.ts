/**
 * @module
 * Latency percentiles from Node's HDR histogram (`perf_hooks.createHistogram`, HdrHistogram_c
 * underneath): latencies counted in microseconds to 3 significant figures, so a percentile is
 * within 0.1 % of the true value however long the run, in a few tens of KB whatever the number of
 * requests.
 */
import { createHistogram as createHdrHistogram } from 'node:perf_hooks'

/** Milliseconds, to the microsecond. */
export type Percentiles = { p50: number; p90: number; p99: number; max: number }

export type Histogram = {
  /** Records one latency in milliseconds (a fraction is fine; under 1 µs counts as 1 µs). */
  record(ms: number): void
  /** p50, p90 and p99 (each the top of its bucket, so never below the true value, yet never above the max) and the exact max; all 0 when empty. */
  summary(): Percentiles
}

export function createHistogram(): Histogram {
  const hdr = createHdrHistogram()
  // Kept here because the HDR histogram's own max is the top of the max's bucket, not the value.
  let maxUs = 0
  return {
    record(ms) {
      // The HDR histogram counts whole numbers from 1 up.
      const us = Math.max(1, Math.round(ms * 1000))
      hdr.record(us)
      if (us > maxUs) maxUs = us
    },
    summary() {
      const at = (p: number) => Math.min(hdr.percentile(p), maxUs) / 1000
      return { p50: at(50), p90: at(90), p99: at(99), max: maxUs / 1000 }
    },
  }
}
