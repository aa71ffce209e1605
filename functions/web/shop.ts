/**
 * @module
 * The shop's API as the storefront uses it: one method per call, each answer checked with a
 * valibot schema (what comes from another function is a boundary too). A 4xx the page can explain
 * (a field error, out of stock, a taken email) is answered as a `Problem`; what no page can fix
 * is thrown: 401 as `SignedOut` (the session's access token no longer works), 403 as a 403, and a
 * 5xx, no answer or an answer that is not what the API promises as a 503.
 */
import * as v from 'valibot'
import { Role } from '../../shared/auth.ts'
import { HttpProblem, forbidden, serviceUnavailable } from '../../shared/errors.ts'
import type { Answer, ApiClient, Service } from './api.ts'

const Count = v.pipe(v.number(), v.integer())

const Product = v.looseObject({
  id: v.string(),
  name: v.string(),
  description: v.optional(v.nullable(v.string()), ''),
  price_cents: Count,
  stock: Count,
})
/** A product: `id`, `name`, `description`, `price_cents` (whole cents) and `stock` (units that can still be sold). */
export type Product = v.InferOutput<typeof Product>

const page = <S extends v.GenericSchema>(item: S) => v.looseObject({ items: v.array(item), total: Count, limit: Count, offset: Count })
/** One page of a list: `items`, `total` (all there are), `limit` and `offset` (in items). */
export type Page<T> = { items: T[]; total: number; limit: number; offset: number }

const User = v.looseObject({ id: v.string(), email: v.string(), name: v.string(), role: Role })
/** A user as auth answers it: `id`, `email`, `name`, `role`. */
export type User = v.InferOutput<typeof User>

const Login = v.looseObject({ token: v.string(), expires_in: v.pipe(Count, v.minValue(1)), user: User })
/** A login: the access `token` (a JWT), `expires_in` seconds, and the `user`. */
export type Login = v.InferOutput<typeof Login>

const CartLine = v.looseObject({
  product_id: v.string(),
  quantity: Count,
  name: v.nullable(v.string()),
  unit_price_cents: v.nullable(Count),
  line_total_cents: v.nullable(Count),
  stock: Count,
  purchasable: v.boolean(),
})
/**
 * A cart line, priced by the catalog now: `name`, `unit_price_cents` and `line_total_cents` are
 * `null` when the product is gone; `stock` the units left (0 when gone); `purchasable` whether the
 * line can be ordered as it is.
 */
export type CartLine = v.InferOutput<typeof CartLine>
const Cart = v.looseObject({ lines: v.array(CartLine), total_cents: Count })
/** A cart as `GET /api/cart` prices it: its `lines` (oldest first) and `total_cents`, the sum of the lines whose product still exists. */
export type Cart = v.InferOutput<typeof Cart>

const OrderLine = v.looseObject({ product_id: v.string(), name: v.string(), quantity: Count, unit_price_cents: Count })
const Order = v.looseObject({
  id: v.string(),
  user_id: v.string(),
  status: v.string(),
  total_cents: Count,
  payment_status: v.optional(v.nullable(v.string()), null),
  created_at: v.string(),
  items: v.array(OrderLine),
  user_email: v.optional(v.nullable(v.string()), null),
})
/** An order: `status` (`pending`, `paid`, `payment_failed`, `cancelled`, `expired`), `payment_status`, `total_cents`, its `items` priced when it was placed; `user_email` in the admin listing. */
export type Order = v.InferOutput<typeof Order>

const ProblemBody = v.looseObject({
  type: v.optional(v.string(), 'about:blank'),
  detail: v.optional(v.string(), ''),
  errors: v.optional(v.array(v.looseObject({ path: v.string(), message: v.string() })), []),
  unavailable: v.optional(v.array(v.looseObject({ product_id: v.string(), requested: Count, available: Count })), []),
})
/**
 * A refusal the page can explain (RFC 9457 problem details, as the functions answer them):
 * `status`, `type`, `detail`, `errors` [{path, message}] naming the fields at fault, and
 * `unavailable` [{product_id, requested, available}] for out of stock.
 */
export type Problem = v.InferOutput<typeof ProblemBody> & { status: number }

/** What a call answers: the value, or a problem to show beside the form that caused it. */
export type Result<T> = { ok: true; value: T } | { ok: false; problem: Problem }

/** The access token a session holds was refused (expired, or its user is gone): the session is over. */
export class SignedOut extends HttpProblem {
  constructor() {
    super(401, 'your session has ended; log in again')
  }
}

/** The order statuses, in the words the order API uses. */
export const ORDER_STATUSES = ['pending', 'paid', 'payment_failed', 'cancelled', 'expired'] as const

/**
 * The shop's API over `send` (see `createApiClient`). `clientAddress` on register and login is
 * the shopper's address, passed on as `X-Forwarded-For`, so auth's per-client login limits count
 * each shopper, not the storefront.
 */
export function createShop(send: ApiClient) {
  const call = async <S extends v.GenericSchema>(
    schema: S | undefined,
    service: Service,
    method: string,
    path: string,
    options: Parameters<ApiClient>[3] = {},
  ): Promise<Result<v.InferOutput<S>>> => judge(schema, service, await send(service, method, path, options))

  const query = (params: Record<string, string | number | undefined>) => {
    const q = new URLSearchParams()
    for (const [k, val] of Object.entries(params)) if (val !== undefined && val !== '') q.set(k, String(val))
    return q.size ? `?${q}` : ''
  }
  const id = encodeURIComponent

  return {
    register: (body: { email: string; password: string; name: string }, clientAddress?: string) =>
      call(User, 'auth', 'POST', '/api/auth/register', { body, headers: forwardedFor(clientAddress) }),
    /** A wrong email or password is a problem with status 401, not `SignedOut`. */
    login: async (body: { email: string; password: string }, clientAddress?: string): Promise<Result<Login>> => {
      const answer = await send('auth', 'POST', '/api/auth/login', { body, headers: forwardedFor(clientAddress) })
      return answer.status === 401 ? refusal(answer) : judge(Login, 'auth', answer)
    },

    products: (p: { q?: string; limit: number; offset: number }) => call(page(Product), 'product', 'GET', `/api/products${query(p)}`),
    product: (productId: string) => call(Product, 'product', 'GET', `/api/products/${id(productId)}`),
    createProduct: (token: string, body: { name: string; description: string; price_cents: number; stock: number }) =>
      call(Product, 'product', 'POST', '/api/products', { token, body }),
    updateProduct: (token: string, productId: string, body: { name: string; description: string; price_cents: number }) =>
      call(Product, 'product', 'PATCH', `/api/products/${id(productId)}`, { token, body }),
    deleteProduct: (token: string, productId: string) => call(undefined, 'product', 'DELETE', `/api/products/${id(productId)}`, { token }),
    adjustStock: (token: string, productId: string, delta: number) =>
      call(Product, 'product', 'POST', `/api/products/${id(productId)}/stock`, { token, body: { delta } }),

    cart: (token: string) => call(Cart, 'cart', 'GET', '/api/cart', { token }),
    addToCart: (token: string, product_id: string, quantity: number) =>
      call(undefined, 'cart', 'POST', '/api/cart/items', { token, body: { product_id, quantity } }),
    setCartLine: (token: string, productId: string, quantity: number) =>
      call(undefined, 'cart', 'PUT', `/api/cart/items/${id(productId)}`, { token, body: { quantity } }),
    removeCartLine: (token: string, productId: string) => call(undefined, 'cart', 'DELETE', `/api/cart/items/${id(productId)}`, { token }),

    /** `key` is the checkout form's Idempotency-Key: the same form sent twice places one order. */
    placeOrder: (token: string, items: { product_id: string; quantity: number }[], key: string) =>
      call(Order, 'order', 'POST', '/api/orders', { token, body: { items }, headers: { 'Idempotency-Key': key } }),
    orders: (token: string, p: { limit: number; offset: number }) => call(page(Order), 'order', 'GET', `/api/orders${query(p)}`, { token }),
    order: (token: string, orderId: string) => call(Order, 'order', 'GET', `/api/orders/${id(orderId)}`, { token }),
    cancelOrder: (token: string, orderId: string) => call(Order, 'order', 'POST', `/api/orders/${id(orderId)}/cancel`, { token }),
    /** Every user's orders (admin only), optionally of one status. */
    allOrders: (token: string, p: { status?: string; limit: number; offset: number }) =>
      call(page(Order), 'order', 'GET', `/api/orders${query({ all: 'true', ...p })}`, { token }),
  }
}

/** What `createShop` makes: the storefront's view of the shop's API. */
export type Shop = ReturnType<typeof createShop>

const forwardedFor = (address: string | undefined): Record<string, string> => (address ? { 'X-Forwarded-For': address } : {})

function judge<S extends v.GenericSchema>(schema: S | undefined, service: Service, answer: Answer): Result<v.InferOutput<S>> {
  if (answer.status >= 200 && answer.status < 300) {
    if (!schema) return { ok: true, value: undefined as v.InferOutput<S> }
    const parsed = v.safeParse(schema, answer.body)
    if (parsed.success) return { ok: true, value: parsed.output }
    throw serviceUnavailable(`the ${service} function answered something unexpected`, new Error(parsed.issues[0].message))
  }
  if (answer.status === 401) throw new SignedOut()
  if (answer.status === 403) throw forbidden('this page is for the shop’s admins')
  if (answer.status >= 500 || answer.status < 400) {
    throw serviceUnavailable(`the ${service} function cannot answer now; try again shortly`, new Error(`${service} answered ${answer.status}`))
  }
  return refusal(answer)
}

function refusal(answer: Answer): { ok: false; problem: Problem } {
  const parsed = v.safeParse(ProblemBody, answer.body ?? {})
  const body = parsed.success ? parsed.output : { type: 'about:blank', detail: '', errors: [], unavailable: [] }
  return { ok: false, problem: { ...body, status: answer.status } }
}
