/**
 * @module
 * Redrive: the stored dead letters sent again, each to the Broker that carries its type, as the
 * event it was (its id, attributes, extensions and data), so that the consumer that failed gets it
 * once more and the others, which had it, dedupe it by id or business key. For an operator after
 * an outage, instead of editing the database.
 */
import { Counter } from 'prom-client'
import * as v from 'valibot'
import { withTransaction, type Pool } from '../../shared/db.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { Text, bodyInt } from '../../shared/validate.ts'

/**
 * Which dead letters a redrive takes, of those not redriven yet: `ids` (CloudEvent ids, from any
 * source), `type`, at most `limit` (1..1000, default 100), oldest first. Each filter is optional.
 */
export const RedriveFilters = v.strictObject({
  ids: v.optional(
    v.pipe(
      v.array(v.pipe(Text, v.nonEmpty('must not be empty'), v.maxLength(200, 'must be at most 200 characters')), 'must be a list of ids'),
      v.minLength(1, 'must have at least 1 id'),
      v.maxLength(1000, 'must have at most 1000 ids'),
    ),
  ),
  type: v.optional(v.pipe(Text, v.trim(), v.nonEmpty('must not be empty'), v.maxLength(200, 'must be at most 200 characters'))),
  limit: v.optional(bodyInt(1, 1000), 100),
})
/** Which stored dead letters a redrive takes, as `RedriveFilters` parses them. */
export type RedriveFilters = v.InferOutput<typeof RedriveFilters>

/** One dead letter a redrive took: `redriven` to `broker`, or `failed` with the `error`. */
export type RedrivenEvent = { source: string; id: string; type: string; outcome: 'redriven' | 'failed'; broker?: string; error?: string }
/** What a redrive did: how many events it sent again, how many it could not, and each of them. */
export type RedriveResult = { redriven: number; failed: number; events: RedrivenEvent[] }

type StoredEvent = {
  source: string
  id: string
  type: string
  specversion: string
  subject: string | null
  time: Date | null
  datacontenttype: string | null
  dataschema: string | null
  /** The JSON data as text (`null` JSON stays `'null'`), else null. */
  data_json: string | null
  data_text: string | null
  data_base64: string | null
  extensions: Record<string, unknown>
}

type RedriveDeps = {
  pool: Pool
  log: Logger
  metrics: Metrics
  /** Event type → the ingress URL of the Broker that carries it (BROKER_URLS). */
  brokerUrls: Record<string, string>
  /** How long a Broker may take to accept one event (default 3,000 ms). */
  timeoutMs?: number
}

/**
 * A redrive function: `redrive(filters)` claims the dead letters not redriven yet that match
 * (`FOR UPDATE SKIP LOCKED`, in one transaction: a concurrent redrive takes others, so none is
 * sent twice), POSTs each in CloudEvents binary mode to `brokerUrls[type]` with its original
 * attributes, extensions and data (less the `knativeerror*` extensions of its failure), and marks
 * those the Broker accepted (2xx) `redriven_at`; those it could not send keep waiting, with
 * `redrive_error`. After a Broker fails to answer (a network error, a timeout, a 5xx), the rest of
 * the batch for it is not tried. Counts `events_redriven_total{type, outcome="sent"|"failed"}`.
 */
export function createRedrive({ pool, log, metrics, brokerUrls, timeoutMs = 3_000 }: RedriveDeps) {
  const redriven = new Counter({
    name: 'events_redriven_total',
    help: 'Dead letters sent again to their Broker by a redrive, by type and outcome (sent, failed).',
    labelNames: ['type', 'outcome'] as const,
    registers: [metrics.registry],
  })

  /** Sends one event; undefined when its Broker accepted it, else why not (and whether the Broker itself is failing). */
  const post = async (url: string, event: StoredEvent): Promise<{ error: string; brokerDown: boolean } | undefined> => {
    try {
      const { headers, body } = binaryRequest(event)
      const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
      await res.body?.cancel()
      if (res.ok) return undefined
      return { error: `the broker answered ${res.status}`, brokerDown: res.status >= 500 }
    } catch (err) {
      const { name, message, cause } = err as { name?: string; message?: string; cause?: { message?: string } }
      const error = name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause?.message ?? message ?? String(err))
      return { error, brokerDown: true }
    }
  }

  return async function redrive({ ids, type, limit }: RedriveFilters): Promise<RedriveResult> {
    // The rows stay locked while they are sent: a redrive at the same time skips them, and one
    // that dies half-way marks nothing (what it sent goes again; consumers dedupe).
    const events = await withTransaction(pool, async (tx) => {
      const { rows } = await tx.query<StoredEvent>(
        `SELECT source, id, type, specversion, subject, "time", datacontenttype, dataschema, data::text AS data_json,
                data_text, data_base64, extensions
           FROM deadletter.events
          WHERE redriven_at IS NULL AND ($1::text[] IS NULL OR id = ANY($1::text[])) AND ($2::text IS NULL OR type = $2)
          ORDER BY received_at, source, id
          LIMIT $3
          FOR UPDATE SKIP LOCKED`,
        [ids ?? null, type ?? null, limit],
      )
      const done: RedrivenEvent[] = []
      const down = new Map<string, string>()
      for (const event of rows) {
        const keys = { source: event.source, id: event.id, type: event.type }
        const broker = brokerUrls[event.type]
        const failure = !broker
          ? { error: `no broker for type ${event.type}: BROKER_URLS does not name it`, brokerDown: false }
          : down.has(broker)
            ? { error: `not tried: ${down.get(broker)} for an earlier event`, brokerDown: false }
            : await post(broker, event)
        if (!failure) {
          done.push({ ...keys, outcome: 'redriven', broker: broker! })
          log.info('dead letter redriven', { ...keys, broker })
          continue
        }
        if (broker && failure.brokerDown) down.set(broker, failure.error)
        done.push({ ...keys, outcome: 'failed', ...(broker ? { broker } : {}), error: failure.error })
        log.warn('dead letter not redriven; it keeps waiting', { ...keys, broker, error: failure.error })
      }
      const sent = done.filter((e) => e.outcome === 'redriven')
      const failed = done.filter((e) => e.outcome === 'failed')
      if (sent.length) {
        await tx.query(
          `UPDATE deadletter.events e SET redriven_at = now(), redrives = e.redrives + 1, redrive_error = NULL
             FROM unnest($1::text[], $2::text[]) AS s(source, id) WHERE e.source = s.source AND e.id = s.id`,
          [sent.map((e) => e.source), sent.map((e) => e.id)],
        )
      }
      if (failed.length) {
        await tx.query(
          `UPDATE deadletter.events e SET redrive_error = f.error
             FROM unnest($1::text[], $2::text[], $3::text[]) AS f(source, id, error) WHERE e.source = f.source AND e.id = f.id`,
          [failed.map((e) => e.source), failed.map((e) => e.id), failed.map((e) => e.error!)],
        )
      }
      return done
    })
    // Counted once committed: a redrive whose marks were lost counts nothing.
    for (const e of events) redriven.inc({ type: e.type, outcome: e.outcome === 'redriven' ? 'sent' : 'failed' })
    const result = {
      redriven: events.filter((e) => e.outcome === 'redriven').length,
      failed: events.filter((e) => e.outcome === 'failed').length,
      events,
    }
    if (events.length) log.info('redrive done', { redriven: result.redriven, failed: result.failed })
    return result
  }
}

// Header values are visible ASCII: other characters are percent-encoded, as the CloudEvents HTTP
// binding says (and as the local broker writes them).
const headerValue = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value)).replace(/[^\x20-\x7e]+/g, (s) => encodeURIComponent(s))

/**
 * The event as it was before it failed, in binary content mode: its attributes and extensions as
 * `ce-*` headers (the `knativeerror*` ones of its failure left out: if it fails again, the Broker
 * adds its own), its data byte for byte as the body.
 */
function binaryRequest(event: StoredEvent): { headers: Record<string, string>; body: string | Uint8Array | undefined } {
  const attributes: Record<string, unknown> = {
    specversion: event.specversion,
    id: event.id,
    source: event.source,
    type: event.type,
    ...(event.subject !== null ? { subject: event.subject } : {}),
    ...(event.time ? { time: event.time.toISOString() } : {}),
    ...(event.dataschema !== null ? { dataschema: event.dataschema } : {}),
  }
  for (const [name, value] of Object.entries(event.extensions)) {
    if (!name.startsWith('knativeerror') && value !== null && value !== undefined) attributes[name] = value
  }
  const headers = Object.fromEntries(Object.entries(attributes).map(([name, value]) => [`ce-${name}`, headerValue(value)]))
  // JSON data without a content type is JSON all the same (the CloudEvents JSON format says so).
  const contentType = event.datacontenttype ?? (event.data_json !== null ? 'application/json' : undefined)
  if (contentType) headers['content-type'] = headerValue(contentType)
  const body = event.data_json ?? event.data_text ?? (event.data_base64 !== null ? Buffer.from(event.data_base64, 'base64') : undefined)
  return { headers, body }
}
