/**
 * @module
 * A transactional outbox. An event is written in the same transaction as the change it
 * reports, published right after commit, and marked sent. Rows left unsent (broker down, a
 * crash between commit and publish, a failure to mark one sent) are sent again by a sweep: one
 * that this process starts itself, backing off, while the broker refuses; one after a publish
 * that worked; and one on each call of the flush route, which a PingSource makes, because at
 * zero replicas no process is there to retry. Consumers dedupe on the event id (the row id), so
 * a row sent twice is harmless.
 */
import { Counter, Gauge } from 'prom-client'
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
  /** The first wait before this process sweeps again after a failure; doubled after each failed sweep. */
  retryAfterMs?: number
  /** The longest wait between two of those sweeps. */
  maxRetryAfterMs?: number
}

/**
 * The outbox on `table`:
 * - `add(tx, event)` writes an event inside the caller's transaction.
 * - `send(event)` publishes one after commit and marks it sent. It never throws: when the broker
 *   does not take it, the row stays and a sweep sends it later; when the broker took it but the
 *   row cannot be marked, that is logged and counted (`outbox_mark_sent_failures_total`) and a
 *   sweep sends it again. After a publish that worked, it starts a sweep when earlier failures
 *   may have left rows.
 * - `flush({ maxMs })` sweeps: sends unsent rows, oldest first, `batchSize` (default 20) at a
 *   time, claimed for `claimSeconds` (default 60 s) so that sweeps on other pods take others; it
 *   goes on while each batch is full and sent, for at most `maxMs` (default 20 s), and when that
 *   bound cuts it short another sweep follows at once, so the outbox drains until it is empty.
 *   One sweep at a time per process: a call while one runs gets the sweep that follows it (one,
 *   shared by every call made meanwhile).
 * - After a failure (the broker refused, a row not marked, the database out of reach) the outbox
 *   sweeps again by itself after `retryAfterMs` (default 1 s), doubling the wait after each
 *   failed sweep up to `maxRetryAfterMs` (default 30 s), until a sweep goes through; it stops
 *   when its pool has ended, or on `close()`.
 * - `stats()` answers `{ pending, oldestAgeSeconds }`.
 * Registers the gauges `outbox_pending` and `outbox_oldest_age_seconds` and the counter
 * `outbox_mark_sent_failures_total`. Throws at once when `table` is not a plain `schema.table` name.
 */
export function createOutbox({
  pool,
  table,
  publish,
  log,
  metrics,
  batchSize = 20,
  claimSeconds = 60,
  retryAfterMs = 1_000,
  maxRetryAfterMs = 30_000,
}: OutboxOptions) {
  if (!/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`bad outbox table ${table}`)
  let flushing: Promise<FlushResult> | undefined
  // The sweep that follows the running one, shared by the calls made meanwhile.
  let next: Promise<FlushResult> | undefined
  // Whether unsent rows may be waiting that nobody is sending: at start (a crash may have left
  // some) and after a failure. Only then does a successful send sweep, so a healthy order path
  // costs no extra sweep.
  let backlog = true
  // Counts failures, so that a sweep that ends after a concurrent failure does not clear `backlog`.
  let failures = 0
  let retryTimer: NodeJS.Timeout | undefined
  let nextWaitMs = retryAfterMs
  let closed = false

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
  const markFailures = new Counter({
    name: 'outbox_mark_sent_failures_total',
    help: 'Events the broker accepted whose outbox row could not be marked sent; each is sent again later (consumers dedupe by id).',
    registers: [metrics.registry],
  })

  const failed = () => {
    failures++
    backlog = true
  }

  // The next sweep this process makes by itself, unless one is due already. `now` is for a sweep
  // that the time bound cut short: it follows at once and does not count as a failure.
  const sweepLater = (now = false) => {
    // A stopping process (its pool ending) sweeps no more; the next pod or the PingSource will.
    if (closed || pool.ending || pool.ended) return
    if (now) clearTimeout(retryTimer)
    else if (retryTimer) return
    const waitMs = now ? 0 : nextWaitMs
    if (!now) {
      nextWaitMs = Math.min(nextWaitMs * 2, maxRetryAfterMs)
      log.info('outbox sweeps again later', { waitMs })
    }
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      // flush() has logged, counted and scheduled what a failure needs.
      flush().catch(() => {})
    }, waitMs)
    // A pending retry never keeps a stopping process alive.
    retryTimer.unref()
  }

  /**
   * Publishes one row: `sent`, `unmarked` (the broker took it, but the row could not be marked
   * sent, so it stays and goes out again), or `refused` (the row stays). Never throws.
   */
  const publishRow = async (event: OutboxEvent): Promise<'sent' | 'unmarked' | 'refused'> => {
    try {
      await publish(event)
    } catch (err) {
      await pool
        .query(`UPDATE ${table} SET attempts = attempts + 1, last_error = $2, claimed_until = NULL WHERE id = $1`, [event.id, String((err as Error).message).slice(0, 500)])
        .catch(() => {})
      log.warn('event not published; it stays in the outbox', { type: event.type, id: event.id, err })
      failed()
      return 'refused'
    }
    try {
      await pool.query(`UPDATE ${table} SET sent_at = now(), attempts = attempts + 1, claimed_until = NULL WHERE id = $1 AND sent_at IS NULL`, [event.id])
      return 'sent'
    } catch (err) {
      // The broker has the event: what failed is only our note of it. The row stays unsent, so a
      // later sweep sends it again (consumers dedupe by id); the caller's answer must not change.
      markFailures.inc()
      log.warn('event published but not marked sent; it will be sent again', { type: event.type, id: event.id, err })
      // Best effort: without its claim, the next sweep may take the row at once.
      await pool.query(`UPDATE ${table} SET claimed_until = NULL WHERE id = $1`, [event.id]).catch(() => {})
      failed()
      return 'unmarked'
    }
  }

  const sweep = async (deadline: number): Promise<FlushResult> => {
    const failuresBefore = failures
    let sent = 0
    let refused = 0
    let cutShort = false
    for (;;) {
      // Claim a batch in a short statement; publish outside any transaction. RETURNING keeps no
      // order, so the batch is sorted again: oldest first, as an order's events were written.
      const { rows } = await pool.query<OutboxEvent>(
        `WITH claimed AS (
           UPDATE ${table} SET claimed_until = now() + make_interval(secs => $2)
            WHERE id IN (SELECT id FROM ${table}
                          WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
                          ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING id, type, source, data, created_at)
         SELECT id, type, source, data FROM claimed ORDER BY created_at`,
        [batchSize, claimSeconds],
      )
      let stopped = false
      for (const [i, row] of rows.entries()) {
        const outcome = await publishRow(row)
        if (outcome === 'sent') {
          sent++
          continue
        }
        if (outcome === 'refused') refused++
        else sent++
        // The broker refused, or the database would not take the mark (the row, released, would
        // only come back in the next batch): stop, release the rest of the batch for the sweep
        // that follows later.
        stopped = true
        const rest = rows.slice(i + 1).map((r) => r.id)
        if (rest.length) await pool.query(`UPDATE ${table} SET claimed_until = NULL WHERE id = ANY($1::uuid[])`, [rest]).catch(() => {})
        break
      }
      // A batch that was not full took every row no other sweep holds: what is left is being sent
      // (by its own request, or another pod's sweep). A full one may have left more.
      if (stopped || rows.length < batchSize) break
      if (Date.now() >= deadline) {
        cutShort = true
        break
      }
    }
    const { pending } = await stats()
    if (failures !== failuresBefore) {
      sweepLater()
    } else {
      // A sweep that went through: later failures start from the first wait again.
      nextWaitMs = retryAfterMs
      if (cutShort) sweepLater(true)
      else backlog = false
    }
    if (sent || refused) log.info('outbox flushed', { sent, failed: refused, pending })
    return { sent, failed: refused, pending }
  }

  const startSweep = (deadline: number) =>
    (flushing = sweep(deadline)
      .catch((err: unknown) => {
        // The database out of reach, most likely: rows may be left, so try again later.
        log.warn('outbox flush failed', { err })
        failed()
        sweepLater()
        throw err
      })
      .finally(() => {
        flushing = undefined
      }))

  /**
   * Sends every unsent event, oldest first, for at most `maxMs`; one sweep at a time per process.
   * A call while one runs gets the next one, which starts when it ends: the running sweep may have
   * taken its batches before the rows this call is about were written.
   */
  function flush({ maxMs = 20_000 }: { maxMs?: number } = {}): Promise<FlushResult> {
    // The bound counts from the call, waiting included: a caller (the PingSource's request) gets
    // its answer in time, and a sweep that the bound cuts short is followed at once anyway.
    const deadline = Date.now() + maxMs
    if (!flushing) return startSweep(deadline)
    next ??= flushing
      .catch(() => {})
      .then(() => {
        next = undefined
        return startSweep(deadline)
      })
    return next
  }

  return {
    /** Writes an event in the caller's transaction. */
    async add(tx: PoolClient, { id, type, source, data }: OutboxEvent) {
      await tx.query(`INSERT INTO ${table} (id, type, source, data) VALUES ($1, $2, $3, $4)`, [id, type, source, JSON.stringify(data)])
    },
    /**
     * Publishes one event after its transaction committed and marks it sent; true when the broker
     * took it. Never throws. After a publish that went through, sweeps what earlier failures left;
     * after a failure, a sweep follows later.
     */
    async send(event: OutboxEvent): Promise<boolean> {
      const outcome = await publishRow(event)
      // Not at once after a failure: the broker (or the database) has just said no.
      if (outcome !== 'sent') sweepLater()
      else if (backlog) flush().catch(() => {})
      return outcome !== 'refused'
    },
    flush,
    stats,
    /** Stops the sweeps this process would start by itself (a sweep under way finishes). */
    close() {
      closed = true
      clearTimeout(retryTimer)
      retryTimer = undefined
    },
  }
}

/** What `createOutbox` answers: `add`, `send`, `flush`, `stats` and `close`. */
export type Outbox = ReturnType<typeof createOutbox>
