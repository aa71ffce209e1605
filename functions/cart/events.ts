/**
 * What the cart learns from events: an order created takes its quantities out of the user's cart.
 */
import * as v from 'valibot'
import { withTransaction, type Pool } from '../../shared/db.ts'
import { onEvent, type EventOutcome } from '../../shared/events.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { Uuid, bodyInt } from '../../shared/validate.ts'

/**
 * A valibot schema: what cart needs of an `order.created` event's `data`: `order_id` and
 * `user_id` (UUIDs) and `items` (at least one `{ product_id, quantity }`, quantity 1..999). Loose:
 * the producer may add fields (total_cents, created_at, unit_price_cents, …) without breaking it.
 */
export const OrderCreatedData = v.looseObject({
  order_id: Uuid,
  user_id: Uuid,
  items: v.pipe(
    v.array(v.looseObject({ product_id: Uuid, quantity: bodyInt(1, 999) }), 'must be an array'),
    v.minLength(1, 'must have at least one item'),
  ),
})
/** The parsed `data` of an `order.created` event, as cart reads it. */
export type OrderCreatedData = v.InferOutput<typeof OrderCreatedData>

// A product may appear on several lines of an order: take their sum out of the cart.
const ORDERED = `SELECT product_id, sum(quantity) AS quantity
                 FROM unnest($2::uuid[], $3::int[]) AS o (product_id, quantity) GROUP BY product_id`

/**
 * The route handler for `order.created` CloudEvents (1.0, from the orders Broker's Trigger): takes
 * the ordered quantities out of the user's cart (a line ordered in full goes), once per order:
 * a redelivery answers 204 and changes nothing (`duplicate`). Bad data: 422, the event dropped; a
 * database failure: 503, so the broker retries (see `onEvent`).
 */
export function orderCreated({ pool, log, metrics }: { pool: Pool; log: Logger; metrics: Metrics }) {
  return onEvent({
    type: 'order.created',
    schema: OrderCreatedData,
    log,
    metrics,
    handle: (order) =>
      withTransaction<EventOutcome>(pool, async (tx) => {
        // The key makes a redelivery, even a concurrent one, wait for the first and then change nothing.
        const { rowCount } = await tx.query('INSERT INTO cart.processed_orders (order_id) VALUES ($1) ON CONFLICT DO NOTHING', [order.order_id])
        if (!rowCount) return 'duplicate'
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
}
