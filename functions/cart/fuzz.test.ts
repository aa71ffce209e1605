/**
 * The cart function's routes and event routes, fuzzed from the API documents (test/fuzz.ts)
 * against the real app, the real product app and the database: never a 5xx, always as documented.
 */
import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { beforeAll, describe } from 'vitest'
import { createProductClient } from '../../shared/product-client.ts'
import { catalogFixture, type CatalogFixture } from '../../test/product-fixture.ts'
import { fuzzConsumers, fuzzOperations } from '../../test/fuzz.ts'
import { appDeps, call, fetchVia, testPool } from '../../test/support.ts'
import { cartApp } from './app.ts'

const pool = testPool()
let { keys, catalog, admin } = {} as CatalogFixture
let app: ReturnType<typeof cartApp>
let customer: string
const userId = randomUUID()
const products: string[] = []

beforeAll(async () => {
  ;({ keys, catalog, admin } = await catalogFixture(pool))
  app = cartApp({ pool, ...appDeps(), verify: keys.verify, products: createProductClient({ baseUrl: 'http://product', fetch: fetchVia(catalog) }) })
  customer = await keys.tokenFor({ id: userId })
  for (let i = 0; i < 3; i++) {
    const res = await call(catalog, 'POST', '/api/products', { token: admin, body: { name: `Fuzz ${i}`, price_cents: 100 + i, stock: 5 } })
    products.push(res.json.id)
  }
})

const known = () => ({ product_id: fc.constantFrom(...products), productId: fc.constantFrom(...products), user_id: fc.constant(userId) })

describe('the cart API, fuzzed', () => {
  fuzzOperations({ app: () => app, tag: 'cart', identities: () => ({ customer, admin }), values: known })
})

describe('the cart event routes, fuzzed', () => {
  fuzzConsumers({ app: () => app, consumer: 'cart', values: known })
})
