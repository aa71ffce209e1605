/**
 * The order function's routes and event route, fuzzed from the API documents (test/fuzz.ts)
 * against the real app, the real product app and the database: never a 5xx, always as documented.
 */
import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, beforeEach, describe } from 'vitest'
import type { Publisher } from '../../shared/events.ts'
import { createProductClient } from '../../shared/product-client.ts'
import { catalogFixture, type CatalogFixture } from '../../test/product-fixture.ts'
import { fuzzConsumers, fuzzOperations } from '../../test/fuzz.ts'
import { appDeps, call, fetchVia, testPool } from '../../test/support.ts'
import { orderApp } from './app.ts'

const pool = testPool()
let { keys, catalog, admin } = {} as CatalogFixture
let app: ReturnType<typeof orderApp>
let customer: string
const userId = randomUUID()
const products: string[] = []
let orders: string[] = []
// An outbox table of this file's own, out of reach of other tests' sweeps; the broker a recorder.
const outboxTable = `orders.outbox_fuzz_${randomUUID().replaceAll('-', '').slice(0, 8)}`
const publish: Publisher = async () => {}

beforeAll(async () => {
  ;({ keys, catalog, admin } = await catalogFixture(pool))
  await pool.query(`CREATE TABLE ${outboxTable} (LIKE orders.outbox INCLUDING ALL)`)
  app = orderApp({ pool, ...appDeps(), verify: keys.verify, products: createProductClient({ baseUrl: 'http://product', fetch: fetchVia(catalog) }), publish, outboxTable })
  customer = await keys.tokenFor({ id: userId })
  for (let i = 0; i < 3; i++) {
    const res = await call(catalog, 'POST', '/api/products', { token: admin, body: { name: `Fuzz ${i}`, price_cents: 100 + i, stock: 1_000_000 } })
    products.push(res.json.id)
  }
})
// Pending orders of each test's own: the fuzzing of cancel must not leave the next test none to reach.
beforeEach(async () => {
  orders = []
  for (const id of products) {
    const res = await call(app, 'POST', '/api/orders', { token: customer, body: { items: [{ product_id: id, quantity: 1 }] } })
    orders.push(res.json.id)
  }
})
afterAll(() => pool.query(`DROP TABLE IF EXISTS ${outboxTable}`))

const known = () => ({
  product_id: fc.constantFrom(...products),
  id: fc.constantFrom(...orders),
  order_id: fc.constantFrom(...orders),
  user_id: fc.constant(userId),
})

describe('the order API, fuzzed', () => {
  fuzzOperations({ app: () => app, tag: 'orders', identities: () => ({ customer, admin }), values: known })
})

describe('the order event route, fuzzed', () => {
  fuzzConsumers({ app: () => app, consumer: 'order', values: known })
})
