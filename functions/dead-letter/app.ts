/**
 * The dead-letter function: every Trigger's deadLetterSink. It keeps each CloudEvent that ran out
 * of retries, with the broker's `knativeerror*` extensions, so nothing is lost without a trace,
 * and sends them again to their Broker when an operator asks (a redrive, redrive.ts).
 * It takes any type, so it parses events itself instead of using `onEvent` (one fixed type).
 */
import { HTTP, type CloudEventV1 } from 'cloudevents'
import type { Context } from 'hono'
import { Counter } from 'prom-client'
import * as v from 'valibot'
import type { Pool } from '../../shared/db.ts'
import { HttpProblem, badRequest, problemResponse, unsupportedMediaType, type FieldError } from '../../shared/errors.ts'
import { readEventAttributes, type ReceivedEvent } from '../../shared/events.ts'
import { createApp } from '../../shared/http.ts'
import type { LogFields, Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { Page, Text, fieldErrors, validate } from '../../shared/validate.ts'
import { RedriveFilters, createRedrive } from './redrive.ts'

const Required = v.pipe(Text, v.nonEmpty('is required'))
// The broker's extensions fill their columns when they make sense; the raw values stay in `extensions`.
const lenient = <S extends v.GenericSchema>(schema: S) => v.fallback(v.optional(schema), undefined)
const HttpStatus = v.pipe(v.union([v.string(), v.number()]), v.transform(String), v.regex(/^\d{3}$/), v.transform(Number))

// What the SDK parsed. Only the identity is required: the sink keeps anything it can name.
const DeadLetter = v.looseObject({
  id: Required,
  source: Required,
  type: Required,
  specversion: v.string(),
  subject: v.optional(v.string('must be a string')),
  time: v.optional(v.string()),
  datacontenttype: v.optional(v.string('must be a string')),
  dataschema: v.optional(v.string('must be a string')),
  data: v.unknown(),
  data_base64: v.optional(v.string()),
  knativeerrordest: lenient(v.string()),
  knativeerrorcode: lenient(HttpStatus),
  knativeerrordata: lenient(v.string()),
})
type DeadLetter = v.InferOutput<typeof DeadLetter>

// The attributes with columns of their own (and those of spec 0.3, which the SDK also reads);
// every other key is an extension.
const ATTRIBUTES = new Set(['specversion', 'id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'dataschema',
  'data', 'data_base64', 'datacontentencoding', 'schemaurl'])

/** A valibot schema: the query of `GET /events`, `limit`, `offset` and an event `type` to show alone. */
export const DeadLetterListQuery = v.strictObject({
  ...Page,
  type: v.optional(v.pipe(Text, v.trim(), v.nonEmpty('must not be empty'), v.maxLength(200, 'must be at most 200 characters'))),
})

const COLUMNS = `id, source, type, specversion, subject, "time", datacontenttype, dataschema, data, data_text, data_base64,
  extensions, error_dest, error_code, error_data, received_at, deliveries, redriven_at, redrives, redrive_error`

const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i
// A binary-mode body is text unless its bytes are not UTF-8; then it stays bytes (data_base64).
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Logs why a request is refused (with `fields`) and makes the 400 to throw. */
type Reject = (detail: string, fields?: LogFields & { errors?: FieldError[] }) => Error

type DeadLetterDeps = {
  pool: Pool
  log: Logger
  metrics: Metrics
  /** Event type → the ingress URL of the Broker that carries it, where a redrive sends it (BROKER_URLS); default none. */
  brokerUrls?: Record<string, string>
  /** How long a Broker may take to accept one redriven event (default 3,000 ms). */
  redriveTimeoutMs?: number
}

/**
 * The dead-letter function's app (routes on `createApp`; internal only, the ingress never routes
 * it):
 * - `POST /`: one CloudEvent 1.0 (binary or structured content mode, no batches; its attributes
 *   checked as every event route checks them, see `readEventAttributes`; its data anything), with
 *   the broker's `knativeerrordest`, `knativeerrorcode` and `knativeerrordata` extensions. Stored once per (`source`, `id`): a redelivery only counts `deliveries`. 204 when
 *   stored; 400 (an RFC 9457 problem, logged, and the broker drops it) for what is not a CloudEvent
 *   or cannot ever be stored; 503 for a database failure, so the broker delivers it again. Counts
 *   `events_dead_lettered_total{type}` once per event.
 *   A dead letter that comes back after a redrive (it failed again) waits for the next one.
 * - `GET /events?limit&offset&type`: the operator's view, newest first, `{ items, total, limit,
 *   offset }`, each item with its attributes, data (`data` JSON, `data_text` or `data_base64`),
 *   `extensions`, `error_*` columns, `received_at`, `deliveries`, and `redriven_at`, `redrives`
 *   and `redrive_error`.
 * - `POST /internal/dead-letters/redrive` with an optional JSON body `{ ids?, type?, limit? }`
 *   (1..1000, default 100): sends the stored dead letters not redriven yet, oldest first, to the
 *   Broker that carries each type (`brokerUrls`), with their original ids, and marks those sent;
 *   a concurrent redrive never sends one twice. Answers 200 `{ redriven, failed, events: [{ source,
 *   id, type, outcome, broker?, error? }] }` (see redrive.ts); 400 for a bad body, 415 for a body
 *   that is not JSON.
 */
export function deadLetterApp({ pool, log, metrics, brokerUrls = {}, redriveTimeoutMs }: DeadLetterDeps) {
  const app = createApp({ log, metrics, pool })
  const redrive = createRedrive({ pool, log, metrics, brokerUrls, ...(redriveTimeoutMs ? { timeoutMs: redriveTimeoutMs } : {}) })
  const deadLettered = new Counter({
    name: 'events_dead_lettered_total',
    help: 'CloudEvents the brokers dead-lettered, by type (each counted once, however often redelivered).',
    labelNames: ['type'] as const,
    registers: [metrics.registry],
  })

  // The broker acks a 400 and the request is gone: this line is all that remains of it.
  const reject: Reject = (detail, { errors, ...fields } = {}) => {
    log.warn('dead letter rejected', { ...fields, detail, errors })
    return badRequest(detail, errors)
  }

  app.post('/', async (c) => {
    const { event, extensions } = await readEvent(c, reject)
    const ids = { type: event.type, id: event.id, source: event.source }
    let data: ReturnType<typeof dataColumns>
    try {
      data = dataColumns(event)
    } catch (err) {
      // JSON nested deeper than a stack holds (a 64 KiB body can be 30,000 levels deep), which
      // PostgreSQL's jsonb would refuse too (54001): it can never be stored.
      deadLettered.inc({ type: event.type })
      throw reject(`this event cannot be stored: ${err instanceof Error ? err.message : String(err)}`, ids)
    }
    let deliveries: number
    let redrives: number
    try {
      const { rows } = await pool.query<{ deliveries: number; redrives: number }>({
        name: 'deadletter-store',
        text: `INSERT INTO deadletter.events (source, id, type, specversion, subject, "time", datacontenttype, dataschema,
                 data, data_text, data_base64, extensions, error_dest, error_code, error_data)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12::jsonb, $13, $14, $15)
               ON CONFLICT (source, id) DO UPDATE SET deliveries = deadletter.events.deliveries + 1,
                 -- Back after a redrive, it failed again: it waits for the next one, with this failure.
                 redriven_at = NULL, extensions = EXCLUDED.extensions,
                 error_dest = EXCLUDED.error_dest, error_code = EXCLUDED.error_code, error_data = EXCLUDED.error_data
               RETURNING deliveries, redrives`,
        values: [event.source, event.id, event.type, event.specversion, event.subject ?? null, event.time ?? null,
          event.datacontenttype ?? null, event.dataschema ?? null, data.json, data.text, data.base64,
          JSON.stringify(extensions), event.knativeerrordest ?? null, event.knativeerrorcode ?? null, event.knativeerrordata ?? null],
      })
      const row = rows[0]!
      deliveries = row.deliveries
      redrives = row.redrives
    } catch (err) {
      // Data PostgreSQL can never store (a NUL character in text or JSON: class 22; JSON nested
      // too deeply: class 54): retrying cannot help, so it is counted and logged here, and the
      // broker drops it.
      if (pgErrorClass(err) === '22' || pgErrorClass(err) === '54') {
        deadLettered.inc({ type: event.type })
        throw reject(`this event cannot be stored: ${err instanceof Error ? err.message : String(err)}`, ids)
      }
      // Anything else is transient: a 5xx makes the broker deliver the dead letter again.
      log.error('dead letter not stored; the broker will retry it', { ...ids, err })
      return problemResponse(c, 503, 'the dead letter could not be stored now; retry it')
    }
    // A redelivery is the same dead letter: count it once.
    if (deliveries === 1) deadLettered.inc({ type: event.type })
    log.warn('event dead-lettered', {
      ...ids,
      knativeerrordest: extensions.knativeerrordest,
      knativeerrorcode: extensions.knativeerrorcode,
      deliveries,
      ...(redrives ? { redrives } : {}),
    })
    return c.body(null, 204)
  })

  // The operator's view. Not under /api, so the ingress never routes it.
  app.get('/events', validate('query', DeadLetterListQuery), async (c) => {
    const { limit, offset, type } = c.req.valid('query')
    const [page, count] = await Promise.all([
      pool.query({
        name: 'deadletter-list',
        text: `SELECT ${COLUMNS} FROM deadletter.events WHERE $1::text IS NULL OR type = $1
               ORDER BY received_at DESC, source DESC, id DESC LIMIT $2 OFFSET $3`,
        values: [type ?? null, limit, offset],
      }),
      pool.query<{ total: number }>({
        name: 'deadletter-count',
        text: 'SELECT count(*)::int AS total FROM deadletter.events WHERE $1::text IS NULL OR type = $1',
        values: [type ?? null],
      }),
    ])
    return c.json({ items: page.rows, total: count.rows[0]!.total, limit, offset })
  })

  // The operator's (npm run redrive) and never the ingress's: it has no /api prefix.
  app.post('/internal/dead-letters/redrive', async (c) => c.json(await redrive(await redriveFilters(c))))

  return app
}

/** The redrive's filters: from a JSON body, or none for an empty one (everything waiting, up to the default limit). */
async function redriveFilters(c: Context): Promise<RedriveFilters> {
  const text = await c.req.text()
  let body: unknown = {}
  if (text.trim() !== '') {
    if (!JSON_TYPE.test(c.req.header('Content-Type') ?? '')) throw unsupportedMediaType('application/json')
    try {
      body = JSON.parse(text)
    } catch {
      throw badRequest('the request body is not valid JSON')
    }
  }
  const filters = v.safeParse(RedriveFilters, body)
  if (!filters.success) throw badRequest('the request body is not valid', fieldErrors(filters.issues))
  return filters.output
}

/** One CloudEvent, binary or structured, as the SDK reads it, and its extensions; anything else is a 400. */
async function readEvent(c: Context, reject: Reject): Promise<{ event: DeadLetter; extensions: Record<string, unknown> }> {
  const headers = Object.fromEntries(c.req.raw.headers.entries())
  const bytes = new Uint8Array(await c.req.arrayBuffer())
  let body: string | Buffer
  try {
    body = utf8.decode(bytes)
  } catch {
    body = Buffer.from(bytes)
  }
  // The attributes, checked as every event route checks them (CloudEvents 1.0: id, source, type,
  // specversion); the SDK would make up an id and a time for an event without them, and a dead
  // letter is keyed by its id. The data stays whatever it is.
  let attributes: ReceivedEvent
  try {
    attributes = readEventAttributes(c.req.raw.headers, typeof body === 'string' ? body : '').event
  } catch (err) {
    if (err instanceof HttpProblem) throw reject(err.message, { errors: err.errors })
    throw err
  }
  let parsed: CloudEventV1<unknown> | CloudEventV1<unknown>[]
  try {
    parsed = HTTP.toEvent({ headers, body })
  } catch (err) {
    throw reject(`not a CloudEvent: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (Array.isArray(parsed)) throw reject('a batch of CloudEvents is not accepted here; send one event per request')
  const event = v.safeParse(DeadLetter, { ...parsed, time: attributes.time })
  if (!event.success) throw reject('not a valid CloudEvent', { errors: fieldErrors(event.issues) })
  // As received, before the schema read the broker's extensions into columns.
  const extensions = Object.fromEntries(Object.entries(parsed).filter(([key, value]) => !ATTRIBUTES.has(key) && value !== undefined))
  return { event: event.output, extensions }
}

/** The data in exactly one of `data` (JSON text), `data_text` or `data_base64`, or none. */
function dataColumns({ data, data_base64, datacontenttype }: DeadLetter) {
  const none = { json: null, text: null, base64: null }
  if (data_base64 !== undefined) return { ...none, base64: data_base64 }
  // An empty binary-mode body is an event without data (the SDK reads it as '').
  if (data === undefined || data === '') return none
  if (typeof data !== 'string') return { ...none, json: JSON.stringify(data) }
  // A string is JSON only when the event says so and it parses; otherwise it is kept as text.
  if (datacontenttype && JSON_TYPE.test(datacontenttype) && parsesAsJson(data)) return { ...none, json: data }
  return { ...none, text: data }
}

const parsesAsJson = (s: string) => {
  try {
    JSON.parse(s)
    return true
  } catch {
    return false
  }
}

/** The SQLSTATE class (its first two characters) of a PostgreSQL error, if it is one. */
const pgErrorClass = (err: unknown) =>
  typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code.slice(0, 2) : undefined
