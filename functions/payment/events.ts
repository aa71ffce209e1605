/**
 * The payment function's consumer of `order.created`: one payment per order, its outcome decided
 * once on receipt, held for the delay, stored, then published as `payment.status`.
 */
import { Counter } from 'prom-client'
import * as v from 'valibot'
import type { Pool } from '../../shared/db.ts'
import { onEvent, type Publisher } from '../../shared/events.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { Uuid, bodyInt } from '../../shared/validate.ts'

// Our own contract: only what a payment needs. Producers add items, created_at, ….
const OrderCreatedData = v.looseObject({
  order_id: Uuid,
  user_id: Uuid,
  total_cents: bodyInt(0, Number.MAX_SAFE_INTEGER),
})

type Outcome = 'succeeded' | 'failed'
/**
 * A row of `payment.payments`: one per order. `outcome` is decided on receipt and hidden until the
 * payment is processed, when `status` leaves `pending` for it; `amount_cents` a whole number of
 * cents; `reason` says why it failed.
 */
export type PaymentRow = {
  id: string
  order_id: string
  user_id: string
  status: 'pending' | Outcome
  outcome: Outcome
  amount_cents: number
  reason: string | null
  created_at: Date
  processed_at: Date | null
}

/** What the `order.created` consumer needs; `random` (default `Math.random`, 0 ≤ x < 1) decides the outcome, for tests to fix. */
export type PaymentEventDeps = {
  pool: Pool
  log: Logger
  metrics: Metrics
  publish: Publisher
  /** The chance, 0..1, that a payment succeeds. */
  successRate: number
  /** How long a payment takes, in milliseconds. */
  delayMs: number
  random?: () => number
}

/**
 * The route handler for `order.created` CloudEvents (1.0): makes the order's one payment
 * (`order_id`, `user_id`, `total_cents` are read from `data`; other fields are ignored), holds it
 * `delayMs`, settles it as succeeded with chance `successRate`, and publishes `payment.status`
 * (source `/shop/payment`, id the payment's id, data `{ payment_id, order_id, user_id, status,
 * amount_cents, reason?, processed_at }`). A redelivery settles nothing new and publishes the
 * same event again. 204 when done; 422 for bad data (dropped); 503 when the database or the
 * publish fails, so the broker retries. Counts `payments_total{status}`.
 */
export function onOrderCreated({ pool, log, metrics, publish, successRate, delayMs, random = Math.random }: PaymentEventDeps) {
  const payments = new Counter({
    name: 'payments_total',
    help: 'Payments processed, by status (succeeded, failed).',
    labelNames: ['status'] as const,
    registers: [metrics.registry],
  })

  const byOrder = async (orderId: string) => {
    const { rows } = await pool.query<PaymentRow>('SELECT * FROM payment.payments WHERE order_id = $1', [orderId])
    if (!rows[0]) throw new Error(`the payment of order ${orderId} is gone`)
    return rows[0]
  }

  // Every delivery that finds it pending races to this guarded UPDATE; one wins, the rest read its result.
  const settle = async (payment: PaymentRow) => {
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs))
    const { rows } = await pool.query<PaymentRow>(
      `UPDATE payment.payments
       SET status = outcome, processed_at = now(), reason = CASE WHEN outcome = 'failed' THEN 'card declined' END
       WHERE id = $1 AND status = 'pending' RETURNING *`,
      [payment.id],
    )
    if (!rows[0]) return byOrder(payment.order_id)
    payments.inc({ status: rows[0].status })
    return rows[0]
  }

  return onEvent({
    type: 'order.created',
    schema: OrderCreatedData,
    log,
    metrics,
    handle: async ({ order_id, user_id, total_cents }) => {
      const outcome: Outcome = random() < successRate ? 'succeeded' : 'failed'
      // A redelivery inserts nothing and takes the stored outcome: the dice are rolled once per order.
      const { rows: inserted } = await pool.query<PaymentRow>(
        `INSERT INTO payment.payments (order_id, user_id, amount_cents, outcome) VALUES ($1, $2, $3, $4)
         ON CONFLICT (order_id) DO NOTHING RETURNING *`,
        [order_id, user_id, total_cents, outcome],
      )
      let payment = inserted[0] ?? (await byOrder(order_id))
      if (payment.status === 'pending') payment = await settle(payment)
      // A failed publish throws: onEvent answers 503, the broker redelivers, and this publishes again.
      await publish({
        type: 'payment.status',
        source: '/shop/payment',
        id: payment.id,
        // Stable like the id, so that a resend is the same event.
        time: payment.processed_at?.toISOString(),
        data: {
          payment_id: payment.id,
          order_id: payment.order_id,
          user_id: payment.user_id,
          status: payment.status,
          amount_cents: payment.amount_cents,
          ...(payment.reason ? { reason: payment.reason } : {}),
          processed_at: payment.processed_at?.toISOString(),
        },
      })
      return inserted[0] ? 'handled' : 'duplicate'
    },
  })
}
