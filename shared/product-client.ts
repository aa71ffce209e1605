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
export type Product = v.InferOutput<typeof Product>

export type ProductClient = {
  /** The product, `undefined` if there is none; throws a 503 problem when product cannot answer. */
  get(id: string): Promise<Product | undefined>
}

type ClientOptions = { baseUrl: string; timeoutMs?: number; fetch?: typeof globalThis.fetch }

/**
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
