/**
 * @module
 * A transactional outbox. An event is written in the same transaction as the change it
 * reports, published right after commit, and marked sent. Rows left unsent (broker down, a
 * crash between commit and publish) are sent by `flush`, which a PingSource triggers: at zero
 * replicas nobody would be listening for a NOTIFY. Consumers dedupe on the event id (the row id),
 * so a row sent twice is harmless.
 */
import { Gauge } from 'prom-client'
import type { PoolClient, Pool } from './db.ts'
import type { OutgoingEvent, Publisher } from './events.ts'
import type { Logger } from './log.ts'
import type { Metrics } from './metrics.ts'

/** An event as the outbox keeps it: CloudEvents `id` (a UUID, the row's key), `type`, `source` and JSON `data`. */
export type OutboxEvent = Required<Pick<OutgoingEvent, 'id' | 'type' | 'source' | 'data'>>
/** What a sweep did: events `sent` and `failed` (it stops at the first failure), and `pending` left unsent after it. */
export type FlushResult = { sent: number; failed: number; pending: number }

type OutboxOptions = {
  pool: Pool
  /** `schema.table`, with the columns of functions/order/migrations/001_create_orders.sql. */
  table: string
  publish: Publisher
  log: Logger
  metrics: Metrics
  batchSize?: number
  /** How long a sweep may hold rows before another sweep may take them. */
  claimSeconds?: number
}

/**
 * The outbox on `table`: `add(tx, event)` writes an event inside the caller's transaction;
 * `send(event)` publishes one and marks it sent (answers false, never throws, when the broker did
 * not take it: the row stays); `flush({ maxMs })` sends every unsent row, oldest first, claiming
 * `batchSize` rows (default 20) for `claimSeconds` (default 60 s) so concurrent sweeps on other
 * pods take others; `sweepIfBacklog()` flushes only when a failure may have left rows; `stats()`
 * answers `{ pending, oldestAgeSeconds }`. Registers the gauges `outbox_pending` and
 * `outbox_oldest_age_seconds`. Throws at once when `table` is not a plain `schema.table` name.
 */
export function createOutbox({ pool, table, publish, log, metrics, batchSize = 20, claimSeconds = 60 }: OutboxOptions) {
  if (!/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`bad outbox table ${table}`)
  let flushing: Promise<FlushResult> | undefined
  // Whether unsent rows may be waiting: at start (a crash may have left some) and after a failed
  // send. Only then does a successful send sweep, so a healthy order path costs no extra sweep.
  let backlog = true

  const stats = async () => {
    const { rows } = await pool.query<{ pending: number; oldest: number | null }>(
      `SELECT count(*)::int AS pending, extract(epoch FROM now() - min(created_at))::float8 AS oldest
         FROM ${table} WHERE sent_at IS NULL`,
    )
    return { pending: rows[0]!.pending, oldestAgeSeconds: rows[0]!.oldest ?? 0 }
  }

  // Read from the database at scrape time, so every pod reports the same shared backlog.
  new Gauge({
    name: 'outbox_pending',
    help: 'Events written to the outbox and not yet accepted by the broker.',
    registers: [metrics.registry],
    async collect() {
      this.set((await stats().catch(() => undefined))?.pending ?? 0)
    },
  })
  new Gauge({
    name: 'outbox_oldest_age_seconds',
    help: 'Age of the oldest unsent outbox event (0 when none).',
    registers: [metrics.registry],
    async collect() {
      this.set((await stats().catch(() => undefined))?.oldestAgeSeconds ?? 0)
    },
  })

  /** Publishes one event; true when the broker took it. Never throws: a failure leaves the row. */
  const send = async (event: OutboxEvent): Promise<boolean> => {
    try {
      await publish(event)
    } catch (err) {
      await pool
        .query(`UPDATE ${table} SET attempts = attempts + 1, last_error = $2, claimed_until = NULL WHERE id = $1`, [event.id, String((err as Error).message).slice(0, 500)])
        .catch(() => {})
      log.warn('event not published; it stays in the outbox', { type: event.type, id: event.id, err })
      backlog = true
      return false
    }
    await pool.query(`UPDATE ${table} SET sent_at = now(), attempts = attempts + 1, claimed_until = NULL WHERE id = $1 AND sent_at IS NULL`, [event.id])
    return true
  }

  const sweep = async (deadline: number): Promise<FlushResult> => {
    let sent = 0
    let failed = 0
    while (Date.now() < deadline) {
      // Claim a batch in a short statement; publish outside any transaction.
      const { rows } = await pool.query<OutboxEvent>(
        `UPDATE ${table} SET claimed_until = now() + make_interval(secs => $2)
          WHERE id IN (SELECT id FROM ${table}
                        WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
                        ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
          RETURNING id, type, source, data`,
        [batchSize, claimSeconds],
      )
      if (rows.length === 0) break
      for (const [i, row] of rows.entries()) {
        if (await send(row)) {
          sent++
          continue
        }
        failed++
        // The broker refused: release the rest of the batch for the next sweep.
        const rest = rows.slice(i + 1).map((r) => r.id)
        if (rest.length) await pool.query(`UPDATE ${table} SET claimed_until = NULL WHERE id = ANY($1::uuid[])`, [rest])
        break
      }
      if (failed > 0) break
    }
    const { pending } = await stats()
    if (pending === 0) backlog = false
    if (sent || failed) log.info('outbox flushed', { sent, failed, pending })
    return { sent, failed, pending }
  }

  return {
    /** Writes an event in the caller's transaction. */
    async add(tx: PoolClient, { id, type, source, data }: OutboxEvent) {
      await tx.query(`INSERT INTO ${table} (id, type, source, data) VALUES ($1, $2, $3, $4)`, [id, type, source, JSON.stringify(data)])
    },
    send,
    /** After a send that worked: sweeps what earlier failures (or a crash) left, if anything may be left. */
    sweepIfBacklog(): Promise<FlushResult> | undefined {
      return backlog ? this.flush() : undefined
    },
    /**
     * Sends every unsent event, oldest first, for at most `maxMs`; one flush at a time per
     * process (a second call joins the running one).
     */
    flush({ maxMs = 20_000 }: { maxMs?: number } = {}): Promise<FlushResult> {
      flushing ??= sweep(Date.now() + maxMs).finally(() => {
        flushing = undefined
      })
      return flushing
    },
    stats,
  }
}

/** What `createOutbox` answers: `add`, `send`, `flush`, `sweepIfBacklog` and `stats`. */
export type Outbox = ReturnType<typeof createOutbox>
