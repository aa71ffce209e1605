/**
 * What the payment function's routes answer, for the API description (shared/openapi.ts takes the
 * requests from the routes themselves): the schema of a payment, and one description per route.
 */
import * as v from 'valibot'
import { IdOut, IntOut, TimeOut, pageOf, problem, type ApiDescription } from '../../shared/openapi.ts'

/** A valibot schema of a payment as its user sees it: one per order. */
export const Payment = v.object({
  id: IdOut,
  order_id: IdOut,
  user_id: IdOut,
  status: v.pipe(
    v.picklist(['pending', 'succeeded', 'failed', 'cancelled', 'refunded']),
    v.description('`pending` until decided; `cancelled`: the order was cancelled first and nothing was charged; `refunded`: charged, then the order was cancelled'),
  ),
  amount_cents: v.pipe(IntOut(), v.description('the amount, in cents')),
  reason: v.pipe(v.nullable(v.string()), v.description('why it failed, or was cancelled or refunded')),
  created_at: TimeOut,
  processed_at: v.pipe(v.nullable(TimeOut), v.description('when it was decided (null while pending)')),
  refunded_at: v.nullable(TimeOut),
})

/** A valibot schema of a page of payments. */
export const PaymentPage = pageOf(Payment)

const paid = {
  id: '7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6',
  order_id: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
  user_id: '0b6f7c1e-3d5a-4f2b-9e8c-1a2b3c4d5e6f',
  status: 'succeeded',
  amount_cents: 4900,
  reason: null,
  created_at: '2025-01-15T09:36:00.000Z',
  processed_at: '2025-01-15T09:36:02.000Z',
  refunded_at: null,
}

/** The payment function's part of the API description. */
export const paymentApi: ApiDescription = {
  tag: { name: 'payments', description: "The caller's payments: one per order, decided about two seconds after the order is placed." },
  schemas: { Payment, PaymentPage },
  operations: {
    'GET /api/payments': {
      operationId: 'listPayments',
      summary: 'The caller’s payments, newest first',
      parameters: { limit: 'payments per page', offset: 'payments to skip' },
      responses: { 200: { description: 'a page of payments', body: PaymentPage, examples: { page: { value: { items: [paid], total: 1, limit: 20, offset: 0 } } } } },
    },
    'GET /api/payments/:orderId': {
      operationId: 'getPayment',
      summary: 'The payment of one of the caller’s orders',
      parameters: { orderId: 'the order' },
      responses: {
        200: { description: 'the payment', body: Payment, examples: { paid: { value: paid } } },
        404: problem('no payment for this order of the caller (yet: it is made when the order reaches the payment function)'),
      },
    },
  },
}
