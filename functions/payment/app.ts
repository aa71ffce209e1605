/**
 * The payment function: pays for each order it hears of, never charges a cancelled one (refunds it
 * if it was charged already), and shows users their payments.
 */
import * as v from 'valibot'
import { requireUser, type TokenVerifier } from '../../shared/auth.ts'
import { notFound } from '../../shared/errors.ts'
import { createApp } from '../../shared/http.ts'
import { Page, Uuid, validate } from '../../shared/validate.ts'
import { paymentEvents, type PaymentEventDeps } from './events.ts'

/** A valibot schema: the query of `GET /api/payments`, `limit` and `offset`. */
export const PaymentListQuery = v.strictObject(Page)
/** A valibot schema: the path of `/api/payments/:orderId`. */
export const PaymentParams = v.strictObject({ orderId: Uuid })

// Not `outcome`: while a payment is pending, that is a result the user must not see yet.
const COLUMNS = 'id, order_id, user_id, status, amount_cents, reason, created_at, processed_at, refunded_at'

type PaymentDeps = PaymentEventDeps & { verify: TokenVerifier }

/**
 * The payment function's app (routes on `createApp`; errors are RFC 9457 problems):
 * - `POST /events/order.created`, `POST /events/order.cancelled`: the CloudEvent consumers
 *   (events.ts): charge an order once; never charge a cancelled one, refund one already charged.
 * - `GET /api/payments?limit&offset`: the caller's payments, newest first, `{ items, total, limit,
 *   offset }`; `GET /api/payments/:orderId`: the payment of one of the caller's orders, 404
 *   otherwise. Each payment is `{ id, order_id, user_id, status ("pending", "succeeded", "failed",
 *   "cancelled" or "refunded"), amount_cents, reason, created_at, processed_at, refunded_at }`;
 *   both need a Bearer token (401).
 */
export function paymentApp({ verify, ...deps }: PaymentDeps) {
  const { pool, log, metrics } = deps
  const app = createApp({ log, metrics, pool })

  const events = paymentEvents(deps)
  app.post('/events/order.created', events.orderCreated)
  app.post('/events/order.cancelled', events.orderCancelled)

  app.get('/api/payments', requireUser(verify), validate('query', PaymentListQuery), async (c) => {
    const { limit, offset } = c.req.valid('query')
    const userId = c.var.user.id
    const [page, count] = await Promise.all([
      pool.query({
        name: 'payment-list',
        text: `SELECT ${COLUMNS} FROM payment.payments WHERE user_id = $1
               ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
        values: [userId, limit, offset],
      }),
      pool.query<{ total: number }>({
        name: 'payment-count',
        text: 'SELECT count(*)::int AS total FROM payment.payments WHERE user_id = $1',
        values: [userId],
      }),
    ])
    return c.json({ items: page.rows, total: count.rows[0]!.total, limit, offset })
  })

  app.get('/api/payments/:orderId', requireUser(verify), validate('param', PaymentParams), async (c) => {
    const { rows } = await pool.query({
      name: 'payment-get',
      text: `SELECT ${COLUMNS} FROM payment.payments WHERE order_id = $1 AND user_id = $2`,
      values: [c.req.valid('param').orderId, c.var.user.id],
    })
    if (!rows[0]) throw notFound('payment')
    return c.json(rows[0])
  })

  return app
}
