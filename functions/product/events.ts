/**
 * What the product function learns from events about the stock it reserved for orders:
 * - `order.created` confirms the hold (its expiry no longer applies);
 * - `order.cancelled` (a cancel, or the order expiring unpaid) gives the units back;
 * - `payment.status` with status `failed` gives them back; any other status changes nothing.
 * A redelivered or replayed event finds the reservation moved already and changes nothing.
 */
import * as v from 'valibot'
import { onEvent } from '../../shared/events.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { Uuid } from '../../shared/validate.ts'
import type { Reservations } from './reservations.ts'

// Our own contracts: only what product needs. Producers add items, totals, timestamps, ….
// Lower case: reservations store uuids as PostgreSQL writes them.
const Id = v.pipe(Uuid, v.toLowerCase())

const OrderCreatedData = v.looseObject({ order_id: Id, user_id: Id })

const OrderCancelledData = v.looseObject({
  order_id: Id,
  user_id: Id,
  // Either way the units come back; the reason is recorded with the reservation.
  reason: v.optional(v.picklist(['cancelled', 'expired'], 'must be cancelled or expired'), 'cancelled'),
})

const PaymentStatusData = v.looseObject({
  order_id: Id,
  user_id: Id,
  // Any status is accepted (a new one must not be rejected); only failed moves stock.
  status: v.pipe(v.string(), v.nonEmpty()),
})

type EventDeps = { reservations: Reservations; log: Logger; metrics: Metrics }

/**
 * The three consumers, for `/events/<type>`. Each answers 204 (handled, or had it already), 400/422
 * for an event that can never succeed (counted as rejected), or 503 so the broker retries.
 */
export function reservationEvents({ reservations, log, metrics }: EventDeps) {
  return {
    orderCreated: onEvent({
      type: 'order.created',
      schema: OrderCreatedData,
      log,
      metrics,
      handle: ({ order_id, user_id }) => reservations.confirm(order_id, user_id),
    }),
    orderCancelled: onEvent({
      type: 'order.cancelled',
      schema: OrderCancelledData,
      log,
      metrics,
      handle: ({ order_id, user_id, reason }) => reservations.release(order_id, user_id, reason === 'expired' ? 'order_expired' : 'order_cancelled'),
    }),
    paymentStatus: onEvent({
      type: 'payment.status',
      schema: PaymentStatusData,
      log,
      metrics,
      // A paid order keeps its units.
      handle: async ({ order_id, user_id, status }) => (status === 'failed' ? reservations.release(order_id, user_id, 'payment_failed') : 'handled'),
    }),
  }
}
