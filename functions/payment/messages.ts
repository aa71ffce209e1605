/**
 * @module
 * The event the payment function publishes (to the `payments` Broker), as a valibot schema of its
 * `data`: the producer's contract, which the AsyncAPI document is made from (shared/asyncapi.ts)
 * and which every event is checked against before it is sent. Consumers read less, with looser
 * schemas of their own.
 */
import * as v from 'valibot'

const Id = v.pipe(v.string(), v.uuid(), v.regex(/^[0-9a-f-]+$/, 'must be a lower-case UUID'))

/** The CloudEvents `source` of every event payment publishes. */
export const PAYMENT_SOURCE = '/shop/payment'

/**
 * A valibot schema of `payment.status` data: what became of an order's payment. `succeeded` or
 * `failed` is its outcome (the event id is the payment id); `refunded` follows a cancel of a paid
 * order (an id of its own). A redelivery publishes the same event again.
 */
export const PaymentStatusData = v.object({
  payment_id: Id,
  order_id: Id,
  user_id: Id,
  status: v.picklist(['succeeded', 'failed', 'refunded']),
  amount_cents: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER), v.description('in cents')),
  reason: v.optional(v.pipe(v.string(), v.description('why it failed, or was refunded'))),
  processed_at: v.pipe(v.string(), v.isoTimestamp(), v.description('when it was decided, or refunded')),
})

/** An example, for the document (the tests check it against the producer's and every consumer's schema). */
export const paymentEventExamples = {
  'payment.status': {
    payment_id: '7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6',
    order_id: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
    user_id: '0b6f7c1e-3d5a-4f2b-9e8c-1a2b3c4d5e6f',
    status: 'succeeded',
    amount_cents: 4900,
    processed_at: '2025-01-15T09:36:02.000Z',
  },
} satisfies { 'payment.status': v.InferInput<typeof PaymentStatusData> }
