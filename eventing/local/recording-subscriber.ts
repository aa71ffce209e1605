/**
 * @module
 * A stand-in for a Knative Service that an event is delivered to: a real HTTP server on
 * 127.0.0.1 that records every request and answers what it is scripted to. Plain Node, no test
 * framework: the broker tests use it, and so does benchmark 5 at run time.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One request as the subscriber got it; `n` counts from 1 in arrival order. */
export type ReceivedRequest = { path: string; headers: Record<string, string>; body: Buffer; n: number }

/**
 * What to answer: an HTTP status, or a full answer. `hold` delays the answer until it settles, and
 * the request counts in `inFlight` meanwhile (to see a Trigger's parallelism).
 */
export type Answer = number | { status: number; headers?: Record<string, string>; body?: string; hold?: Promise<unknown> }

/**
 * A running subscriber. `url` is `http://127.0.0.1:<port>` (no trailing slash); `received` grows
 * as requests arrive (clear it with `received.length = 0`); `inFlight` and `maxInFlight` count
 * requests not yet answered, now and at most; `answer` may be replaced while it runs; `close()`
 * stops it and drops open connections.
 */
export type Subscriber = {
  url: string
  received: ReceivedRequest[]
  inFlight: number
  maxInFlight: number
  answer: (request: ReceivedRequest) => Answer | Promise<Answer>
  close(): Promise<void>
}

/**
 * Starts a subscriber on a free port of 127.0.0.1 that records each request and answers with
 * `answer` (default: 204 No Content). If `answer` throws, the connection is destroyed (as a
 * crashed service would), which a broker sees as a network error.
 */
export async function startSubscriber(answer: Subscriber['answer'] = () => 204): Promise<Subscriber> {
  const subscriber: Subscriber = { url: '', received: [], inFlight: 0, maxInFlight: 0, answer, close: async () => {} }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]))
      const request = { path: req.url ?? '/', headers, body: Buffer.concat(chunks), n: subscriber.received.length + 1 }
      subscriber.received.push(request)
      subscriber.inFlight += 1
      subscriber.maxInFlight = Math.max(subscriber.maxInFlight, subscriber.inFlight)
      try {
        const a = await subscriber.answer(request)
        const full = typeof a === 'number' ? { status: a } : a
        await full.hold
        res.writeHead(full.status, full.headers ?? {})
        res.end(full.body)
      } finally {
        subscriber.inFlight -= 1
      }
    })().catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  subscriber.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  subscriber.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  return subscriber
}
