/**
 * @module
 * The shoppers' HTTP client: global fetch (undici keeps connections alive; each shopper has one
 * request in flight at a time, so connections never outnumber shoppers). Every request is timed
 * and recorded under its route template; answers are checked with valibot, since the shop is a
 * boundary like any other.
 */
import * as v from 'valibot'
import { NO_ANSWER, type Recorder } from './recorder.ts'
import { routeOf } from './routes.ts'

export type Answer<T> = {
  status: number
  /** The status was one the caller expected, and the body (when a schema was given) fit it. */
  ok: boolean
  data?: T
  /** Why it was not ok: no answer (refused, timed out…), the problem's detail, or a body that did not fit. */
  problem?: string
}

export type Request<T> = {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  path: string
  body?: unknown
  headers?: Record<string, string>
  /** Statuses that are part of the plan (a DELETE of a line the shop already removed: 404). */
  expect: readonly number[]
  /** Checks the body of an expected 2xx answer (a 404 that is part of the plan has no body to read). */
  schema?: v.GenericSchema<unknown, T>
}

export type Client = ReturnType<typeof createClient>

export function createClient({ base, recorder, timeoutMs = 30_000, token }: { base: string; recorder: Recorder; timeoutMs?: number; token?: string }) {
  const auth: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {}
  async function request<T = unknown>(r: Request<T>): Promise<Answer<T>> {
    const route = routeOf(r.method, r.path)
    const started = performance.now()
    let status: number = NO_ANSWER
    let text = ''
    try {
      const res = await fetch(base + r.path, {
        method: r.method,
        headers: { ...(r.body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...auth, ...r.headers },
        ...(r.body !== undefined ? { body: JSON.stringify(r.body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      })
      status = res.status
      // Read to the end, always: an unread body holds its connection out of the pool.
      text = await res.text()
    } catch (err) {
      const problem = describe(err)
      recorder.record(route, NO_ANSWER, performance.now() - started, false, problem)
      return { status: NO_ANSWER, ok: false, problem }
    }
    const ms = performance.now() - started
    if (!r.expect.includes(status)) {
      const problem = problemOf(text)
      recorder.record(route, status, ms, false, problem)
      return { status, ok: false, problem }
    }
    if (!r.schema || status < 200 || status > 299) {
      recorder.record(route, status, ms, true)
      return { status, ok: true }
    }
    let json: unknown
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {
      const problem = 'the body is not JSON'
      recorder.record(route, status, ms, false, problem)
      return { status, ok: false, problem }
    }
    const parsed = v.safeParse(r.schema, json)
    if (!parsed.success) {
      const problem = `unexpected body: ${v.summarize(parsed.issues).split('\n')[0]}`
      recorder.record(route, status, ms, false, problem)
      return { status, ok: false, problem }
    }
    recorder.record(route, status, ms, true)
    return { status, ok: true, data: parsed.output }
  }

  return { base, request, as: (t: string) => createClient({ base, recorder, timeoutMs, token: t }) }
}

/** What an answer was, for a message: `503 (the payment function is not running)`, `no answer (ECONNREFUSED)`. */
export const describeAnswer = (a: Answer<unknown>) => `${a.status === NO_ANSWER ? 'no answer' : a.status}${a.problem ? ` (${a.problem})` : ''}`

const describe = (err: unknown) => {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } }
  if (e?.name === 'TimeoutError') return 'timed out'
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err)
}

// The `detail` of a problem+json answer says why; other bodies are cut short.
const problemOf = (text: string) => {
  try {
    const p = JSON.parse(text) as { detail?: unknown; title?: unknown }
    if (typeof p.detail === 'string') return p.detail
    if (typeof p.title === 'string') return p.title
  } catch {
    // not JSON
  }
  return text.slice(0, 120)
}
