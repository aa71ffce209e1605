/**
 * @module
 * How cart and order ask the product function about products: over HTTP, never its schema.
 */
import * as v from 'valibot'
import { serviceUnavailable } from './errors.ts'

const Product = v.object({
  id: v.string(),
  name: v.string(),
  price_cents: v.pipe(v.number(), v.integer(), v.minValue(0)),
  stock: v.number(),
})
/** What cart and order need of a product: its `id` (UUID), `name`, `price_cents` (a whole number of cents, ≥ 0) and `stock`. */
export type Product = v.InferOutput<typeof Product>

/** Reads products from the product function. */
export type ProductClient = {
  /** The product, `undefined` if there is none; throws a 503 problem when product cannot answer. */
  get(id: string): Promise<Product | undefined>
}

type ClientOptions = { baseUrl: string; timeoutMs?: number; fetch?: typeof globalThis.fetch }

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
 * ```
 */
export function createProductClient({ baseUrl, timeoutMs = 3_000, fetch = globalThis.fetch }: ClientOptions): ProductClient {
  const base = baseUrl.replace(/\/+$/, '')
  return {
    async get(id) {
      let res: Response
      try {
        res = await fetch(`${base}/api/products/${encodeURIComponent(id)}`, { signal: AbortSignal.timeout(timeoutMs) })
      } catch (err) {
        throw serviceUnavailable('the product catalog does not answer; try again shortly', err)
      }
      if (res.status === 404) {
        await res.body?.cancel()
        return undefined
      }
      if (!res.ok) {
        await res.body?.cancel()
        throw serviceUnavailable('the product catalog does not answer; try again shortly', new Error(`product answered ${res.status}`))
      }
      const body = v.safeParse(Product, await res.json().catch(() => undefined))
      if (!body.success) throw serviceUnavailable('the product catalog answered something unexpected', new Error(body.issues[0].message))
      return body.output
    },
  }
}
