/**
 * @module
 * HTTP load with autocannon, in this process (pinned to the load cores). Latency is recorded from
 * autocannon's per-response event at full precision: its own histogram has 1 ms steps, too coarse
 * for a p50 of 2 ms. A warm-up run comes first and is thrown away (JIT, pools, caches).
 */
import { readFile } from 'node:fs/promises'
import autocannon, { type RequestParams } from 'autocannon'
import { percentile } from './stats.ts'

export type LoadSpec = {
  /** Base URL, `http://127.0.0.1:8082`. */
  url: string
  connections: number
  durationS: number
  warmupS?: number
  /** The fixed part of every request. */
  request?: RequestParams
  /** The varying part, asked for each request (a random id, another user's token). */
  next?: () => RequestParams
  /** Requests per second over all connections (a probe), instead of as fast as answered. */
  rate?: number
  /** Stop after this many requests instead of after `durationS`. */
  amount?: number
  /** The server's pid: its CPU time over the measured run gives the CPU cost per request. */
  serverPid?: number
}

export type LoadResult = {
  requests: number
  seconds: number
  rps: number
  /** Latency in ms over every response, whatever its status. */
  p50?: number
  p99?: number
  /** Responses by status; `errors` are connections that failed or timed out. */
  statuses: Record<string, number>
  errors: number
  /**
   * The server's CPU time per answered request, in µs (user + system, from /proc): unlike req/s
   * it hardly moves when other work on the machine takes turns on the server's core.
   */
  cpuUs?: number
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  if (spec.warmupS) await once({ ...spec, durationS: spec.warmupS })
  return once(spec)
}

async function once({ url, connections, durationS, request = {}, next, rate, amount, serverPid }: LoadSpec): Promise<LoadResult> {
  const latencies: number[] = []
  const cpuBefore = serverPid ? await cpuSeconds(serverPid) : undefined
  const statuses: Record<string, number> = {}
  // Every request is described in `requests`: autocannon takes the path only from there (or the URL).
  const setupRequest = next
    ? (req: RequestParams) => {
        const n = next()
        return { ...req, ...n, headers: { ...req.headers, ...n.headers } }
      }
    : undefined
  const instance = autocannon({
    url,
    connections,
    duration: durationS,
    ...(amount ? { amount } : {}),
    timeout: 30,
    ...(rate ? { overallRate: rate } : {}),
    requests: [{ ...request, ...(setupRequest ? { setupRequest } : {}) }],
  })
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    latencies.push(ms)
    statuses[status] = (statuses[status] ?? 0) + 1
  })
  const result = await instance
  const requests = latencies.length
  const cpuAfter = serverPid ? await cpuSeconds(serverPid) : undefined
  const bad = requests - Object.entries(statuses).reduce((sum, [status, n]) => sum + (status.startsWith('2') ? n : 0), 0) + result.errors
  // A run where many requests fail measured something else than the route: say so, loudly.
  if (bad > Math.max(10, requests * 0.01)) {
    throw new Error(`${url}${request.path ?? ''}: ${bad} of ${requests} requests failed (${JSON.stringify(statuses)}, ${result.errors} connection errors)`)
  }
  return {
    requests,
    seconds: result.duration,
    rps: requests / result.duration,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    statuses,
    errors: result.errors,
    ...(cpuBefore !== undefined && cpuAfter !== undefined && requests > 0 ? { cpuUs: ((cpuAfter - cpuBefore) / requests) * 1e6 } : {}),
  }
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 1/100 s). */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  if (!stat) return undefined
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Responses that were not 2xx, and failed connections: a run with any is not a clean run. */
export function failures(r: LoadResult): string | undefined {
  const bad = Object.entries(r.statuses).filter(([s]) => !s.startsWith('2'))
  if (bad.length === 0 && r.errors === 0) return undefined
  return [...bad.map(([s, n]) => `${n}× ${s}`), ...(r.errors ? [`${r.errors} connection errors`] : [])].join(', ')
}
