/**
 * @module
 * The one form an event takes inside the local broker, which is the form eventing-rabbitmq gives
 * it in RabbitMQ: `headers` = the CloudEvent attributes (`datacontenttype` under `content-type`,
 * every extension under its own name) and `body` = the data, byte for byte. An event comes in over
 * HTTP in binary or structured mode and always leaves in binary mode.
 */
import { CloudEvent, HTTP } from 'cloudevents'

export type StoredEvent = { headers: Record<string, string>; body: Buffer }

export type Parsed = { ok: true; event: StoredEvent } | { ok: false; reason: string }

type HttpHeaders = Record<string, string | string[] | undefined>

const required = ['id', 'source', 'type', 'specversion'] as const

/**
 * Reads a CloudEvent from an HTTP request or response, checked with the SDK (`HTTP.toEvent` and
 * `validate()`). The attributes are taken as sent: the SDK would invent a `time` and reformat one.
 */
export function parseHttpEvent(rawHeaders: HttpHeaders, body: Buffer): Parsed {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(rawHeaders)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value
  }
  const contentType = headers['content-type'] ?? ''
  if (contentType.startsWith('application/cloudevents-batch')) return { ok: false, reason: 'batched CloudEvents are not accepted' }
  try {
    const parsed = HTTP.toEvent({ headers, body: body.toString('utf8') })
    if (Array.isArray(parsed)) return { ok: false, reason: 'batched CloudEvents are not accepted' }
    if (!(parsed instanceof CloudEvent) || parsed.validate() !== true) return { ok: false, reason: 'not a valid CloudEvent' }
  } catch (err) {
    const { message, errors } = err as { message?: string; errors?: unknown }
    return { ok: false, reason: `not a valid CloudEvent: ${message}${Array.isArray(errors) && errors.length ? ` ${JSON.stringify(errors)}` : ''}` }
  }
  const event = contentType.startsWith('application/cloudevents') ? fromStructured(body) : fromBinary(headers, body)
  const missing = required.filter((name) => !event.headers[name])
  if (missing.length > 0) return { ok: false, reason: `the CloudEvent has no ${missing.join(', ')}` }
  if (event.headers.specversion !== '1.0') return { ok: false, reason: `specversion ${event.headers.specversion} is not 1.0` }
  return { ok: true, event }
}

function fromBinary(headers: Record<string, string>, body: Buffer): StoredEvent {
  const attributes: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('ce-')) attributes[name.slice(3)] = value
  }
  if (headers['content-type']) attributes['content-type'] = headers['content-type']
  return { headers: attributes, body }
}

function fromStructured(body: Buffer): StoredEvent {
  const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>
  const attributes: Record<string, string> = {}
  for (const [name, value] of Object.entries(json)) {
    if (name === 'data' || name === 'data_base64' || value === null || value === undefined) continue
    attributes[name === 'datacontenttype' ? 'content-type' : name] = typeof value === 'string' ? value : JSON.stringify(value)
  }
  const { data, data_base64: base64 } = json as { data?: unknown; data_base64?: unknown }
  if (typeof base64 === 'string') return { headers: attributes, body: Buffer.from(base64, 'base64') }
  if (data === undefined) return { headers: attributes, body: Buffer.alloc(0) }
  // In the JSON format, data with no datacontenttype is JSON, and JSON data is the value itself.
  attributes['content-type'] ??= 'application/json'
  const json_ = /[/+]json(;|$)/.test(attributes['content-type'])
  return { headers: attributes, body: Buffer.from(typeof data === 'string' && !json_ ? data : JSON.stringify(data)) }
}

/** True when an HTTP response carries a CloudEvent (a reply): `ce-*` headers or structured mode. */
export function carriesEvent(headers: HttpHeaders) {
  const contentType = headers['content-type']
  return headers['ce-id'] !== undefined || (typeof contentType === 'string' && contentType.startsWith('application/cloudevents'))
}

/**
 * The headers of a binary-mode request for `event`: what `HTTP.binary` writes, but exactly the
 * stored attributes. Header values must be visible ASCII, so other characters are percent-encoded
 * (as the CloudEvents HTTP binding says).
 */
export function binaryHeaders(event: StoredEvent): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(event.headers)) {
    const encoded = value.replace(/[^\x20-\x7e]+/g, (s) => encodeURIComponent(s))
    out[name === 'content-type' ? name : `ce-${name}`] = encoded
  }
  return out
}

/** The same event with more (extension) attributes. */
export function withAttributes(event: StoredEvent, attributes: Record<string, string | undefined>): StoredEvent {
  const headers = { ...event.headers }
  for (const [name, value] of Object.entries(attributes)) if (value !== undefined) headers[name] = value
  return { headers, body: event.body }
}

/** What a log line says about an event. */
export function describeEvent({ headers }: StoredEvent) {
  return { type: headers.type, id: headers.id, source: headers.source }
}
