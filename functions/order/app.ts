/**
 * The order function: orders placed from the catalog's current prices, announced as
 * `order.created` through a transactional outbox, and moved forward by `payment.status`.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Context } from 'hono'
import { Counter, Gauge } from 'prom-client'
import * as v from 'valibot'
import { requireUser, type TokenVerifier } from '../../shared/auth.ts'
import { withTransaction, type Pool, type Queryable } from '../../shared/db.ts'
import { badRequest, conflict, notFound, unprocessable, type FieldError } from '../../shared/errors.ts'
import { onEvent, type Publisher } from '../../shared/events.ts'
import { createApp } from '../../shared/http.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { createOutbox } from '../../shared/outbox.ts'
import type { Product, ProductClient } from '../../shared/product-client.ts'
import { Page, Uuid, bodyInt, validate } from '../../shared/validate.ts'

const OrderBody = v.strictObject({
  items: v.pipe(
    v.array(v.strictObject({ product_id: Uuid, quantity: bodyInt(1, 999) }), 'must be a list of {product_id, quantity}'),
    v.minLength(1, 'must have at least 1 line'),
    v.maxLength(50, 'must have at most 50 lines'),
  ),
})
const OrderParams = v.strictObject({ id: Uuid })
const ListQuery = v.strictObject(Page)
// An opaque client token (draft-ietf-httpapi-idempotency-key-header): printable ASCII.
const IdempotencyKey = v.optional(v.pipe(v.string(), v.regex(/^[\x21-\x7e]{1,255}$/, 'must be 1 to 255 printable ASCII characters')))

// The order function's own contract for payment.status (the producer may add fields).
const PaymentStatusData = v.looseObject({
  payment_id: Uuid,
  order_id: Uuid,
  user_id: Uuid,
  status: v.picklist(['succeeded', 'failed']),
})

type Line = { product_id: string; quantity: number }
type OrderRow = { id: string; user_id: string; status: string; request_hash: string | null }

const ORDER = `SELECT o.id, o.user_id, o.status, o.total_cents, o.payment_id, o.payment_status, o.created_at, o.updated_at,
  coalesce((SELECT json_agg(json_build_object('product_id', i.product_id, 'name', i.name, 'quantity', i.quantity,
                     'unit_price_cents', i.unit_price_cents) ORDER BY i.product_id)
              FROM orders.order_items i WHERE i.order_id = o.id), '[]') AS items
  FROM orders.orders o`

const readOrder = async (db: Queryable, id: string, userId: string) =>
  (await db.query(`${ORDER} WHERE o.id = $1 AND o.user_id = $2`, [id, userId])).rows[0]

/** Duplicate product ids become one line; the merged line must still hold 1..999. */
function mergeLines(items: Line[]): Line[] {
  const merged = new Map<string, number>()
  for (const { product_id, quantity } of items) merged.set(product_id, (merged.get(product_id) ?? 0) + quantity)
  const errors: FieldError[] = []
  for (const [product_id, quantity] of merged) {
    if (quantity > 999) errors.push({ path: 'items', message: `product ${product_id} adds up to ${quantity}; a line holds at most 999` })
  }
  if (errors.length) throw badRequest('the request body is not valid', errors)
  return [...merged].map(([product_id, quantity]) => ({ product_id, quantity })).sort((a, b) => a.product_id.localeCompare(b.product_id))
}

type OrderDeps = {
  pool: Pool
  log: Logger
  metrics: Metrics
  verify: TokenVerifier
  products: ProductClient
  publish: Publisher
  /** Tests of the sweep give it a table of its own, out of reach of other tests' sweeps. */
  outboxTable?: string
}

/**
 * The order function's app (routes on `createApp`; errors are RFC 9457 problems). An order is
 * `{ id, user_id, status ("pending", "paid", "payment_failed" or "cancelled"), total_cents,
 * payment_id, payment_status, created_at, updated_at, items: [{ product_id, name, quantity,
 * unit_price_cents }] }`, amounts in whole cents. The `/api` routes need a Bearer token (401) and
 * see only the caller's orders (404 for others'):
 * - `POST /api/orders` `{ items: [{ product_id, quantity }] }` (1..50 lines, same products merged,
 *   1..999 each): 201 a pending order priced from the catalog now, written with its
 *   `order.created` CloudEvent in one transaction (the outbox) and published after commit; 422
 *   for unknown products, 503 when the product function does not answer. An `Idempotency-Key`
 *   header (IETF draft-ietf-httpapi-idempotency-key-header; 1..255 printable ASCII) makes a replay
 *   with the same body answer 200 with the first order, and one with another body 422.
 * - `GET /api/orders?limit&offset`: newest first, `{ items, total, limit, offset }`;
 *   `GET /api/orders/:id`; `POST /api/orders/:id/cancel`: 409 unless pending.
 * - `POST /events/payment.status`: the CloudEvent consumer that moves a pending order to paid or
 *   payment_failed (a cancelled order keeps a successful payment for a refund); 422 for an unknown
 *   order or another user's.
 * - `POST /internal/outbox/flush`: sends what the outbox holds, `{ sent, failed, pending }` (the
 *   PingSource calls it). Registers `orders_total{status}` and `orders_pending_oldest_age_seconds`.
 */
export function orderApp({ pool, log, metrics, verify, products, publish, outboxTable = 'orders.outbox' }: OrderDeps) {
  const app = createApp({ log, metrics, pool })
  const outbox = createOutbox({ pool, table: outboxTable, publish, log, metrics })
  const ordersTotal = new Counter({
    name: 'orders_total',
    help: 'Orders that reached each status, by status.',
    labelNames: ['status'] as const,
    registers: [metrics.registry],
  })
  new Gauge({
    name: 'orders_pending_oldest_age_seconds',
    help: 'Age of the oldest order still waiting for its payment (0 when none).',
    registers: [metrics.registry],
    async collect() {
      const { rows } = await pool
        .query<{ age: number | null }>(`SELECT extract(epoch FROM now() - min(created_at))::float8 AS age FROM orders.orders WHERE status = 'pending'`)
        .catch(() => ({ rows: [{ age: null }] }))
      this.set(rows[0]?.age ?? 0)
    },
  })
  const user = requireUser(verify)

  // A replay of the same key and body gets the first answer again; another body is refused.
  const replay = async (c: Context, existing: OrderRow, hash: string) => {
    if (existing.request_hash !== hash) throw unprocessable('this Idempotency-Key was already used for a different order')
    return c.json(await readOrder(pool, existing.id, existing.user_id), 200)
  }

  app.post('/api/orders', user, validate('json', OrderBody), async (c) => {
    const userId = c.get('user').id
    const key = v.safeParse(IdempotencyKey, c.req.header('Idempotency-Key'))
    if (!key.success) throw badRequest('the Idempotency-Key header is not valid', [{ path: 'Idempotency-Key', message: key.issues[0].message }])
    const lines = mergeLines(c.req.valid('json').items)
    const hash = createHash('sha256').update(JSON.stringify(lines)).digest('hex')
    const byKey = () =>
      pool.query<OrderRow>('SELECT id, user_id, status, request_hash FROM orders.orders WHERE user_id = $1 AND idempotency_key = $2', [userId, key.output])
    if (key.output) {
      const { rows } = await byKey()
      if (rows[0]) return replay(c, rows[0], hash)
    }

    // Names and prices come from the catalog now, never from the client.
    const found = await Promise.all(lines.map((l) => products.get(l.product_id)))
    const unknown = lines.flatMap((l, i) => (found[i] ? [] : [{ path: `items.${i}.product_id`, message: `no product ${l.product_id}` }]))
    if (unknown.length) throw unprocessable('the order names products that do not exist', unknown)
    const priced = lines.map((l, i) => ({ ...l, product: found[i] as Product }))
    const total = priced.reduce((sum, l) => sum + l.quantity * l.product.price_cents, 0)

    const orderId = randomUUID()
    const event = {
      id: randomUUID(),
      type: 'order.created',
      source: '/shop/order',
      data: {
        order_id: orderId,
        user_id: userId,
        items: priced.map((l) => ({ product_id: l.product_id, quantity: l.quantity, unit_price_cents: l.product.price_cents })),
        total_cents: total,
        created_at: new Date().toISOString(),
      },
    }
    // The answer is the order as this transaction wrote it, read before publishing: once
    // order.created is out, payment.status may move the order on before a later read.
    const created = await withTransaction(pool, async (tx) => {
      const { rowCount } = await tx.query(
        `INSERT INTO orders.orders (id, user_id, total_cents, idempotency_key, request_hash) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, idempotency_key) DO NOTHING`,
        [orderId, userId, total, key.output ?? null, hash],
      )
      // Ten requests with one key at once: one inserts, the others find its order below.
      if (!rowCount) return undefined
      await tx.query(
        `INSERT INTO orders.order_items (order_id, product_id, name, quantity, unit_price_cents)
         SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::int[], $5::int[])`,
        [orderId, priced.map((l) => l.product_id), priced.map((l) => l.product.name), priced.map((l) => l.quantity), priced.map((l) => l.product.price_cents)],
      )
      await outbox.add(tx, event)
      return readOrder(tx, orderId, userId)
    })
    if (!created) {
      const { rows } = await byKey()
      if (!rows[0]) throw conflict('a concurrent request with this Idempotency-Key failed; retry it')
      return replay(c, rows[0], hash)
    }
    ordersTotal.inc({ status: 'pending' })
    // After commit. If the broker refuses, the client still has its order: the row stays and a
    // flush sends it. After a publish that worked, sweep what earlier ones left behind.
    if (await outbox.send(event)) void outbox.sweepIfBacklog()?.catch((err: unknown) => log.warn('outbox flush failed', { err }))
    return c.json(created, 201)
  })

  app.get('/api/orders', user, validate('query', ListQuery), async (c) => {
    const { limit, offset } = c.req.valid('query')
    const userId = c.get('user').id
    const [page, count] = await Promise.all([
      pool.query(`${ORDER} WHERE o.user_id = $1 ORDER BY o.created_at DESC, o.id DESC LIMIT $2 OFFSET $3`, [userId, limit, offset]),
      pool.query<{ total: number }>('SELECT count(*)::int AS total FROM orders.orders WHERE user_id = $1', [userId]),
    ])
    return c.json({ items: page.rows, total: count.rows[0]!.total, limit, offset })
  })

  app.get('/api/orders/:id', user, validate('param', OrderParams), async (c) => {
    const order = await readOrder(pool, c.req.valid('param').id, c.get('user').id)
    if (!order) throw notFound('order')
    return c.json(order)
  })

  app.post('/api/orders/:id/cancel', user, validate('param', OrderParams), async (c) => {
    const { id } = c.req.valid('param')
    const userId = c.get('user').id
    const { rowCount } = await pool.query(
      `UPDATE orders.orders SET status = 'cancelled', updated_at = now() WHERE id = $1 AND user_id = $2 AND status = 'pending'`,
      [id, userId],
    )
    const order = await readOrder(pool, id, userId)
    if (!order) throw notFound('order')
    if (!rowCount) throw conflict(`the order is ${order.status}; only a pending order can be cancelled`)
    ordersTotal.inc({ status: 'cancelled' })
    return c.json(order)
  })

  app.post(
    '/events/payment.status',
    onEvent({
      type: 'payment.status',
      schema: PaymentStatusData,
      log,
      metrics,
      handle: async ({ order_id, user_id, payment_id, status }) => {
        // Forward only: pending -> paid | payment_failed, in one guarded UPDATE.
        const next = status === 'succeeded' ? 'paid' : 'payment_failed'
        const moved = await pool.query(
          `UPDATE orders.orders SET status = $3, payment_id = $4, payment_status = $5, updated_at = now()
           WHERE id = $1 AND user_id = $2 AND status = 'pending'`,
          [order_id, user_id, next, payment_id, status],
        )
        if (moved.rowCount) {
          ordersTotal.inc({ status: next })
          return 'handled'
        }
        // Money taken for an order cancelled meanwhile: it stays cancelled and keeps the payment, for a refund.
        if (status === 'succeeded') {
          const kept = await pool.query(
            `UPDATE orders.orders SET payment_id = $3, payment_status = 'succeeded', updated_at = now()
             WHERE id = $1 AND user_id = $2 AND status = 'cancelled' AND payment_id IS NULL`,
            [order_id, user_id, payment_id],
          )
          if (kept.rowCount) {
            log.warn('payment succeeded for a cancelled order: a refund is due', { order_id, payment_id })
            return 'handled'
          }
        }
        const { rows } = await pool.query<{ user_id: string }>('SELECT user_id FROM orders.orders WHERE id = $1', [order_id])
        if (!rows[0]) throw unprocessable(`there is no order ${order_id}`)
        if (rows[0].user_id !== user_id) throw unprocessable(`order ${order_id} belongs to another user`)
        return 'duplicate'
      },
    }),
  )

  // What the PingSource calls; the ingress never routes here (no /api prefix).
  app.post('/internal/outbox/flush', async (c) => c.json(await outbox.flush()))

  return app
}
