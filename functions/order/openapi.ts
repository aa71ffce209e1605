/**
 * What the order function's routes answer, for the API description (shared/openapi.ts takes the
 * requests from the routes themselves): the schema of an order, and one description per route.
 */
import * as v from 'valibot'
import { ProblemTypes } from '../../shared/errors.ts'
import { ABOUT_BLANK, IdOut, IntOut, TimeOut, pageOf, problem, type ApiDescription } from '../../shared/openapi.ts'
import { IdempotencyKey } from './app.ts'

/** A valibot schema of an order as its user sees it: lines priced from the catalog when it was placed, amounts in cents. */
export const Order = v.object({
  id: IdOut,
  user_id: IdOut,
  status: v.pipe(
    v.picklist(['pending', 'paid', 'payment_failed', 'cancelled', 'expired']),
    v.description('`pending` until the payment is decided (`paid` or `payment_failed`); `cancelled` by its user; `expired`: pending too long'),
  ),
  total_cents: IntOut(),
  payment_id: v.pipe(v.nullable(IdOut), v.description('the payment, once decided')),
  payment_status: v.pipe(v.nullable(v.picklist(['succeeded', 'failed', 'refunded'])), v.description('what became of the payment (`refunded` after a cancel)')),
  created_at: TimeOut,
  updated_at: TimeOut,
  items: v.array(
    v.object({
      product_id: IdOut,
      name: v.pipe(v.string(), v.description("the product's name when the order was placed")),
      quantity: IntOut(1, 999),
      unit_price_cents: v.pipe(IntOut(0, 2_147_483_647), v.description("the product's price when the order was placed")),
    }),
  ),
})

/** A valibot schema of an order in a listing: in an admin's listing of every user's (`?all=true`), with its buyer's email. */
export const ListedOrder = v.object({
  ...Order.entries,
  user_email: v.optional(v.pipe(v.nullable(v.string()), v.description("in an admin's listing of every user's orders: the buyer's email when the order was placed (null for orders from before it was kept)"))),
})

/** A valibot schema of a page of orders. */
export const OrderPage = pageOf(ListedOrder)

const pending = {
  id: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
  user_id: '0b6f7c1e-3d5a-4f2b-9e8c-1a2b3c4d5e6f',
  status: 'pending',
  total_cents: 4900,
  payment_id: null,
  payment_status: null,
  created_at: '2025-01-15T09:36:00.000Z',
  updated_at: '2025-01-15T09:36:00.000Z',
  items: [{ product_id: '5f0c6a9e-8f1b-4c3e-9a2d-7b1e4c9d0a11', name: 'Espresso beans', quantity: 2, unit_price_cents: 2450 }],
}
const paid = { ...pending, status: 'paid', payment_id: '7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6', payment_status: 'succeeded', updated_at: '2025-01-15T09:36:02.000Z' }
const missing = problem('the caller has no order with this id')

/** The order function's part of the API description. */
export const orderApi: ApiDescription = {
  tag: { name: 'orders', description: "The caller's orders: placed from the catalog's prices with their stock taken at once, then paid (or not) by the payment function." },
  schemas: { Order, ListedOrder, OrderPage },
  operations: {
    'POST /api/orders': {
      operationId: 'placeOrder',
      summary: 'Place an order',
      description:
        "Takes the units of every line at once, all or nothing, and prices them from the catalog (never from the request). One product on several lines is one line. The answer is the order, `pending`; its payment is decided about two seconds later. With an `Idempotency-Key`, the same request again answers the same order (200) and takes nothing more; the same key with another body is refused (422).",
      headers: {
        'Idempotency-Key': {
          description: 'makes a retry safe: 1 to 255 printable ASCII characters, kept per user (a UUID will do)',
          schema: IdempotencyKey,
          example: '8e0f3b9a-1c2d-4e5f-9a8b-7c6d5e4f3a2b',
        },
      },
      requestExamples: { two: { value: { items: [{ product_id: '5f0c6a9e-8f1b-4c3e-9a2d-7b1e4c9d0a11', quantity: 2 }] } } },
      responses: {
        200: { description: 'a replay of an `Idempotency-Key` used before with the same body: that order, as it is now', body: Order, examples: { paid: { value: paid } } },
        201: { description: 'the order, pending', body: Order, examples: { pending: { value: pending } } },
        400: problem('the request is not valid: `errors` names each bad body field (lines of one product adding up to more than 999 among them), or the `Idempotency-Key` header'),
        409: problem('a line asks for more units than are left (`…/out-of-stock`, nothing taken); or a concurrent request with this `Idempotency-Key` failed (retry it)', ProblemTypes.outOfStock, ABOUT_BLANK),
        422: problem('a line names a product that does not exist (`…/unknown-product`); or this `Idempotency-Key` was used for another body', ProblemTypes.unknownProduct, ABOUT_BLANK),
      },
    },
    'GET /api/orders': {
      operationId: 'listOrders',
      summary: 'The caller’s orders, newest first (or, for an admin, every user’s)',
      parameters: { limit: 'orders per page', offset: 'orders to skip', status: 'only orders in this status', all: '`true`: every user’s orders, each with `user_email` (admins only)' },
      responses: {
        200: {
          description: 'a page of orders',
          body: OrderPage,
          examples: {
            mine: { value: { items: [paid], total: 1, limit: 20, offset: 0 } },
            all: { summary: 'an admin’s `?all=true`', value: { items: [{ ...paid, user_email: 'ada@example.com' }], total: 1, limit: 20, offset: 0 } },
          },
        },
        403: problem('`?all=true` from a customer, or `X-User-ID` names another user than the token'),
      },
    },
    'GET /api/orders/:id': {
      operationId: 'getOrder',
      summary: 'One of the caller’s orders',
      parameters: { id: 'the order' },
      responses: { 200: { description: 'the order', body: Order, examples: { paid: { value: paid } } }, 404: missing },
    },
    'POST /api/orders/:id/cancel': {
      operationId: 'cancelOrder',
      summary: 'Cancel a pending order',
      description: 'The payment is then never charged, or refunded (`payment_status: "refunded"`); the units go back to stock and the lines to the cart.',
      parameters: { id: 'the order' },
      responses: {
        200: { description: 'the order, `cancelled`', body: Order, examples: { cancelled: { value: { ...pending, status: 'cancelled', updated_at: '2025-01-15T09:36:01.000Z' } } } },
        404: missing,
        409: problem('the order is no longer pending'),
      },
    },
  },
}
