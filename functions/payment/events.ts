/**
 * The payment function's consumers.
 * - `order.created`: one payment per order, its outcome decided once on receipt, held for the
 *   delay, stored, then published as `payment.status`.
 * - `order.cancelled`: a cancelled order is never charged. A payment not yet decided ends
 *   `cancelled` (and publishes nothing); one already charged ends `refunded` and publishes
 *   `payment.status` `refunded`.
 */
import { Counter } from 'prom-client'
import * as v from 'valibot'
import { withTransaction, type Pool } from '../../shared/db.ts'
import { unprocessable } from '../../shared/errors.ts'
import { onEvent, type EventOutcome, type OutgoingEvent, type Publisher } from '../../shared/events.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { Uuid, bodyInt } from '../../shared/validate.ts'
import { PaymentStatusData } from './messages.ts'

const INT_MAX = 2_147_483_647

// Our own contract: only what a payment needs. Producers add items, created_at, ….
/** A valibot schema: what payment reads of an `order.created` event's data: the order, its user and `total_cents`. */
export const OrderCreatedData = v.looseObject({
  order_id: Uuid,
  user_id: Uuid,
  total_cents: bodyInt(0, Number.MAX_SAFE_INTEGER),
})

/**
 * A valibot schema: what payment reads of an `order.cancelled` event's data. The lines are read
 * only for the amount of a payment that the cancel creates, before order.created came; each is
 * within the order function's own bounds, and their sum a safe integer.
 */
export const OrderCancelledData = v.looseObject({
  order_id: Uuid,
  user_id: Uuid,
  items: v.pipe(
    v.array(
      v.looseObject({ quantity: bodyInt(1, INT_MAX), unit_price_cents: bodyInt(0, INT_MAX) }),
      'must be a list of {quantity, unit_price_cents}',
    ),
    v.check((items) => Number.isSafeInteger(items.reduce((sum, i) => sum + i.quantity * i.unit_price_cents, 0)), 'must add up to at most 2^53 − 1 cents'),
  ),
  reason: v.picklist(['cancelled', 'expired'], 'must be cancelled or expired'),
})

type Outcome = 'succeeded' | 'failed'
/**
 * A row of `payment.payments`: one per order. `outcome` is decided on receipt and hidden until the
 * payment is processed, when `status` leaves `pending` for it (or for `cancelled`, when the order
 * was cancelled first); `amount_cents` a whole number of cents; `reason` says why it failed.
 */
export type PaymentRow = {
  id: string
  order_id: string
  user_id: string
  status: 'pending' | Outcome | 'cancelled' | 'refunded'
  /** Null only for a payment cancelled before its order.created arrived. */
  outcome: Outcome | null
  amount_cents: number
  reason: string | null
  created_at: Date
  processed_at: Date | null
  refund_id: string | null
  refunded_at: Date | null
}

/**
 * What the consumers need: the database, the broker to publish to, and how payments turn out:
 * `successRate` (0..1), `delayMs` (how long a payment takes), `random` (default `Math.random`,
 * 0 ≤ x < 1; decides the outcome, for tests to fix) and `wait` (the delay itself, for tests to hold).
 */
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
  /** Waits out the delay; tests pass one they end themselves, to act while a payment is held. */
  wait?: (ms: number) => Promise<void>
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve())

/**
 * The `payment.status` a payment stands for, or none: a pending payment has not been decided, and
 * a cancelled one was never charged (its order is cancelled already). Ids and times come from the
 * row, so that a resend is the same event.
 */
function statusEvent(payment: PaymentRow): OutgoingEvent | undefined {
  if (payment.status === 'pending' || payment.status === 'cancelled') return undefined
  const refund = payment.status === 'refunded'
  const at = (refund ? payment.refunded_at : payment.processed_at)?.toISOString()
  return {
    type: 'payment.status',
    source: '/shop/payment',
    id: refund ? payment.refund_id! : payment.id,
    time: at,
    // The producer's contract (messages.ts, what the AsyncAPI document describes), checked before it is sent.
    data: v.parse(PaymentStatusData, {
      payment_id: payment.id,
      order_id: payment.order_id,
      user_id: payment.user_id,
      status: payment.status,
      amount_cents: payment.amount_cents,
      ...(payment.reason ? { reason: payment.reason } : {}),
      processed_at: at,
    }),
  }
}

/**
 * The route handlers of `/events/order.created` and `/events/order.cancelled` (CloudEvents 1.0).
 * - `order.created` makes the order's one payment (`order_id`, `user_id`, `total_cents` read from
 *   `data`), holds it `delayMs`, settles it as succeeded with chance `successRate` unless the order
 *   was cancelled meanwhile, and publishes `payment.status` (source `/shop/payment`, data
 *   `{ payment_id, order_id, user_id, status, amount_cents, reason?, processed_at }`). A redelivery
 *   settles nothing new and publishes the same event again.
 * - `order.cancelled` never lets the payment be charged: an undecided payment ends `cancelled`
 *   (one not yet made is recorded so), a charged one is refunded and `payment.status` `refunded`
 *   published under its own stable id.
 * 204 when done; 422 for bad data (dropped); 503 when the database or the publish fails, so the
 * broker retries. Counts `payments_total{status}`.
 */
export function paymentEvents({ pool, log, metrics, publish, successRate, delayMs, random = Math.random, wait = sleep }: PaymentEventDeps) {
  const payments = new Counter({
    name: 'payments_total',
    help: 'Payments that reached each status (succeeded, failed, cancelled, refunded).',
    labelNames: ['status'] as const,
    registers: [metrics.registry],
  })

  const byOrder = async (orderId: string) => {
    const { rows } = await pool.query<PaymentRow>('SELECT * FROM payment.payments WHERE order_id = $1', [orderId])
    if (!rows[0]) throw new Error(`the payment of order ${orderId} is gone`)
    return rows[0]
  }

  // Every delivery that finds it pending races to this guarded UPDATE; one wins, the rest read its
  // result. A cancel during the delay wins too: it leaves the row no longer pending.
  const settle = async (payment: PaymentRow) => {
    await wait(delayMs)
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

  // A failed publish throws: onEvent answers 503, the broker redelivers, and this publishes again.
  const announce = async (payment: PaymentRow) => {
    const event = statusEvent(payment)
    if (event) await publish(event)
  }

  const orderCreated = onEvent({
    type: 'order.created',
    schema: OrderCreatedData,
    log,
    metrics,
    handle: async ({ order_id, user_id, total_cents }) => {
      const outcome: Outcome = random() < successRate ? 'succeeded' : 'failed'
      // A redelivery inserts nothing and takes the stored outcome: the dice are rolled once per order.
      // A row a cancel wrote first is found here too, and is never charged.
      const { rows: inserted } = await pool.query<PaymentRow>(
        `INSERT INTO payment.payments (order_id, user_id, amount_cents, outcome) VALUES ($1, $2, $3, $4)
         ON CONFLICT (order_id) DO NOTHING RETURNING *`,
        [order_id, user_id, total_cents, outcome],
      )
      let payment = inserted[0] ?? (await byOrder(order_id))
      if (payment.status === 'pending') payment = await settle(payment)
      await announce(payment)
      return inserted[0] ? 'handled' : 'duplicate'
    },
  })

  const orderCancelled = onEvent({
    type: 'order.cancelled',
    schema: OrderCancelledData,
    log,
    metrics,
    handle: async ({ order_id, user_id, items, reason }) => {
      const why = reason === 'expired' ? 'order expired' : 'order cancelled'
      const { outcome, payment } = await withTransaction(pool, async (tx): Promise<{ outcome: EventOutcome; payment: PaymentRow }> => {
        // Before order.created: a cancelled payment, so that order.created, when it comes, charges nothing.
        const amount = items.reduce((sum, i) => sum + i.quantity * i.unit_price_cents, 0)
        const { rows: [first] } = await tx.query<PaymentRow>(
          `INSERT INTO payment.payments (order_id, user_id, amount_cents, status, reason, processed_at) VALUES ($1, $2, $3, 'cancelled', $4, now())
           ON CONFLICT (order_id) DO NOTHING RETURNING *`,
          [order_id, user_id, amount, why],
        )
        if (first) return { outcome: 'handled', payment: first }
        // Locked: a settle after the delay, and other deliveries of this event, wait for this one.
        const { rows: [payment] } = await tx.query<PaymentRow>('SELECT * FROM payment.payments WHERE order_id = $1 FOR UPDATE', [order_id])
        if (!payment) throw new Error(`the payment of order ${order_id} is gone`)
        if (payment.user_id !== user_id) throw unprocessable(`the payment of order ${order_id} belongs to another user`)
        const change = async (sql: string) => {
          const { rows } = await tx.query<PaymentRow>(`UPDATE payment.payments SET ${sql}, reason = $2 WHERE id = $1 RETURNING *`, [payment.id, why])
          return { outcome: 'handled' as const, payment: rows[0]! }
        }
        // Not yet decided (order.created is in its delay): never charged.
        if (payment.status === 'pending') return change(`status = 'cancelled', processed_at = now()`)
        if (payment.status === 'succeeded') return change(`status = 'refunded', refund_id = gen_random_uuid(), refunded_at = now()`)
        // Failed: nothing was taken. Cancelled or refunded: this event was handled before.
        return { outcome: payment.status === 'failed' ? 'handled' : 'duplicate', payment }
      })
      if (outcome === 'handled' && (payment.status === 'cancelled' || payment.status === 'refunded')) {
        payments.inc({ status: payment.status })
        if (payment.status === 'refunded') log.info('payment refunded', { order_id, payment_id: payment.id, reason })
      }
      // A refund is announced on every delivery: the first publish may have failed after the commit.
      if (payment.status === 'refunded') await announce(payment)
      return outcome
    },
  })

  return { orderCreated, orderCancelled }
}
