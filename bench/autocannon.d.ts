// The part of autocannon 9's API the benchmarks use (it ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  export type RequestParams = {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string | Buffer
  }
  export type Request = RequestParams & {
    setupRequest?: (request: RequestParams, context: Record<string, unknown>) => RequestParams | undefined
  }
  export type Options = RequestParams & {
    url: string
    connections?: number
    duration?: number
    amount?: number
    timeout?: number
    overallRate?: number
    requests?: Request[]
  }
  type Histogram = { average: number; mean: number; min: number; max: number; total?: number; p50: number; p99: number }
  export type Result = {
    duration: number
    requests: Histogram & { total: number }
    latency: Histogram
    errors: number
    timeouts: number
    non2xx: number
    statusCodeStats: Record<string, { count: number }>
  }
  export type Instance = EventEmitter & PromiseLike<Result> & { stop(): void }
  export default function autocannon(options: Options): Instance
}
