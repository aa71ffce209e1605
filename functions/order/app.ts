/**
 * The order function: orders placed from the catalog's current prices, announced as
 * `order.created` through a transactional outbox, and moved forward by `payment.status`. A user's
 * cancel, or the sweep when an order stays pending too long, announces `order.cancelled`
 * (lifecycle.ts).
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Context } from 'hono'
import { Counter, Gauge } from 'prom-client'
import * as v from 'valibot'
import { requireUser, type TokenVerifier } from '../../shared/auth.ts'
import { withTransaction, type Pool, type Queryable } from '../../shared/db.ts'
import { HttpProblem, ProblemTypes, badRequest, conflict, notFound, unknownProduct, unprocessable, type FieldError } from '../../shared/errors.ts'
import { onEvent, type Publisher } from '../../shared/events.ts'
import { createApp } from '../../shared/http.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { createOutbox } from '../../shared/outbox.ts'
import type { ProductClient } from '../../shared/product-client.ts'
import { Page, Uuid, bodyInt, validate } from '../../shared/validate.ts'
import { announceCancelled, createOrderSweep } from './lifecycle.ts'

const OrderBody = v.strictObject({
  items: v.pipe(
    // Lower case: one product is one line however its id is spelled.
    v.array(v.strictObject({ product_id: v.pipe(Uuid, v.toLowerCase()), quantity: bodyInt(1, 999) }), 'must be a list of {product_id, quantity}'),
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
  status: v.picklist(['succeeded', 'failed', 'refunded']),
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

/** Product numbers the merged lines it was sent; the client should read the numbers of its own body. */
function atClientLines(err: unknown, sent: Line[], body: Line[]): unknown {
  if (!(err instanceof HttpProblem) || err.type !== ProblemTypes.unknownProduct || !err.errors) return err
  return unknownProduct(
    err.errors.map((e) => {
      const id = sent[Number(/^items\.(\d+)\./.exec(e.path)?.[1])]?.product_id
      const at = body.findIndex((l) => l.product_id === id)
      return at < 0 ? e : { ...e, path: `items.${at}.product_id` }
    }),
  )
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
  /** Seconds after its last announcement that a pending order is announced again (ORDER_REANNOUNCE_AFTER_S). */
  reannounceAfterS?: number
  /** Seconds after it was placed that a pending order expires (ORDER_EXPIRE_AFTER_S). */
  expireAfterS?: number
}

/**
 * The order function's app (routes on `createApp`; errors are RFC 9457 problems). An order is
 * `{ id, user_id, status ("pending", "paid", "payment_failed", "cancelled" or "expired"),
 * total_cents, payment_id, payment_status, created_at, updated_at, items: [{ product_id, name,
 * quantity, unit_price_cents }] }`, amounts in whole cents. The `/api` routes need a Bearer token
 * (401) and see only the caller's orders (404 for others'):
 * - `POST /api/orders` `{ items: [{ product_id, quantity }] }` (1..50 lines, same products merged,
 *   1..999 each): takes the units from the product function in one call (409 `…/out-of-stock`
 *   with `unavailable` when a line is short, nothing taken; 422 for unknown products; 503 when
 *   it does not answer), then 201 the pending order, written with its `order.created` CloudEvent
 *   in one transaction (the outbox) and published after commit. An `Idempotency-Key` header (IETF
 *   draft-ietf-httpapi-idempotency-key-header; 1..255 printable ASCII) makes a replay with the
 *   same body answer 200 with that order, and one with another body 422.
 * - `GET /api/orders?limit&offset`: newest first, `{ items, total, limit, offset }`;
 *   `GET /api/orders/:id`; `POST /api/orders/:id/cancel`: a pending order becomes `cancelled`
 *   and `order.cancelled` goes out through the outbox; 409 unless pending.
 * - `POST /events/payment.status`: the CloudEvent consumer that moves a pending order to paid or
 *   payment_failed, and shows a refund (a cancelled order keeps its payment's id and status);
 *   422 for an unknown order or another user's.
 * - `POST /internal/outbox/flush`: expires orders pending `expireAfterS` (default 900 s), announces
 *   again those pending `reannounceAfterS` (default 60 s), then sends what the outbox holds:
 *   `{ sent, failed, pending }` (the PingSource calls it). Registers `orders_total{status}` and
 *   `orders_pending_oldest_age_seconds`.
 */
export function orderApp({
  pool,
  log,
  metrics,
  verify,
  products,
  publish,
  outboxTable = 'orders.outbox',
  reannounceAfterS = 60,
  expireAfterS = 900,
}: OrderDeps) {
  const app = createApp({ log, metrics, pool })
  const outbox = createOutbox({ pool, table: outboxTable, publish, log, metrics })
  const sweep = createOrderSweep({ pool, outbox, outboxTable, log, reannounceAfterS, expireAfterS })
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

    // The id comes first: product keys its reservation by it, so a retried reserve takes nothing
    // twice. One call takes the units of every line, all or nothing, and answers each line's name
    // and price as the catalog has them (never the client's).
    const orderId = randomUUID()
    const reservation = await products.reserve(orderId, userId, lines).catch((err: unknown) => {
      throw atClientLines(err, lines, c.req.valid('json').items)
    })
    // From here on the units are held for orderId. If this request gets no further (the commit
    // fails, the process dies, or a concurrent request with the same Idempotency-Key committed
    // first), no order.created ever confirms the hold, and product gives the units back when it
    // expires (RESERVATION_TTL_S). A retry is a new request with a new order id.
    const priced = reservation.items
    const total = priced.reduce((sum, l) => sum + l.quantity * l.unit_price_cents, 0)
    const event = {
      id: randomUUID(),
      type: 'order.created',
      source: '/shop/order',
      data: {
        order_id: orderId,
        user_id: userId,
        items: priced.map(({ product_id, quantity, unit_price_cents }) => ({ product_id, quantity, unit_price_cents })),
        total_cents: total,
        created_at: new Date().toISOString(),
      },
    }
    // The answer is the order as this transaction wrote it, read before publishing: once
    // order.created is out, payment.status may move the order on before a later read.
    const created = await withTransaction(pool, async (tx) => {
      const { rows } = await tx.query(
        `INSERT INTO orders.orders (id, user_id, total_cents, idempotency_key, request_hash) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, idempotency_key) DO NOTHING
         RETURNING id, user_id, status, total_cents, payment_id, payment_status, created_at, updated_at`,
        [orderId, userId, total, key.output ?? null, hash],
      )
      // Ten requests with one key at once: one inserts, the others find its order below.
      if (!rows[0]) return undefined
      await tx.query(
        `INSERT INTO orders.order_items (order_id, product_id, name, quantity, unit_price_cents)
         SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::int[], $5::int[])`,
        [orderId, priced.map((l) => l.product_id), priced.map((l) => l.name), priced.map((l) => l.quantity), priced.map((l) => l.unit_price_cents)],
      )
      await outbox.add(tx, event)
      // The order as committed, lines ordered by product id like readOrder's.
      return { ...rows[0], items: priced }
    })
    if (!created) {
      const { rows } = await byKey()
      if (!rows[0]) throw conflict('a concurrent request with this Idempotency-Key failed; retry it')
      return replay(c, rows[0], hash)
    }
    ordersTotal.inc({ status: 'pending' })
    // After commit the order exists, so the answer is 201 whatever happens to its event: send()
    // never throws. If the broker refuses, or takes it but the row cannot be marked sent, the row
    // stays and the outbox sends it again; after a publish that works it sweeps what is left.
    await outbox.send(event)
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
    // The guarded UPDATE decides a race with the payment's outcome or the expiry: whichever moves
    // the order out of pending first wins. order.cancelled is written in the same transaction.
    const events = await withTransaction(pool, async (tx) => {
      const { rows } = await tx.query<{ id: string; user_id: string }>(
        `UPDATE orders.orders SET status = 'cancelled', updated_at = now() WHERE id = $1 AND user_id = $2 AND status = 'pending'
         RETURNING id, user_id`,
        [id, userId],
      )
      return announceCancelled(tx, outbox, rows, 'cancelled')
    })
    // After commit, like order.created: if the broker refuses, the sweep sends it.
    for (const event of events) await outbox.send(event)
    const order = await readOrder(pool, id, userId)
    if (!order) throw notFound('order')
    if (!events.length) throw conflict(`the order is ${order.status}; only a pending order can be cancelled`)
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
        // Forward only: pending -> paid | payment_failed, in one guarded UPDATE. A refund only ever
        // follows a cancel, so it never moves a pending order.
        if (status !== 'refunded') {
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
        }
        // An order cancelled (or expired) meanwhile stays so, and shows what became of its payment:
        // the payment function refunds a charge on order.cancelled. A refund is final; a success or
        // failure arriving after it (deliveries overtake each other) changes nothing.
        const kept = await pool.query(
          `UPDATE orders.orders SET payment_id = $3, payment_status = $4::text, updated_at = now()
           WHERE id = $1 AND user_id = $2 AND status IN ('cancelled', 'expired')
             AND CASE WHEN $4::text = 'refunded' THEN payment_status IS DISTINCT FROM 'refunded' ELSE payment_id IS NULL END`,
          [order_id, user_id, payment_id, status],
        )
        if (kept.rowCount) return 'handled'
        const { rows } = await pool.query<{ user_id: string }>('SELECT user_id FROM orders.orders WHERE id = $1', [order_id])
        if (!rows[0]) throw unprocessable(`there is no order ${order_id}`)
        if (rows[0].user_id !== user_id) throw unprocessable(`order ${order_id} belongs to another user`)
        return 'duplicate'
      },
    }),
  )

  // What the PingSource calls; the ingress never routes here (no /api prefix). The sweep first, so
  // that what it writes (announcements again, order.cancelled of expired orders) goes out now.
  app.post('/internal/outbox/flush', async (c) => {
    const { expired } = await sweep()
    if (expired) ordersTotal.inc({ status: 'expired' }, expired)
    return c.json(await outbox.flush())
  })

  return app
}
