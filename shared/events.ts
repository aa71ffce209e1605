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
import { CloudEvent, HTTP } from 'cloudevents'
import type { Context, Handler } from 'hono'
import * as v from 'valibot'
import { withRouteMeta } from './route-meta.ts'
import { isDatabaseUnavailable } from './db.ts'
import { HttpProblem, RETRY_AFTER_SECONDS, badRequest, problemResponse, unprocessable } from './errors.ts'
import type { Logger } from './log.ts'
import type { Metrics } from './metrics.ts'
import { Text, fieldErrors } from './validate.ts'

/** What a consumer did with an event: its effect now, or none because it had it already. */
export type EventOutcome = 'handled' | 'duplicate'

/**
 * A valibot schema: the CloudEvents 1.0 context attributes (spec, "Context Attributes") a consumer
 * requires: `specversion` exactly "1.0", `id`, `source` and `type` non-empty strings; `subject`,
 * `dataschema` and `datacontenttype` strings when present, `time` an RFC 3339 timestamp. Any other
 * attribute is an extension, whose value must be of the CloudEvents type system: a string, a
 * number or a boolean (never an object or a list).
 */
export const CloudEventAttributes = v.objectWithRest({
  specversion: v.literal('1.0', 'must be "1.0"'),
  id: v.pipe(Text, v.nonEmpty('must not be empty')),
  source: v.pipe(Text, v.nonEmpty('must not be empty')),
  type: v.pipe(Text, v.nonEmpty('must not be empty')),
  subject: v.optional(v.pipe(Text, v.nonEmpty('must not be empty'))),
  dataschema: v.optional(v.pipe(Text, v.nonEmpty('must not be empty'))),
  datacontenttype: v.optional(v.pipe(Text, v.nonEmpty('must not be empty'))),
  time: v.optional(v.pipe(Text, v.isoTimestamp('must be an RFC 3339 timestamp'))),
}, v.union([Text, v.number(), v.boolean()], 'must be a string, a number or a boolean (an attribute value)'))
/** A received event's attributes, as `CloudEventAttributes` reads them (extensions included, as strings or JSON values). */
export type ReceivedEvent = v.InferOutput<typeof CloudEventAttributes>

type ConsumerOptions<S extends v.GenericSchema> = {
  /** The one CloudEvent `type` this route takes (the Trigger's filter). */
  type: string
  /** The consumer's own contract for `data`. */
  schema: S
  log: Logger
  metrics: Metrics
  handle: (data: v.InferOutput<S>, event: ReceivedEvent) => Promise<EventOutcome>
}

/**
 * A route handler that takes one CloudEvent 1.0 over HTTP (binary or structured content mode in
 * the JSON event format; batched mode is refused) of `type`, checks it, then its `data` with
 * `schema`, and only then calls `handle`. In that order, each a 400 problem (RFC 9457) when it
 * fails: the attributes (`CloudEventAttributes`: `specversion` "1.0", `id`, `source`, `type`;
 * named `ce-<name>` in binary mode), `type` the route's, the data's content type JSON
 * (`Content-Type` in binary mode; in structured mode `datacontenttype` JSON or absent, and no
 * `data_base64`), the data valid JSON; then a 422 for data the schema refuses. The broker drops
 * those, so each is logged and counted `outcome="rejected"`, and nothing happened. Answers 204 when
 * handled (or a duplicate); 503 with `Retry-After` when `handle` throws anything else (the
 * database out of reach among them, see `isDatabaseUnavailable`; never a 500), so the broker
 * retries. An `HttpProblem` 400 or 422 thrown by `handle` is permanent too, as is a PostgreSQL
 * error about the value itself (SQLSTATE class 22, a data exception, or 54, a program limit: a
 * value the database can never take), answered 422.
 *
 * @example
 * ```ts
 * app.post('/events/payment.status', onEvent({ type: 'payment.status', schema: PaymentStatusData, log, metrics,
 *   handle: async (data) => { …; return updated ? 'handled' : 'duplicate' } }))
 * ```
 */
export function onEvent<S extends v.GenericSchema>({ type, schema, log, metrics, handle }: ConsumerOptions<S>): Handler {
  // The event description reads the type and data schema from here (shared/asyncapi.ts).
  return withRouteMeta(async function consume(c: Context) {
    let event: ReceivedEvent | undefined
    try {
      const received = await readEvent(c, type)
      event = received.event
      const data = v.safeParse(schema, received.data)
      if (!data.success) throw unprocessable(`the data of this ${type} event is not valid`, fieldErrors(data.issues))
      const outcome = await handle(data.output, event).catch((err: unknown) => {
        // Retrying cannot make such a value storable: it is this event's fault.
        if (isDataException(err)) throw unprocessable(`the data of this ${type} event cannot be stored: ${(err as Error).message}`)
        throw err
      })
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
  }, { kind: 'event', type, schema })
}

// What PostgreSQL refuses for the value itself, every time: a data exception (SQLSTATE class 22:
// a NUL in text, a number out of range, …) or a program limit (class 54: JSON nested too deeply).
const isDataException = (err: unknown) =>
  typeof err === 'object' && err !== null && /^(22|54)[0-9A-Z]{3}$/.test(String((err as { code?: unknown }).code))

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i
const mediaType = (contentType: string | undefined) => (contentType ?? '').split(';')[0]!.trim().toLowerCase()
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

// Binary-mode attribute values are percent-encoded where they are not printable ASCII (the HTTP
// binding, 3.1.3.2); a value that is not valid percent-encoding is taken as it came.
const percentDecoded = (value: string) => {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/** What `readEventAttributes` found: the checked attributes, the mode, and in structured mode the `data` and `data_base64` members. */
export type EventAttributes = { event: ReceivedEvent; structured: boolean; data?: unknown; data_base64?: unknown }

/**
 * Reads the CloudEvents 1.0 attributes of an HTTP request (the HTTP protocol binding), strictly:
 * binary mode from the `ce-*` headers (percent-decoded) with `datacontenttype` the
 * `Content-Type`; structured mode from the members of the JSON object `body` (the JSON event
 * format only, `application/cloudevents+json`). Throws a 400 problem for a batch, another event
 * format, a structured body that is not a JSON object, or attributes `CloudEventAttributes`
 * refuses, naming each (`ce-<name>` in binary mode). Ours, not the SDK's `HTTP.toEvent`: that one
 * makes up an `id` and a `time` when they are missing, and reads any `specversion`.
 */
export function readEventAttributes(headers: Headers, body: string): EventAttributes {
  const contentType = headers.get('Content-Type') ?? undefined
  const media = mediaType(contentType)
  const structured = media.startsWith('application/cloudevents')
  if (media.startsWith('application/cloudevents-batch')) throw badRequest('batched CloudEvents are not accepted here; send one event per request')
  if (structured && media !== 'application/cloudevents+json') throw badRequest(`structured CloudEvents must be in the JSON event format (application/cloudevents+json), not ${media}`)

  let attributes: Record<string, unknown>
  let members: { data?: unknown; data_base64?: unknown } = {}
  if (structured) {
    let json: unknown
    try {
      json = JSON.parse(body)
    } catch {
      throw badRequest('the structured CloudEvent is not valid JSON')
    }
    if (!isObject(json)) throw badRequest('a structured CloudEvent must be a JSON object')
    const { data, data_base64, ...rest } = json
    // In the JSON event format an attribute whose value is null is absent.
    attributes = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== null))
    members = { data, data_base64 }
  } else {
    attributes = {}
    for (const [name, value] of headers) {
      if (name.startsWith('ce-')) attributes[name.slice(3)] = percentDecoded(value)
    }
    // In binary mode the data's content type is the request's.
    delete attributes.datacontenttype
    if (contentType !== undefined) attributes.datacontenttype = contentType
  }

  const parsed = v.safeParse(CloudEventAttributes, attributes)
  if (!parsed.success) {
    const errors = fieldErrors(parsed.issues).map((e) => ({ ...e, path: structured ? e.path : e.path === 'datacontenttype' ? 'Content-Type' : `ce-${e.path}` }))
    throw badRequest('not a valid CloudEvent 1.0', errors)
  }
  return { event: parsed.output, structured, ...members }
}

/** One CloudEvent 1.0 of `type` with JSON data, read before anything looks at its data (see `onEvent` for the checks and their order). */
async function readEvent(c: Context, type: string): Promise<{ event: ReceivedEvent; data: unknown }> {
  const body = await c.req.text()
  const { event, structured, data, data_base64 } = readEventAttributes(c.req.raw.headers, body)
  if (event.type !== type) throw badRequest(`this route takes ${type} events, not ${event.type}`)

  const { datacontenttype } = event
  if (structured) {
    // The JSON event format: without datacontenttype, data is JSON; data_base64 is binary data.
    if (datacontenttype !== undefined && !JSON_TYPE.test(mediaType(datacontenttype))) {
      throw badRequest('the event data must be JSON', [{ path: 'datacontenttype', message: 'must be application/json' }])
    }
    if (data_base64 !== undefined) {
      throw badRequest('the event data must be JSON', [{ path: 'data_base64', message: 'is not accepted: the data must be JSON' }])
    }
    return { event, data }
  }
  if (datacontenttype === undefined || !JSON_TYPE.test(mediaType(datacontenttype))) {
    throw badRequest('the event data must be JSON', [{ path: 'Content-Type', message: 'must be application/json' }])
  }
  if (body.trim() === '') return { event, data: undefined }
  try {
    return { event, data: JSON.parse(body) as unknown }
  } catch {
    throw badRequest('the event data is not valid JSON')
  }
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
