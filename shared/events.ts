/**
 * @module
 * CloudEvents in and out, answered in the RabbitMQ broker's language:
 * - 2xx (empty body) when an event is handled, or was handled before;
 * - 5xx when the failure is transient, so the broker retries it;
 * - 400/422 only for an event that can never succeed. The RabbitMQ broker acks those and the
 *   event is gone, so this module logs it and counts it (`outcome="rejected"`) itself.
 * Publishing is `fetch` + `HTTP.binary` with a timeout and a status check (the SDK's own
 * transport resolves on any status).
 */
import { randomUUID } from 'node:crypto'
import { CloudEvent, HTTP, type CloudEventV1 } from 'cloudevents'
import type { Context, Handler } from 'hono'
import * as v from 'valibot'
import { isDatabaseUnavailable } from './db.ts'
import { HttpProblem, RETRY_AFTER_SECONDS, badRequest, problemResponse, unprocessable } from './errors.ts'
import type { Logger } from './log.ts'
import type { Metrics } from './metrics.ts'
import { fieldErrors } from './validate.ts'

/** What a consumer did with an event: its effect now, or none because it had it already. */
export type EventOutcome = 'handled' | 'duplicate'

type ConsumerOptions<S extends v.GenericSchema> = {
  /** The one CloudEvent `type` this route takes (the Trigger's filter). */
  type: string
  /** The consumer's own contract for `data`. */
  schema: S
  log: Logger
  metrics: Metrics
  handle: (data: v.InferOutput<S>, event: CloudEventV1<unknown>) => Promise<EventOutcome>
}

/**
 * A route handler that takes one CloudEvent 1.0 over HTTP (binary or structured content mode;
 * batched mode is refused) of `type`, checks its `data` with `schema` and calls `handle`. Answers
 * 204 when handled (or a duplicate); 400 for something that is not such an event and 422 for
 * data the schema refuses (RFC 9457 problems; the broker drops those, so each is logged and
 * counted `outcome="rejected"`); 503 with `Retry-After` when `handle` throws anything else (the
 * database out of reach among them, see `isDatabaseUnavailable`; never a 500), so the broker
 * retries. An `HttpProblem` 400 or 422 thrown by `handle` is permanent too.
 *
 * @example
 * ```ts
 * app.post('/events/payment.status', onEvent({ type: 'payment.status', schema: PaymentStatusData, log, metrics,
 *   handle: async (data) => { …; return updated ? 'handled' : 'duplicate' } }))
 * ```
 */
export function onEvent<S extends v.GenericSchema>({ type, schema, log, metrics, handle }: ConsumerOptions<S>): Handler {
  return async function consume(c) {
    let event: CloudEventV1<unknown> | undefined
    try {
      event = await parseEvent(c, type)
      const data = v.safeParse(schema, event.data)
      if (!data.success) throw unprocessable(`the data of this ${type} event is not valid`, fieldErrors(data.issues))
      const outcome = await handle(data.output, event)
      metrics.eventsReceived.inc({ type, outcome })
      log.info('event received', { type, id: event.id, source: event.source, outcome })
      return c.body(null, 204)
    } catch (err) {
      const permanent = err instanceof HttpProblem && (err.status === 400 || err.status === 422)
      const ids = { type, id: event?.id, source: event?.source }
      if (permanent) {
        // Acked and lost by the broker: this line and the metric are all that remains of it.
        metrics.eventsReceived.inc({ type, outcome: 'rejected' })
        log.warn('event rejected', { ...ids, status: err.status, detail: err.message, errors: err.errors })
        return problemResponse(c, err.status, err.message, { errors: err.errors })
      }
      metrics.eventsReceived.inc({ type, outcome: 'failed' })
      const retryAfter = { 'Retry-After': String(RETRY_AFTER_SECONDS) }
      // An outage is not this event's fault: a warning per delivery, not an error with its stack.
      if (isDatabaseUnavailable(err)) {
        log.warn('event deferred: the database cannot be reached; the broker will retry it', { ...ids, err })
        return problemResponse(c, 503, 'the database cannot be reached now; retry the event shortly', { headers: retryAfter })
      }
      log.error('event failed; the broker will retry it', { ...ids, err })
      return problemResponse(c, 503, 'the event could not be handled now; retry it', { headers: retryAfter })
    }
  }
}

async function parseEvent(c: Context, type: string): Promise<CloudEventV1<unknown>> {
  const headers = Object.fromEntries(c.req.raw.headers.entries())
  const body = await c.req.text()
  let parsed: CloudEventV1<unknown> | CloudEventV1<unknown>[]
  try {
    parsed = HTTP.toEvent({ headers, body })
  } catch (err) {
    throw badRequest(`not a valid CloudEvent: ${(err as Error).message}`)
  }
  if (Array.isArray(parsed)) throw badRequest('batched CloudEvents are not accepted here')
  if (parsed.type !== type) throw badRequest(`this route takes ${type} events, not ${parsed.type}`)
  // Structured mode with a JSON string body, or a non-JSON content type: data may be text.
  if (typeof parsed.data === 'string') {
    try {
      return { ...parsed, data: JSON.parse(parsed.data) as unknown }
    } catch {
      throw unprocessable('the event data is not JSON')
    }
  }
  return parsed
}

/**
 * One event to publish, as CloudEvents 1.0 attributes: `type` (`order.created`), `source` (a URI
 * reference, `/shop/order`), `data` (sent as JSON), `id` (default: a new UUID; pass a stable one
 * so that a resend can be recognised), `subject`, and `time` (RFC 3339; default: now).
 */
export type OutgoingEvent = { type: string; source: string; data: unknown; id?: string; subject?: string; time?: string }
/** Publishes one event; resolves when the broker accepted it (2xx), rejects otherwise (then it may be sent again with the same `id`). */
export type Publisher = (event: OutgoingEvent) => Promise<void>

type PublisherOptions = {
  /** The broker's ingress URL (`K_SINK`, set by a SinkBinding). Unset: every publish fails. */
  sink: string | undefined
  metrics: Metrics
  timeoutMs?: number
  fetch?: typeof globalThis.fetch
}

/**
 * A publisher that POSTs each event to `sink` in CloudEvents 1.0 binary content mode (`ce-*`
 * headers, JSON body); it resolves only when the broker answered 2xx (the RabbitMQ broker's 202
 * comes after RabbitMQ confirmed the message), and rejects on any other status, a network error,
 * no `sink`, or no answer within `timeoutMs` (default 3,000 ms). Counts
 * `events_published_total{type, outcome="sent"|"failed"}`.
 *
 * @example
 * ```ts
 * const publish = createPublisher({ sink: config.K_SINK, metrics })
 * await publish({ type: 'order.created', source: '/shop/order', id: row.id, data })
 * ```
 */
export function createPublisher({ sink, metrics, timeoutMs = 3_000, fetch = globalThis.fetch }: PublisherOptions): Publisher {
  return async function publish({ type, source, data, id = randomUUID(), subject, time = new Date().toISOString() }) {
    try {
      if (!sink) throw new Error('no broker to publish to: K_SINK is not set')
      const event = new CloudEvent({ specversion: '1.0', type, source, id, time, datacontenttype: 'application/json', data, ...(subject ? { subject } : {}) }, false)
      const { headers, body } = HTTP.binary(event)
      const res = await fetch(sink, {
        method: 'POST',
        headers: headers as Record<string, string>,
        body: body as string,
        signal: AbortSignal.timeout(timeoutMs),
      })
      await res.body?.cancel()
      if (!res.ok) throw new Error(`the broker answered ${res.status} to ${type} ${id}`)
      metrics.eventsPublished.inc({ type, outcome: 'sent' })
    } catch (err) {
      metrics.eventsPublished.inc({ type, outcome: 'failed' })
      throw err
    }
  }
}
