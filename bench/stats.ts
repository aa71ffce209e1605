/**
 * @module
 * The arithmetic of a benchmark: medians over rounds, latency percentiles, ratios, and the order
 * in which contenders take turns. Pure, so that it is tested and not trusted.
 */

/** The middle value (the mean of the two middle ones for an even count); undefined when empty. */
export function median(values: readonly number[]): number | undefined {
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return undefined
  const sorted = [...finite].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * The p-th percentile (0..100) by the nearest-rank method, as latency tools report it: the
 * smallest value that at least p % of the values are less than or equal to. Undefined when empty.
 */
export function percentile(values: ArrayLike<number>, p: number): number | undefined {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`a percentile is 0..100, not ${p}`)
  const n = values.length
  if (n === 0) return undefined
  const sorted = Float64Array.from(values).sort()
  const rank = Math.max(1, Math.ceil((p / 100) * n))
  return sorted[rank - 1]
}

/** subject ÷ baseline; undefined when either is missing or the baseline is 0. */
export function ratio(subject: number | undefined, baseline: number | undefined): number | undefined {
  if (subject === undefined || baseline === undefined || !Number.isFinite(subject) || !Number.isFinite(baseline)) return undefined
  if (baseline === 0) return undefined
  return subject / baseline
}

/**
 * The order of runs: every contender once per round, in the order given (subject, baseline,
 * subject, baseline, …), so that drift on the machine (another job, a warming cache) falls on
 * both alike instead of on whichever ran last.
 */
export function alternation<T extends string>(contenders: readonly T[], rounds: number): { round: number; contender: T }[] {
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`rounds must be a whole number ≥ 1, not ${rounds}`)
  if (new Set(contenders).size !== contenders.length) throw new Error(`contenders must be distinct: ${contenders.join(', ')}`)
  const order: { round: number; contender: T }[] = []
  for (let round = 1; round <= rounds; round++) for (const contender of contenders) order.push({ round, contender })
  return order
}
