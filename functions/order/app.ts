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
import { HttpProblem, ProblemTypes, badRequest, conflict, forbidden, notFound, unknownProduct, unprocessable, type FieldError } from '../../shared/errors.ts'
import { onEvent, type Publisher } from '../../shared/events.ts'
import { createApp } from '../../shared/http.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { createOutbox } from '../../shared/outbox.ts'
import type { ProductClient } from '../../shared/product-client.ts'
import { Page, Uuid, bodyInt, validate } from '../../shared/validate.ts'
import { announceCancelled, createOrderSweep } from './lifecycle.ts'
import { OrderCreatedData } from './messages.ts'

/**
 * A valibot schema: the body of `POST /api/orders`, 1..50 lines of a product and 1..999 units.
 * One product on several lines (in any spelling of its id: Uuid writes them in lower case) is
 * merged into one line.
 */
export const OrderBody = v.strictObject({
  items: v.pipe(
    v.array(v.strictObject({ product_id: Uuid, quantity: bodyInt(1, 999) }), 'must be a list of {product_id, quantity}'),
    v.minLength(1, 'must have at least 1 line'),
    v.maxLength(50, 'must have at most 50 lines'),
  ),
})
/** A valibot schema: the path of `/api/orders/:id`. */
export const OrderParams = v.strictObject({ id: Uuid })
/** A valibot schema: the query of `GET /api/orders`: `limit` and `offset`, `status` (one status only) and `all` (`true`: every user's). */
export const OrderListQuery = v.strictObject({
  ...Page,
  status: v.optional(v.picklist(['pending', 'paid', 'payment_failed', 'cancelled', 'expired'], 'must be pending, paid, payment_failed, cancelled or expired')),
  all: v.optional(v.picklist(['true', 'false'], 'must be true or false')),
})
/**
 * A valibot schema: the optional `Idempotency-Key` header, an opaque client token
 * (draft-ietf-httpapi-idempotency-key-header) of 1..255 printable ASCII characters.
 */
export const IdempotencyKey = v.optional(v.pipe(v.string(), v.regex(/^[\x21-\x7e]{1,255}$/, 'must be 1 to 255 printable ASCII characters')))

/** A valibot schema: what order reads of a `payment.status` event's data (loose: the producer may add fields). */
export const PaymentStatusData = v.looseObject({
  payment_id: Uuid,
  order_id: Uuid,
  user_id: Uuid,
  status: v.picklist(['succeeded', 'failed', 'refunded'], 'must be succeeded, failed or refunded'),
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
/**
 * The order id for a checkout with an Idempotency-Key: a name-based UUID (version 8 of RFC 9562,
 * SHA-256 of the user and the key, as its appendix B.2 shows), the same for every retry of that
 * checkout, and never equal to another user's or another key's.
 */
export function orderIdFor(userId: string, idempotencyKey: string): string {
  const bytes = createHash('sha256').update(`order\n${userId}\n${idempotencyKey}`).digest().subarray(0, 16)
  bytes[6] = (bytes[6]! & 0x0f) | 0x80 // version 8
  bytes[8] = (bytes[8]! & 0x3f) | 0x80 // variant 10
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

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
 * - `GET /api/orders?limit&offset&status`: newest first, `{ items, total, limit, offset }`, of one
 *   `status` when given; `all=true`: every user's orders, each with `user_email` (the buyer's
 *   email when it was placed), for an admin only (403 otherwise);
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
    // twice. With an Idempotency-Key the id is derived from it: retries of one checkout, even at
    // the same moment, share one reservation instead of each holding units until it expires. One
    // call takes the units of every line, all or nothing, and answers each line's name and price
    // as the catalog has them (never the client's).
    const orderId = key.output ? orderIdFor(userId, key.output) : randomUUID()
    const reservation = await products.reserve(orderId, userId, lines).catch(async (err: unknown) => {
      // A concurrent request with this key and another body holds this id's reservation.
      if (key.output && err instanceof HttpProblem && err.type === ProblemTypes.reservationMismatch) {
        const { rows } = await byKey()
        if (rows[0]) return replay(c, rows[0], hash)
        throw unprocessable('this Idempotency-Key is in use by a request for a different order')
      }
      throw atClientLines(err, lines, c.req.valid('json').items)
    })
    if (reservation instanceof Response) return reservation
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
      // The producer's contract (messages.ts, what the AsyncAPI document describes): an event
      // that broke it would be a bug here, and is never written.
      data: v.parse(OrderCreatedData, {
        order_id: orderId,
        user_id: userId,
        items: priced.map(({ product_id, quantity, unit_price_cents }) => ({ product_id, quantity, unit_price_cents })),
        total_cents: total,
        created_at: new Date().toISOString(),
      }),
    }
    // The answer is the order as this transaction wrote it, read before publishing: once
    // order.created is out, payment.status may move the order on before a later read.
    const created = await withTransaction(pool, async (tx) => {
      const { rows } = await tx.query(
        `INSERT INTO orders.orders (id, user_id, total_cents, idempotency_key, request_hash, user_email) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING
         RETURNING id, user_id, status, total_cents, payment_id, payment_status, created_at, updated_at`,
        [orderId, userId, total, key.output ?? null, hash, c.get('user').email],
      )
      // Ten requests with one key at once: one inserts, the others find its order below. They
      // share the order id too (orderIdFor), so the one that loses may lose on the primary key
      // as well as on the key: no conflict target, either way it inserts nothing.
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

  app.get('/api/orders', user, validate('query', OrderListQuery), async (c) => {
    const { limit, offset, status, all } = c.req.valid('query')
    const me = c.get('user')
    if (all === 'true' && me.role !== 'admin') throw forbidden('only an admin may list every user’s orders')
    // $1 the user (NULL for an admin's listing of every user's), $2 the status (NULL: any). The
    // statement is unnamed, so it is planned with these values and a NULL test costs nothing.
    const who = all === 'true' ? null : me.id
    const where = 'WHERE ($1::uuid IS NULL OR o.user_id = $1) AND ($2::text IS NULL OR o.status = $2)'
    // The admin's listing says who bought: each order as ORDER reads it, and its buyer's email.
    const select = all === 'true' ? ORDER.replace('SELECT ', 'SELECT o.user_email, ') : ORDER
    const [page, count] = await Promise.all([
      pool.query(`${select} ${where} ORDER BY o.created_at DESC, o.id DESC LIMIT $3 OFFSET $4`, [who, status ?? null, limit, offset]),
      pool.query<{ total: number }>(`SELECT count(*)::int AS total FROM orders.orders o ${where}`, [who, status ?? null]),
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
