/**
 * The cart function: each user's cart, created on first use. Products are asked of the product
 * function; an order created takes its quantities out of the cart, and a cancelled order or a
 * failed payment puts them back (events.ts).
 */
import * as v from 'valibot'
import { requireUser, type TokenVerifier } from '../../shared/auth.ts'
import { withTransaction, type Pool, type Queryable } from '../../shared/db.ts'
import { conflict, notFound, unprocessable } from '../../shared/errors.ts'
import { createApp } from '../../shared/http.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import type { ProductClient } from '../../shared/product-client.ts'
import { Uuid, bodyInt, validate } from '../../shared/validate.ts'
import { LINE_MAX, cartEvents, touchCart } from './events.ts'

const Quantity = bodyInt(1, LINE_MAX)
/** A valibot schema: the body of `POST /api/cart/items`, a product and the units to add (1..999). */
export const CartItemBody = v.strictObject({ product_id: Uuid, quantity: Quantity })
/** A valibot schema: the body of `PUT /api/cart/items/:productId`, the whole line: its `quantity` (1..999). */
export const CartQuantityBody = v.strictObject({ quantity: Quantity })
/** A valibot schema: the path of `/api/cart/items/:productId`. */
export const CartItemParams = v.strictObject({ productId: Uuid })

type Cart = { id: string; user_id: string; items: { product_id: string; quantity: number }[]; updated_at: Date }

/**
 * A user's cart with its lines: `{ id, user_id, items: [{ product_id, quantity }] (oldest line
 * first), updated_at }`. The cart row must exist (answers `undefined` otherwise, whatever the type
 * says). `db` is the pool or a transaction's client; the query is the named statement `cart-read`.
 */
export const readCart = async (db: Queryable, userId: string) => {
  const { rows } = await db.query<Cart>({
    name: 'cart-read',
    text: `SELECT c.id, c.user_id,
                  coalesce(json_agg(json_build_object('product_id', i.product_id, 'quantity', i.quantity)
                                    ORDER BY i.added_at, i.product_id) FILTER (WHERE i.cart_id IS NOT NULL), '[]') AS items,
                  c.updated_at
           FROM cart.carts c LEFT JOIN cart.cart_items i ON i.cart_id = c.id
           WHERE c.user_id = $1 GROUP BY c.id`,
    values: [userId],
  })
  return rows[0]!
}

/**
 * A cart line priced by the catalog now, as `GET /api/cart` answers it in `lines`: the line's
 * `product_id` and `quantity`; the product's `name`, `unit_price_cents` and the `line_total_cents`
 * (whole cents), all three `null` when the product no longer exists; `stock`, the units it has
 * left (0 when gone); `purchasable`, whether it exists and has the line's units.
 */
export type PricedLine = {
  product_id: string
  quantity: number
  name: string | null
  unit_price_cents: number | null
  line_total_cents: number | null
  stock: number
  purchasable: boolean
}

/**
 * Prices a cart's `items` with the catalog's current prices, asking the product function for
 * every product at once: `{ lines, total_cents }`, the total the sum of the line totals of the
 * products that still exist. Throws the product client's 503 when it does not answer.
 */
export async function priceLines(products: ProductClient, items: { product_id: string; quantity: number }[]) {
  const found = await Promise.all(items.map((l) => products.get(l.product_id)))
  const lines = items.map((l, i): PricedLine => {
    const p = found[i]
    if (!p) return { ...l, name: null, unit_price_cents: null, line_total_cents: null, stock: 0, purchasable: false }
    return { ...l, name: p.name, unit_price_cents: p.price_cents, line_total_cents: p.price_cents * l.quantity, stock: p.stock, purchasable: p.stock >= l.quantity }
  })
  return { lines, total_cents: lines.reduce((sum, l) => sum + (l.line_total_cents ?? 0), 0) }
}

type CartDeps = { pool: Pool; log: Logger; metrics: Metrics; verify: TokenVerifier; products: ProductClient }

/**
 * The cart function's app (routes on `createApp`; all but the event routes need a Bearer token,
 * 401 otherwise; errors are RFC 9457 problems). Each answers the caller's cart as `readCart` does:
 * - `GET /api/cart` (made on first use), with `lines`, the same lines priced by the catalog now,
 *   and their `total_cents` (`priceLines`; 503 when the product function does not answer).
 *   `items` stays as it is, the lines an order takes. `DELETE /api/cart`: emptied, 204.
 * - `POST /api/cart/items` `{ product_id, quantity }` (1..999): adds to the line; 422 for a
 *   product the product function does not know, 409 when the line would pass 999.
 * - `PUT /api/cart/items/:productId` `{ quantity }`: sets the line (422 for an unknown product);
 *   `DELETE /api/cart/items/:productId`: removes it, 404 when there is none.
 * - `POST /events/order.created`, `/events/order.cancelled`, `/events/payment.status`: the
 *   CloudEvent consumers that take an order's lines out and put them back (events.ts). When the
 *   product function does not answer, 503.
 */
export function cartApp({ pool, log, metrics, verify, products }: CartDeps) {
  const app = createApp({ log, metrics, pool })
  const signedIn = requireUser(verify)

  // Asked before the transaction, so that no connection waits on the product function.
  const requireProduct = async (id: string) => {
    if (!(await products.get(id))) throw unprocessable(`no such product: ${id}`)
  }

  app.get('/api/cart', signedIn, async (c) => {
    const userId = c.get('user').id
    // DO NOTHING, not a read then an insert: two first requests at once make one cart.
    await pool.query({
      name: 'cart-create',
      text: 'INSERT INTO cart.carts (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING',
      values: [userId],
    })
    const cart = await readCart(pool, userId)
    return c.json({ ...cart, ...(await priceLines(products, cart.items)) })
  })

  app.delete('/api/cart', signedIn, async (c) => {
    await withTransaction(pool, async (tx) => {
      await tx.query('DELETE FROM cart.cart_items WHERE cart_id = $1', [await touchCart(tx, c.get('user').id)])
    })
    return c.body(null, 204)
  })

  app.post('/api/cart/items', signedIn, validate('json', CartItemBody), async (c) => {
    const userId = c.get('user').id
    const { product_id, quantity } = c.req.valid('json')
    await requireProduct(product_id)
    const cart = await withTransaction(pool, async (tx) => {
      const cartId = await touchCart(tx, userId)
      const { rowCount } = await tx.query(
        `INSERT INTO cart.cart_items (cart_id, product_id, quantity) VALUES ($1, $2, $3)
         ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = cart_items.quantity + EXCLUDED.quantity
         WHERE cart_items.quantity + EXCLUDED.quantity <= ${LINE_MAX}`,
        [cartId, product_id, quantity],
      )
      if (!rowCount) {
        const { rows } = await tx.query<{ quantity: number }>(
          'SELECT quantity FROM cart.cart_items WHERE cart_id = $1 AND product_id = $2',
          [cartId, product_id],
        )
        throw conflict(`the cart has ${rows[0]!.quantity} of this product; adding ${quantity} would pass the ${LINE_MAX} a line holds`)
      }
      return readCart(tx, userId)
    })
    return c.json(cart)
  })

  app.put('/api/cart/items/:productId', signedIn, validate('param', CartItemParams), validate('json', CartQuantityBody), async (c) => {
    const userId = c.get('user').id
    const { productId } = c.req.valid('param')
    await requireProduct(productId)
    const cart = await withTransaction(pool, async (tx) => {
      await tx.query(
        `INSERT INTO cart.cart_items (cart_id, product_id, quantity) VALUES ($1, $2, $3)
         ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity`,
        [await touchCart(tx, userId), productId, c.req.valid('json').quantity],
      )
      return readCart(tx, userId)
    })
    return c.json(cart)
  })

  app.delete('/api/cart/items/:productId', signedIn, validate('param', CartItemParams), async (c) => {
    const userId = c.get('user').id
    const cart = await withTransaction(pool, async (tx) => {
      const { rowCount } = await tx.query('DELETE FROM cart.cart_items WHERE cart_id = $1 AND product_id = $2', [
        await touchCart(tx, userId),
        c.req.valid('param').productId,
      ])
      if (!rowCount) throw notFound('cart line')
      return readCart(tx, userId)
    })
    return c.json(cart)
  })

  const events = cartEvents({ pool, log, metrics })
  app.post('/events/order.created', events.orderCreated)
  app.post('/events/order.cancelled', events.orderCancelled)
  app.post('/events/payment.status', events.paymentStatus)

  return app
}
