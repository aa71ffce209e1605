/**
 * @module
 * Latencies, in the manner of an HDR histogram: values in microseconds, counted in buckets that
 * are exact below 256 µs and then 128 to each power of two, so any percentile is within 0.8 % of
 * the true value however long the run. Memory stays a few thousand counters, never one number
 * per request.
 */

const SUB_BITS = 7
const SUB = 1 << SUB_BITS // 128 buckets per power of two
const EXACT = SUB * 2 // 0..255 µs counted one by one
// 2^32 - 1 µs is 71 minutes: what a latency above that is counted as (clz32 reads 32 bits).
const LARGEST = 0xffffffff

/** The bucket of a value (µs, a whole number ≥ 0). */
export function bucketOf(us: number): number {
  if (us < EXACT) return us
  const shift = 31 - Math.clz32(us) - SUB_BITS // so that us >> shift is in 128..255
  return EXACT + (shift - 1) * SUB + ((us >>> shift) - SUB)
}

/** The highest value a bucket holds (what it reports, so that percentiles never flatter). */
export function highestIn(bucket: number): number {
  if (bucket < EXACT) return bucket
  const shift = Math.floor((bucket - EXACT) / SUB) + 1
  const sub = ((bucket - EXACT) % SUB) + SUB
  return (sub + 1) * 2 ** shift - 1
}

export type Percentiles = { p50: number; p90: number; p99: number; max: number }

export type Histogram = {
  /** Records one latency in milliseconds (a fraction is fine; negative counts as 0). */
  record(ms: number): void
  readonly count: number
  /** The latency (ms) that `p` percent of the recordings are at or under; 0 when empty. */
  percentile(p: number): number
  readonly max: number
  readonly mean: number
  /** p50, p90, p99 and the max, in ms. */
  summary(): Percentiles
  /** Adds another histogram's recordings to this one. */
  merge(other: Histogram): void
  forEachBucket(fn: (bucket: number, n: number) => void): void
  readonly minUs: number
  readonly sumUs: number
}

export function createHistogram(): Histogram {
  let counts = new Float64Array(1024)
  let total = 0
  let maxUs = 0
  let minUs = Infinity
  let sumUs = 0

  const add = (bucket: number, n: number) => {
    if (bucket >= counts.length) {
      const grown = new Float64Array(Math.max(bucket + 1, counts.length * 2))
      grown.set(counts)
      counts = grown
    }
    counts[bucket]! += n
  }

  return {
    record(ms: number) {
      const us = Math.min(LARGEST, Math.max(0, Math.round(ms * 1000)))
      add(bucketOf(us), 1)
      total += 1
      sumUs += us
      if (us > maxUs) maxUs = us
      if (us < minUs) minUs = us
    },
    get count() {
      return total
    },
    percentile(p: number): number {
      if (total === 0) return 0
      // The nearest-rank definition: the smallest value with at least p % of recordings at or below it.
      const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, p)) / 100) * total))
      let seen = 0
      for (let b = 0; b < counts.length; b++) {
        seen += counts[b]!
        if (seen >= rank) return Math.min(Math.max(highestIn(b), minUs), maxUs) / 1000
      }
      return maxUs / 1000
    },
    get max() {
      return maxUs / 1000
    },
    get mean() {
      return total ? sumUs / total / 1000 : 0
    },
    summary(): Percentiles {
      return { p50: this.percentile(50), p90: this.percentile(90), p99: this.percentile(99), max: this.max }
    },
    merge(other: Histogram) {
      other.forEachBucket((bucket, n) => add(bucket, n))
      total += other.count
      sumUs += other.sumUs
      if (other.count) {
        maxUs = Math.max(maxUs, Math.round(other.max * 1000))
        minUs = Math.min(minUs, other.minUs)
      }
    },
    forEachBucket(fn: (bucket: number, n: number) => void) {
      for (let b = 0; b < counts.length; b++) if (counts[b]) fn(b, counts[b]!)
    },
    get minUs() {
      return minUs
    },
    get sumUs() {
      return sumUs
    },
  }
}
