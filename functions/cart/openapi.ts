/**
 * What the cart function's routes answer, for the API description (shared/openapi.ts takes the
 * requests from the routes themselves): the schema of a cart, and one description per route.
 */
import * as v from 'valibot'
import { IdOut, IntOut, TimeOut, problem, type ApiDescription } from '../../shared/openapi.ts'

const cartFields = {
  id: IdOut,
  user_id: IdOut,
  items: v.pipe(v.array(v.object({ product_id: IdOut, quantity: IntOut(1, 999) })), v.description('the lines, oldest first, each product once: what an order of the cart takes (`POST /api/orders` accepts them as they are)')),
  updated_at: TimeOut,
}

/** A valibot schema of the caller's cart: its lines, oldest first, each product once with 1..999 units. */
export const Cart = v.object(cartFields)

/** A valibot schema of one line of `GET /api/cart`, priced by the catalog now. */
export const PricedLine = v.object({
  product_id: IdOut,
  quantity: IntOut(1, 999),
  name: v.pipe(v.nullable(v.string()), v.description("the product's name; null when it no longer exists")),
  unit_price_cents: v.pipe(v.nullable(IntOut(0, 2_147_483_647)), v.description('its price now, in cents; null when it no longer exists')),
  line_total_cents: v.pipe(v.nullable(IntOut()), v.description('quantity × unit price; null when the product no longer exists')),
  stock: v.pipe(IntOut(0, 2_147_483_647), v.description('units the product has left (0 when it is gone)')),
  purchasable: v.pipe(v.boolean(), v.description('whether the product exists and has the units of the line')),
})

/** A valibot schema of `GET /api/cart`: the cart, and its lines priced by the catalog now with their total. */
export const PricedCart = v.object({
  ...cartFields,
  lines: v.pipe(v.array(PricedLine), v.description('the lines of `items`, in the same order, priced by the catalog now')),
  total_cents: v.pipe(IntOut(), v.description('the sum of the line totals of the products that still exist')),
})

const cart = {
  id: '2c9d4e1f-7a6b-4c5d-8e9f-0a1b2c3d4e5f',
  user_id: '0b6f7c1e-3d5a-4f2b-9e8c-1a2b3c4d5e6f',
  items: [{ product_id: '5f0c6a9e-8f1b-4c3e-9a2d-7b1e4c9d0a11', quantity: 2 }],
  updated_at: '2025-01-15T09:35:00.000Z',
}
const theCart = { description: 'the cart as it is now', body: Cart, examples: { cart: { value: cart } } }
const priced = {
  ...cart,
  lines: [{ product_id: '5f0c6a9e-8f1b-4c3e-9a2d-7b1e4c9d0a11', quantity: 2, name: 'Espresso beans', unit_price_cents: 2450, line_total_cents: 4900, stock: 12, purchasable: true }],
  total_cents: 4900,
}
const noProduct = problem('the product function does not know this product')

/** The cart function's part of the API description. */
export const cartApi: ApiDescription = {
  tag: { name: 'cart', description: "The caller's cart, made on first use. An order placed takes its lines out; a cancelled order or a failed payment puts them back." },
  schemas: { Cart, PricedLine, PricedCart },
  operations: {
    'GET /api/cart': {
      operationId: 'getCart',
      summary: 'The caller’s cart, priced by the catalog now',
      description: 'Made on first use. `items` are the lines as the cart holds them; `lines` the same lines with the name, price and stock the catalog has now, a product that is gone or short marked so.',
      responses: { 200: { description: 'the cart', body: PricedCart, examples: { cart: { value: priced } } } },
    },
    'DELETE /api/cart': {
      operationId: 'emptyCart',
      summary: 'Empty the cart',
      responses: { 204: { description: 'emptied' } },
    },
    'POST /api/cart/items': {
      operationId: 'addToCart',
      summary: 'Add units of a product',
      description: 'Adds to the line of that product (made when missing); a line holds at most 999 units.',
      requestExamples: { two: { value: { product_id: '5f0c6a9e-8f1b-4c3e-9a2d-7b1e4c9d0a11', quantity: 2 } } },
      responses: {
        200: theCart,
        409: problem('the line would pass the 999 units a line holds'),
        422: noProduct,
      },
    },
    'PUT /api/cart/items/:productId': {
      operationId: 'setCartLine',
      summary: 'Set the units of a line',
      parameters: { productId: 'the product of the line' },
      requestExamples: { three: { value: { quantity: 3 } } },
      responses: { 200: theCart, 422: noProduct },
    },
    'DELETE /api/cart/items/:productId': {
      operationId: 'removeCartLine',
      summary: 'Remove a line',
      parameters: { productId: 'the product of the line' },
      responses: { 200: theCart, 404: problem('the cart has no line for this product') },
    },
  },
}
