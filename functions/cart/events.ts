/**
 * What the cart learns from events: an order created takes its quantities out of the user's cart;
 * a cancelled order, or one whose payment failed, puts its lines back. Each happens once per order
 * (cart.orders), whichever event comes first and however often each arrives.
 */
import * as v from 'valibot'
import { withTransaction, type Pool, type PoolClient, type Queryable } from '../../shared/db.ts'
import { unprocessable } from '../../shared/errors.ts'
import { onEvent, type EventOutcome } from '../../shared/events.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { Uuid, bodyInt } from '../../shared/validate.ts'

/** The most a cart line holds. */
export const LINE_MAX = 999

/**
 * A valibot schema: what cart needs of an `order.created` event's `data`: `order_id` and
 * `user_id` (UUIDs) and `items` (at least one `{ product_id, quantity }`, quantity 1..999). Loose:
 * the producer may add fields (total_cents, created_at, unit_price_cents, …) without breaking it.
 */
export const OrderCreatedData = v.looseObject({
  order_id: Uuid,
  user_id: Uuid,
  items: v.pipe(
    v.array(v.looseObject({ product_id: Uuid, quantity: bodyInt(1, LINE_MAX) }), 'must be an array'),
    v.minLength(1, 'must have at least one item'),
  ),
})
/** The parsed `data` of an `order.created` event, as cart reads it. */
export type OrderCreatedData = v.InferOutput<typeof OrderCreatedData>

/**
 * A valibot schema: what cart reads of an `order.cancelled` event's data. The lines are not read:
 * the cart puts back what order.created told it, and payment.status has none.
 */
export const OrderCancelledData = v.looseObject({ order_id: Uuid, user_id: Uuid })
/** A valibot schema: what cart reads of a `payment.status` event's data (only "failed" puts lines back). */
export const PaymentStatusData = v.looseObject({
  order_id: Uuid,
  user_id: Uuid,
  status: v.picklist(['succeeded', 'failed', 'refunded'], 'must be succeeded, failed or refunded'),
})

type Line = { product_id: string; quantity: number }
type OrderState = { user_id: string | null; lines: Line[] | null; applied_at: Date | null; restored_at: Date | null }

/**
 * Creates or bumps the user's cart and locks its row, so that changes to one cart (the event
 * consumers' included) take turns; returns its id.
 */
export const touchCart = async (db: Queryable, userId: string) => {
  const { rows } = await db.query<{ id: string }>(
    'INSERT INTO cart.carts (user_id) VALUES ($1) ON CONFLICT (user_id) DO UPDATE SET updated_at = now() RETURNING id',
    [userId],
  )
  return rows[0]!.id
}

// The order's record, locked: an order.created and a cancel of one order (or redeliveries of
// either) arriving at once take turns here, so each sees what the other did.
const lockOrder = async (tx: PoolClient, orderId: string) => {
  await tx.query('INSERT INTO cart.orders (order_id) VALUES ($1) ON CONFLICT DO NOTHING', [orderId])
  const { rows } = await tx.query<OrderState>('SELECT user_id, lines, applied_at, restored_at FROM cart.orders WHERE order_id = $1 FOR UPDATE', [orderId])
  return rows[0]!
}

// A product may appear on several lines of an order: take their sum out of the cart.
const ORDERED = `SELECT product_id, sum(quantity) AS quantity
                 FROM unnest($2::uuid[], $3::int[]) AS o (product_id, quantity) GROUP BY product_id`

type EventDeps = { pool: Pool; log: Logger; metrics: Metrics }

/**
 * The route handlers of the cart's `/events/*` (CloudEvents 1.0 from the Brokers' Triggers), each
 * once per order: a redelivery answers 204 and changes nothing (`duplicate`); bad data 422, the
 * event dropped; a database failure 503, so the broker retries (see `onEvent`).
 * - `orderCreated`: takes the ordered quantities out of the user's cart (a line ordered in full
 *   goes) and keeps the order's lines.
 * - `orderCancelled`, `paymentStatus` (`failed` only): put those lines back, added to what the
 *   cart holds now, each line at most `LINE_MAX`.
 */
export function cartEvents({ pool, log, metrics }: EventDeps) {
  const orderCreated = onEvent({
    type: 'order.created',
    schema: OrderCreatedData,
    log,
    metrics,
    handle: (order) =>
      withTransaction<EventOutcome>(pool, async (tx) => {
        const state = await lockOrder(tx, order.order_id)
        if (state.applied_at) return 'duplicate'
        const summed = new Map<string, number>()
        for (const { product_id, quantity } of order.items) summed.set(product_id, (summed.get(product_id) ?? 0) + quantity)
        const lines: Line[] = [...summed].map(([product_id, quantity]) => ({ product_id, quantity }))
        await tx.query('UPDATE cart.orders SET user_id = $2, lines = $3, applied_at = now() WHERE order_id = $1', [order.order_id, order.user_id, JSON.stringify(lines)])
        // The cancel or the failed payment came first: the lines never left the cart.
        if (state.restored_at) return 'handled'
        const { rows: [cart] } = await tx.query<{ id: string }>('SELECT id FROM cart.carts WHERE user_id = $1 FOR UPDATE', [order.user_id])
        if (!cart) return 'handled'
        const values = [cart.id, order.items.map((i) => i.product_id), order.items.map((i) => i.quantity)]
        const removed = await tx.query(
          `DELETE FROM cart.cart_items i USING (${ORDERED}) o
           WHERE i.cart_id = $1 AND i.product_id = o.product_id AND i.quantity <= o.quantity`,
          values,
        )
        const reduced = await tx.query(
          `UPDATE cart.cart_items i SET quantity = i.quantity - o.quantity FROM (${ORDERED}) o
           WHERE i.cart_id = $1 AND i.product_id = o.product_id AND i.quantity > o.quantity`,
          values,
        )
        if (removed.rowCount || reduced.rowCount) await tx.query('UPDATE cart.carts SET updated_at = now() WHERE id = $1', [cart.id])
        return 'handled'
      }),
  })

  // The order's lines go back into the cart, added to what it holds now, each line at most LINE_MAX.
  const restore = (orderId: string, userId: string) =>
    withTransaction<EventOutcome>(pool, async (tx) => {
      const state = await lockOrder(tx, orderId)
      if (state.user_id && state.user_id !== userId) throw unprocessable(`order ${orderId} belongs to another user`)
      if (state.restored_at) return 'duplicate'
      await tx.query('UPDATE cart.orders SET restored_at = now() WHERE order_id = $1', [orderId])
      // order.created has not come: nothing left the cart, and the mark above makes it take nothing.
      if (!state.lines) return 'handled'
      await tx.query(
        `INSERT INTO cart.cart_items (cart_id, product_id, quantity)
         SELECT $1, l.product_id, least(l.quantity, ${LINE_MAX}) FROM jsonb_to_recordset($2::jsonb) AS l (product_id uuid, quantity int)
         ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = least(cart_items.quantity + EXCLUDED.quantity, ${LINE_MAX})`,
        [await touchCart(tx, userId), JSON.stringify(state.lines)],
      )
      return 'handled'
    })

  const orderCancelled = onEvent({
    type: 'order.cancelled',
    schema: OrderCancelledData,
    log,
    metrics,
    handle: ({ order_id, user_id }) => restore(order_id, user_id),
  })

  const paymentStatus = onEvent({
    type: 'payment.status',
    schema: PaymentStatusData,
    log,
    metrics,
    // Only a failure concerns the cart; a refund follows a cancel, which order.cancelled covers.
    handle: async ({ order_id, user_id, status }) => (status === 'failed' ? restore(order_id, user_id) : 'handled'),
  })

  return { orderCreated, orderCancelled, paymentStatus }
}
