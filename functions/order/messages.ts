/**
 * @module
 * The events the order function publishes (through its outbox, to the `orders` Broker), as valibot
 * schemas of their `data`: the producer's contract, which the AsyncAPI document is made from
 * (shared/asyncapi.ts) and which every event is checked against before it is written. Consumers
 * read less, with looser schemas of their own (each function's events.ts).
 */
import * as v from 'valibot'

const Id = v.pipe(v.string(), v.uuid(), v.regex(/^[0-9a-f-]+$/, 'must be a lower-case UUID'))
const whole = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max))

/** The CloudEvents `source` of every event order publishes. */
export const ORDER_SOURCE = '/shop/order'

/** A valibot schema of an order's line in its events: units and the unit price the order was placed at. */
export const OrderLine = v.object({
  product_id: Id,
  quantity: whole(1, 999),
  unit_price_cents: v.pipe(whole(0, 2_147_483_647), v.description('the price of one unit when the order was placed, in cents')),
})

/**
 * A valibot schema of `order.created` data: a pending order, its lines (each product once, 1..50
 * lines) and total. Published when the order is placed, and again with the same data while it
 * stays pending (`ORDER_REANNOUNCE_AFTER_S`).
 */
export const OrderCreatedData = v.object({
  order_id: Id,
  user_id: Id,
  items: v.pipe(v.array(OrderLine), v.minLength(1), v.maxLength(50)),
  total_cents: v.pipe(whole(0, Number.MAX_SAFE_INTEGER), v.description('the sum of quantity × unit_price_cents over the lines')),
  created_at: v.pipe(v.string(), v.isoTimestamp(), v.description('when the order was placed')),
})

/**
 * A valibot schema of `order.cancelled` data: an order that left `pending` without being paid,
 * `cancelled` by its user or `expired` by the sweep (`ORDER_EXPIRE_AFTER_S`), with its lines.
 */
export const OrderCancelledData = v.object({
  order_id: Id,
  user_id: Id,
  items: v.pipe(v.array(OrderLine), v.maxLength(50)),
  reason: v.picklist(['cancelled', 'expired']),
})

/** An example of each, for the document (the tests check them against the producer's and every consumer's schema). */
export const orderEventExamples = {
  'order.created': {
    order_id: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
    user_id: '0b6f7c1e-3d5a-4f2b-9e8c-1a2b3c4d5e6f',
    items: [{ product_id: '5f0c6a9e-8f1b-4c3e-9a2d-7b1e4c9d0a11', quantity: 2, unit_price_cents: 2450 }],
    total_cents: 4900,
    created_at: '2025-01-15T09:36:00.000Z',
  },
  'order.cancelled': {
    order_id: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
    user_id: '0b6f7c1e-3d5a-4f2b-9e8c-1a2b3c4d5e6f',
    items: [{ product_id: '5f0c6a9e-8f1b-4c3e-9a2d-7b1e4c9d0a11', quantity: 2, unit_price_cents: 2450 }],
    reason: 'cancelled',
  },
} satisfies { 'order.created': v.InferInput<typeof OrderCreatedData>; 'order.cancelled': v.InferInput<typeof OrderCancelledData> }
