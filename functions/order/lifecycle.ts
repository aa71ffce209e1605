/**
 * @module
 * How an order leaves `pending` other than by its payment, and what keeps it from staying there
 * for ever:
 * - a cancel, and an expiry, each announced as `order.cancelled` through the outbox (payment then
 *   never charges the order or refunds it, product gives the units back, cart the lines);
 * - the sweep the outbox PingSource drives: an order still pending a while after its last
 *   announcement is announced again (a consumer that missed order.created, or whose answer got
 *   lost, gets another chance; each is idempotent per order), and one still pending long after it
 *   was placed expires.
 */
import { randomUUID } from 'node:crypto'
import * as v from 'valibot'
import { withTransaction, type Pool, type PoolClient } from '../../shared/db.ts'
import type { Logger } from '../../shared/log.ts'
import type { Outbox, OutboxEvent } from '../../shared/outbox.ts'
import { OrderCancelledData } from './messages.ts'

/** Why an order was cancelled: by its user, or by the sweep because it stayed pending too long. */
export type CancelReason = 'cancelled' | 'expired'

/**
 * Writes one `order.cancelled` per order in the caller's transaction (the one that moved them out
 * of pending) and returns the events, to send after the commit.
 */
export async function announceCancelled(
  tx: PoolClient,
  outbox: Outbox,
  orders: { id: string; user_id: string }[],
  reason: CancelReason,
): Promise<OutboxEvent[]> {
  if (orders.length === 0) return []
  const { rows } = await tx.query<{ order_id: string; items: { product_id: string; quantity: number; unit_price_cents: number }[] }>(
    `SELECT order_id, json_agg(json_build_object('product_id', product_id, 'quantity', quantity, 'unit_price_cents', unit_price_cents)
                               ORDER BY product_id) AS items
       FROM orders.order_items WHERE order_id = ANY($1::uuid[]) GROUP BY order_id`,
    [orders.map((o) => o.id)],
  )
  const items = new Map(rows.map((r) => [r.order_id, r.items]))
  const events = orders.map(
    (o): OutboxEvent => ({
      id: randomUUID(),
      type: 'order.cancelled',
      source: '/shop/order',
      // The producer's contract (messages.ts): checked before it is written.
      data: v.parse(OrderCancelledData, { order_id: o.id, user_id: o.user_id, items: items.get(o.id) ?? [], reason }),
    }),
  )
  for (const event of events) await outbox.add(tx, event)
  return events
}

type SweepOptions = {
  pool: Pool
  outbox: Outbox
  /** The outbox's table: the sweep reads the announcements there. */
  outboxTable: string
  log: Logger
  /** Seconds after its last announcement that a pending order is announced again. */
  reannounceAfterS: number
  /** Seconds after it was placed that a pending order expires. */
  expireAfterS: number
  batchSize?: number
  /** How long one sweep may go on, in milliseconds; the next one goes on from there. */
  maxMs?: number
}

/** What one sweep did. */
export type SweepResult = { reannounced: number; expired: number }

/**
 * The sweep: expires, then announces again, in batches, leaving the sending to the outbox flush
 * that follows it. Each step is scoped to the orders whose order.created is in this outbox: in
 * production every order (written in the order's own transaction), in tests those of the test's
 * outbox table, out of reach of other tests' sweeps.
 */
export function createOrderSweep({ pool, outbox, outboxTable, log, reannounceAfterS, expireAfterS, batchSize = 100, maxMs = 20_000 }: SweepOptions) {
  const announced = `SELECT 1 FROM ${outboxTable} a WHERE a.type = 'order.created' AND (a.data->>'order_id')::uuid = o.id`

  // Locked and skipped when locked: a cancel or a payment.status moving one of these waits or wins.
  const expireBatch = () =>
    withTransaction(pool, async (tx) => {
      const { rows } = await tx.query<{ id: string; user_id: string }>(
        `UPDATE orders.orders SET status = 'expired', updated_at = now()
          WHERE id IN (SELECT o.id FROM orders.orders o
                        WHERE o.status = 'pending' AND o.created_at < now() - make_interval(secs => $1) AND EXISTS (${announced})
                        ORDER BY o.created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
          RETURNING id, user_id`,
        [expireAfterS, batchSize],
      )
      return (await announceCancelled(tx, outbox, rows, 'expired')).length
    })

  // The same event data again, as a new event. Two sweeps at once may both send it; the
  // consumers are idempotent per order.
  const reannounceBatch = async () => {
    const { rowCount } = await pool.query(
      `WITH due AS (
         SELECT last.source, last.data FROM orders.orders o
          CROSS JOIN LATERAL (SELECT a.source, a.data, a.created_at FROM ${outboxTable} a
                               WHERE a.type = 'order.created' AND (a.data->>'order_id')::uuid = o.id
                               ORDER BY a.created_at DESC LIMIT 1) last
          WHERE o.status = 'pending' AND last.created_at < now() - make_interval(secs => $1)
          ORDER BY o.created_at LIMIT $2
          FOR UPDATE OF o SKIP LOCKED)
       INSERT INTO ${outboxTable} (id, type, source, data)
       SELECT gen_random_uuid(), 'order.created', source, data FROM due`,
      [reannounceAfterS, batchSize],
    )
    return rowCount ?? 0
  }

  const drain = async (batch: () => Promise<number>, deadline: number) => {
    let total = 0
    for (;;) {
      const n = await batch()
      total += n
      if (n < batchSize || Date.now() >= deadline) return total
    }
  }

  return async function sweep(): Promise<SweepResult> {
    const deadline = Date.now() + maxMs
    // Expiry first: an order past it is cancelled, not announced once more.
    const expired = await drain(expireBatch, deadline)
    const reannounced = await drain(reannounceBatch, deadline)
    if (expired || reannounced) log.info('pending orders swept', { expired, reannounced })
    return { expired, reannounced }
  }
}
