/**
 * @module
 * What every request did: counted by route template and status, timed into histograms. Status 0
 * stands for a request that got no answer (refused, reset, timed out).
 */
import { createHistogram, type Histogram, type Percentiles } from './histogram.ts'

export const NO_ANSWER = 0

export type RouteStats = {
  route: string
  requests: number
  errors: number
  statuses: Record<string, number>
  latency_ms: Percentiles
}

export type RecorderTotals = {
  requests: number
  /** Answers a shopper did not expect (any status outside its list), and requests with no answer. */
  errors: number
  /** 5xx answers. */
  serverErrors: number
  /** Requests with no answer. */
  unanswered: number
}

type RouteEntry = { requests: number; errors: number; statuses: Map<number, number>; latency: Histogram }

export type Recorder = ReturnType<typeof createRecorder>

export function createRecorder() {
  const routes = new Map<string, RouteEntry>()
  const overall = createHistogram()
  const totals: RecorderTotals = { requests: 0, errors: 0, serverErrors: 0, unanswered: 0 }
  // A few examples of what went wrong, for the summary: counts alone do not say why.
  const examples: string[] = []

  return {
    /** One request: its route template, the status (NO_ANSWER for none), its time, and whether it was what the caller expected. */
    record(route: string, status: number, ms: number, expected: boolean, why?: string) {
      let entry = routes.get(route)
      if (!entry) routes.set(route, (entry = { requests: 0, errors: 0, statuses: new Map(), latency: createHistogram() }))
      entry.requests += 1
      entry.statuses.set(status, (entry.statuses.get(status) ?? 0) + 1)
      totals.requests += 1
      if (status >= 500) totals.serverErrors += 1
      if (status === NO_ANSWER) totals.unanswered += 1
      else {
        // Only answers are timed: a timeout's time is the timeout, not the shop's latency.
        entry.latency.record(ms)
        overall.record(ms)
      }
      if (!expected) {
        entry.errors += 1
        totals.errors += 1
        if (examples.length < 10) examples.push(`${route} → ${status === NO_ANSWER ? 'no answer' : status}${why ? `: ${why}` : ''}`)
      }
    },
    get totals(): Readonly<RecorderTotals> {
      return totals
    },
    get examples(): readonly string[] {
      return examples
    },
    /** One row per route, busiest first. */
    routes(): RouteStats[] {
      return [...routes]
        .map(([route, e]) => ({
          route,
          requests: e.requests,
          errors: e.errors,
          statuses: Object.fromEntries([...e.statuses].sort(([a], [b]) => a - b).map(([s, n]) => [s === NO_ANSWER ? 'no answer' : String(s), n])),
          latency_ms: e.latency.summary(),
        }))
        .sort((a, b) => b.requests - a.requests || a.route.localeCompare(b.route))
    },
    latency(): Percentiles {
      return overall.summary()
    },
  }
}
