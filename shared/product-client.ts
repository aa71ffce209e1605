/**
 * @module
 * How cart and order ask the product function about products: over HTTP, never its schema.
 * Calls go over a keep-alive connection pool (a node:http Agent), so a call costs a request on an
 * open socket, not a TCP handshake.
 */
import * as v from 'valibot'
import { agentTransport, fetchTransport, type Transport } from './http-transport.ts'
import {
  ProblemTypes,
  outOfStock,
  reservationMismatch,
  reservationReleased,
  serviceUnavailable,
  unknownProduct,
} from './errors.ts'

const Count = v.pipe(v.number(), v.integer(), v.minValue(0))

const Product = v.object({
  id: v.string(),
  name: v.string(),
  price_cents: Count,
  stock: v.number(),
})
/** What cart and order need of a product: its `id` (UUID), `name`, `price_cents` (a whole number of cents, ≥ 0) and `stock`. */
export type Product = v.InferOutput<typeof Product>

const Reservation = v.object({
  order_id: v.string(),
  status: v.picklist(['held', 'confirmed']),
  expires_at: v.string(),
  items: v.array(v.object({ product_id: v.string(), name: v.string(), quantity: Count, unit_price_cents: Count })),
})
/**
 * Units held for one order, with every line priced as the catalog had it when they were taken.
 * `expires_at` (ISO 8601) is when an unconfirmed hold gives its units back.
 */
export type Reservation = v.InferOutput<typeof Reservation>

// What we read of the product function's problems; the rest is passed on as it came.
const Problem = v.looseObject({
  type: v.optional(v.string()),
  detail: v.optional(v.string(), ''),
  unavailable: v.optional(v.array(v.object({ product_id: v.string(), requested: Count, available: Count }))),
  errors: v.optional(v.array(v.object({ path: v.string(), message: v.string() }))),
})

/** One line to reserve: a product and a whole number of units. */
export type ReserveLine = { product_id: string; quantity: number }

/** Reads and reserves products through the product function's HTTP API (never its schema). */
export type ProductClient = {
  /** The product, `undefined` if there is none; throws a 503 problem when product cannot answer. */
  get(id: string): Promise<Product | undefined>
  /**
   * Takes the units of every line for this order, all or nothing, in one call; idempotent per
   * `orderId` (a repeated call takes nothing more and answers the same lines). Resolves to the
   * lines with their names and unit prices in cents. Throws, as problems to pass on:
   * 409 `…/out-of-stock` with `unavailable` [{product_id, requested, available}] (nothing taken),
   * 422 `…/unknown-product` with `errors` naming the lines (paths index `lines`),
   * 409 `…/reservation-released` / 422 `…/reservation-mismatch` for an order id already used,
   * 503 when product cannot answer.
   */
  reserve(orderId: string, userId: string, lines: ReserveLine[]): Promise<Reservation>
}

type Answer = { status: number; text: string }
type Send = (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<Answer>

type ClientOptions = {
  baseUrl: string
  /** Per call, in milliseconds. */
  timeoutMs?: number
  /** Sockets open at once to product, per client. */
  maxSockets?: number
  /** Tests hand requests to an in-process app with this; unset, calls go over the keep-alive pool. */
  fetch?: typeof globalThis.fetch
}

/**
 * A client of the product function's public API at `baseUrl` (`PRODUCT_URL`): `get(id)` asks
 * `GET /api/products/:id`, answers the product, or `undefined` on 404; any other status, a body
 * that is not a product, a network error or no answer within `timeoutMs` (default 3,000 ms)
 * throws a 503 `HttpProblem`, so the caller's request fails with 503 and may be retried.
 *
 * @example
 * ```ts
 * const products = createProductClient({ baseUrl: config.PRODUCT_URL })
 * const mug = await products.get(id)
 * const { items } = await products.reserve(orderId, userId, [{ product_id: id, quantity: 2 }])
 * ```
 */
export function createProductClient({ baseUrl, timeoutMs = 3_000, maxSockets = 64, fetch }: ClientOptions): ProductClient {
  // Every call here is safe to repeat (a read, or a reserve keyed by its order id), so one cut off
  // by a keep-alive socket the function closed is sent again.
  const send = sendOver(fetch ? fetchTransport(baseUrl, timeoutMs, fetch) : agentTransport(baseUrl, { timeoutMs, maxSockets, repeatable: () => true }))
  const unreachable = (err: unknown) => serviceUnavailable('the product catalog does not answer; try again shortly', err)
  const unexpected = (why: string) => serviceUnavailable('the product catalog answered something unexpected', new Error(why))

  const ask = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    try {
      return await send(method, path, body)
    } catch (err) {
      throw unreachable(err)
    }
  }
  const json = (answer: Answer): unknown => {
    try {
      return JSON.parse(answer.text)
    } catch {
      return undefined
    }
  }

  return {
    async get(id) {
      const answer = await ask('GET', `/api/products/${encodeURIComponent(id)}`)
      if (answer.status === 404) return undefined
      if (answer.status !== 200) throw unreachable(new Error(`product answered ${answer.status}`))
      const body = v.safeParse(Product, json(answer))
      if (!body.success) throw unexpected(body.issues[0].message)
      return body.output
    },

    async reserve(orderId, userId, lines) {
      const answer = await ask('POST', '/internal/reservations', { order_id: orderId, user_id: userId, items: lines })
      if (answer.status === 200 || answer.status === 201) {
        const body = v.safeParse(Reservation, json(answer))
        if (!body.success) throw unexpected(body.issues[0].message)
        return body.output
      }
      if (answer.status === 409 || answer.status === 422) {
        const problem = v.safeParse(Problem, json(answer))
        if (!problem.success) throw unexpected(problem.issues[0].message)
        const { type, detail, unavailable, errors } = problem.output
        if (type === ProblemTypes.outOfStock.type && unavailable) throw outOfStock(unavailable)
        if (type === ProblemTypes.unknownProduct.type && errors) throw unknownProduct(errors)
        if (type === ProblemTypes.reservationReleased.type) throw reservationReleased(detail)
        if (type === ProblemTypes.reservationMismatch.type) throw reservationMismatch(detail)
      }
      // A 400 means this client and product disagree on the contract: not the caller's fault.
      throw unreachable(new Error(`product answered ${answer.status} to a reserve: ${answer.text.slice(0, 300)}`))
    },
  }
}

const JSON_HEADERS = { Accept: 'application/json' }

/** The product client's calls over `transport`: JSON in, the answer's status and text out. */
function sendOver(transport: Transport): Send {
  return async (method, path, body) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const { status, text } = await transport(method, path, payload === undefined ? JSON_HEADERS : { ...JSON_HEADERS, 'Content-Type': 'application/json' }, payload)
    return { status, text }
  }
}
