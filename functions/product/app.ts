/**
 * The product function: the catalog, and the stock in it. Anyone reads it; admins write it; the
 * order function reserves stock for each order here (reservations.ts), and events confirm or
 * release what it reserved (events.ts).
 */
import * as v from 'valibot'
import { requireAdmin, requireUser, type TokenVerifier } from '../../shared/auth.ts'
import type { Pool } from '../../shared/db.ts'
import { conflict, notFound } from '../../shared/errors.ts'
import { createApp } from '../../shared/http.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { Page, Text, Uuid, bodyInt, validate } from '../../shared/validate.ts'
import { reservationEvents } from './events.ts'
import { createReservations } from './reservations.ts'

const INT_MAX = 2_147_483_647

/** The fields of a product a client writes, each a valibot schema: `name` (1..200 characters, trimmed), `description` (up to 5,000), `price_cents` and `stock` (whole numbers, 0..2^31 − 1). */
export const ProductFields = {
  name: v.pipe(Text, v.trim(), v.nonEmpty('must not be empty'), v.maxLength(200, 'must be at most 200 characters')),
  description: v.pipe(Text, v.maxLength(5_000, 'must be at most 5000 characters')),
  price_cents: bodyInt(0, INT_MAX),
  stock: bodyInt(0, INT_MAX),
}

/** A valibot schema: the body of `POST /api/products`; `description` defaults to "" and `stock` to 0. */
export const ProductCreate = v.strictObject({
  ...ProductFields,
  description: v.optional(ProductFields.description, ''),
  stock: v.optional(ProductFields.stock, 0),
})
/** A valibot schema: the body of `PUT /api/products/:id`, the whole product: every field is required (PATCH is for parts). */
export const ProductReplace = v.strictObject(ProductFields)
/** A valibot schema: the body of `PATCH /api/products/:id`, any of the fields, at least one. */
export const ProductPatch = v.pipe(
  v.strictObject({
    name: v.optional(ProductFields.name),
    description: v.optional(ProductFields.description),
    price_cents: v.optional(ProductFields.price_cents),
    stock: v.optional(ProductFields.stock),
  }),
  v.check((p) => Object.keys(p).length > 0, 'must change at least one field'),
)
/** A valibot schema: the body of `POST /api/products/:id/stock`, `delta` a whole number of units, not 0. */
export const StockBody = v.strictObject({ delta: v.pipe(bodyInt(-INT_MAX, INT_MAX), v.check((d) => d !== 0, 'must not be 0')) })
/** A valibot schema: the path of `/api/products/:id`. */
export const ProductParams = v.strictObject({ id: Uuid })
/** A valibot schema: the query of `GET /api/products`: `limit`, `offset` and `q`, a search of up to 100 characters. */
export const ProductListQuery = v.strictObject({
  ...Page,
  q: v.optional(v.pipe(Text, v.trim(), v.maxLength(100, 'must be at most 100 characters'))),
})

/**
 * A valibot schema: the body of `POST /internal/reservations` (the order function's call): an
 * order's id, its user's, and 1..100 lines, each product once.
 */
export const ReserveBody = v.strictObject({
  order_id: Uuid,
  user_id: Uuid,
  items: v.pipe(
    v.array(v.strictObject({ product_id: Uuid, quantity: bodyInt(1, INT_MAX) }), 'must be a list of {product_id, quantity}'),
    v.minLength(1, 'must have at least 1 line'),
    v.maxLength(100, 'must have at most 100 lines'),
    // Uuid writes ids in lower case, so one product in two spellings is caught here too.
    v.check((items) => new Set(items.map((i) => i.product_id)).size === items.length, 'must name each product once'),
  ),
})

const COLUMNS = 'id, name, description, price_cents, stock, created_at, updated_at'

// ILIKE treats % and _ as wildcards; a search for "50%" means the characters.
const likeEscape = (s: string) => s.replace(/[\\%_]/g, '\\$&')

type ProductDeps = {
  pool: Pool
  log: Logger
  metrics: Metrics
  verify: TokenVerifier
  /** Seconds an order's hold waits for order.created before its units come back (default 600). */
  reservationTtlSeconds?: number
  /** At most one background expiry sweep per this many milliseconds, started by a reserve; 0: none. */
  expirySweepIntervalMs?: number
}

/**
 * The product function's app (routes on `createApp`; errors are RFC 9457 problems). A product is
 * `{ id, name, description, price_cents (whole cents), stock, created_at, updated_at }`; `stock`
 * is what can still be sold.
 * - `GET /api/products?limit&offset&q`: anyone; newest first, `q` a case-insensitive substring of
 *   the name; `{ items, total, limit, offset }`. `GET /api/products/:id`: the product, 404.
 * - Admins only (401 without a token, 403 for a customer): `POST /api/products` (201), `PUT
 *   /api/products/:id` (the whole product: every field required, 400 naming each missing one),
 *   `PATCH /api/products/:id` (some), `DELETE /api/products/:id` (204), each 404 for an unknown
 *   id; `POST /api/products/:id/stock
 *   { delta }` adds to the stock atomically, 409 if it would go below 0 or past 2^31 − 1.
 * - Internal (never routed by the ingress): `POST /internal/reservations` takes an order's units,
 *   `POST /internal/reservations/expire` gives back holds no `order.created` confirmed
 *   (reservations.ts); `POST /events/<type>` for `order.created`, `order.cancelled` and
 *   `payment.status` (events.ts).
 */
export function productApp({ pool, log, metrics, verify, reservationTtlSeconds = 600, expirySweepIntervalMs }: ProductDeps) {
  const app = createApp({ log, metrics, pool })
  const admin = [requireUser(verify), requireAdmin()] as const
  const reservations = createReservations({ pool, log, metrics, ttlSeconds: reservationTtlSeconds, sweepIntervalMs: expirySweepIntervalMs })

  app.get('/api/products', validate('query', ProductListQuery), async (c) => {
    const { limit, offset, q } = c.req.valid('query')
    const pattern = q ? `%${likeEscape(q)}%` : null
    const [page, count] = await Promise.all([
      pool.query({
        name: 'product-list',
        text: `SELECT ${COLUMNS} FROM product.products WHERE $1::text IS NULL OR name ILIKE $1
               ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
        values: [pattern, limit, offset],
      }),
      pool.query<{ total: number }>({
        name: 'product-count',
        text: 'SELECT count(*)::int AS total FROM product.products WHERE $1::text IS NULL OR name ILIKE $1',
        values: [pattern],
      }),
    ])
    const items = page.rows
    const total = count.rows[0]!.total
    return c.json({ items, total, limit, offset })
  })

  app.get('/api/products/:id', validate('param', ProductParams), async (c) => {
    const { rows } = await pool.query({
      name: 'product-get',
      text: `SELECT ${COLUMNS} FROM product.products WHERE id = $1`,
      values: [c.req.valid('param').id],
    })
    if (!rows[0]) throw notFound('product')
    return c.json(rows[0])
  })

  app.post('/api/products', ...admin, validate('json', ProductCreate), async (c) => {
    const { name, description, price_cents, stock } = c.req.valid('json')
    const { rows } = await pool.query(
      `INSERT INTO product.products (name, description, price_cents, stock) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
      [name, description, price_cents, stock],
    )
    return c.json(rows[0], 201)
  })

  app.put('/api/products/:id', ...admin, validate('param', ProductParams), validate('json', ProductReplace), async (c) => {
    const { name, description, price_cents, stock } = c.req.valid('json')
    const { rows } = await pool.query(
      `UPDATE product.products SET name = $2, description = $3, price_cents = $4, stock = $5, updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [c.req.valid('param').id, name, description, price_cents, stock],
    )
    if (!rows[0]) throw notFound('product')
    return c.json(rows[0])
  })

  app.patch('/api/products/:id', ...admin, validate('param', ProductParams), validate('json', ProductPatch), async (c) => {
    const p = c.req.valid('json')
    const { rows } = await pool.query(
      `UPDATE product.products SET
         name = coalesce($2, name), description = coalesce($3, description),
         price_cents = coalesce($4, price_cents), stock = coalesce($5, stock), updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [c.req.valid('param').id, p.name ?? null, p.description ?? null, p.price_cents ?? null, p.stock ?? null],
    )
    if (!rows[0]) throw notFound('product')
    return c.json(rows[0])
  })

  app.delete('/api/products/:id', ...admin, validate('param', ProductParams), async (c) => {
    const { rowCount } = await pool.query('DELETE FROM product.products WHERE id = $1', [c.req.valid('param').id])
    if (!rowCount) throw notFound('product')
    return c.body(null, 204)
  })

  // One guarded UPDATE: concurrent adjustments can never take stock below 0 (the CHECK backs it).
  app.post('/api/products/:id/stock', ...admin, validate('param', ProductParams), validate('json', StockBody), async (c) => {
    const { id } = c.req.valid('param')
    const { delta } = c.req.valid('json')
    const { rows } = await pool.query(
      `UPDATE product.products SET stock = stock + $2, updated_at = now()
       WHERE id = $1 AND stock::bigint + $2 BETWEEN 0 AND ${INT_MAX} RETURNING ${COLUMNS}`,
      [id, delta],
    )
    if (rows[0]) return c.json(rows[0])
    const { rows: found } = await pool.query<{ stock: number }>('SELECT stock FROM product.products WHERE id = $1', [id])
    if (!found[0]) throw notFound('product')
    if (found[0].stock + delta < 0) throw conflict(`stock is ${found[0].stock}; taking ${-delta} would go below 0`)
    throw conflict(`stock would exceed ${INT_MAX}`)
  })

  // The order function's one call per order; the ingress never routes /internal. 201 when the
  // units were taken now, 200 when this order id was reserved before with the same lines (nothing
  // more is taken: a retried request is safe). The same order id with other lines or another user
  // is 422, as an Idempotency-Key reused for another body is: the request itself is wrong, not
  // the state of the stock.
  app.post('/internal/reservations', validate('json', ReserveBody), async (c) => {
    const { created, reservation } = await reservations.reserve(c.req.valid('json'))
    return c.json(reservation, created ? 201 : 200)
  })

  // What the PingSource calls; its CloudEvent body says nothing this needs.
  app.post('/internal/reservations/expire', async (c) => c.json(await reservations.expire()))

  const events = reservationEvents({ reservations, log, metrics })
  app.post('/events/order.created', events.orderCreated)
  app.post('/events/order.cancelled', events.orderCancelled)
  app.post('/events/payment.status', events.paymentStatus)

  return app
}
