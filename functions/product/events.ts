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
import { Text, Uuid } from '../../shared/validate.ts'
import type { Reservations } from './reservations.ts'

// Our own contracts: only what product needs. Producers add items, totals, timestamps, ….
// Uuid writes ids in lower case, as the reservations store them.

/** A valibot schema: what product reads of an `order.created` event's data (loose: producers add fields). */
export const OrderCreatedData = v.looseObject({ order_id: Uuid, user_id: Uuid })

/** A valibot schema: what product reads of an `order.cancelled` event's data; `reason` defaults to "cancelled". */
export const OrderCancelledData = v.looseObject({
  order_id: Uuid,
  user_id: Uuid,
  // Either way the units come back; the reason is recorded with the reservation.
  reason: v.optional(v.picklist(['cancelled', 'expired'], 'must be cancelled or expired'), 'cancelled'),
})

/** A valibot schema: what product reads of a `payment.status` event's data: any non-empty `status` (only "failed" moves stock). */
export const PaymentStatusData = v.looseObject({
  order_id: Uuid,
  user_id: Uuid,
  // Any status is accepted (a new one must not be rejected); only failed moves stock.
  status: v.pipe(Text, v.nonEmpty('must not be empty')),
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
      // A paid order keeps its units: its payment confirms the hold as its order.created does, so
      // a hold whose order.created has not come (its deliveries failing, dead-lettered) does not
      // expire under an order that was paid. A refund follows a cancel, which gave them back.
      handle: async ({ order_id, user_id, status }) => {
        if (status === 'failed') return reservations.release(order_id, user_id, 'payment_failed')
        if (status === 'succeeded') return reservations.confirm(order_id, user_id)
        return 'handled'
      },
    }),
  }
}
