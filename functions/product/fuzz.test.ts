/**
 * The product function's routes and event routes, fuzzed from the API documents (test/fuzz.ts)
 * against the real app and database: never a 5xx, always as documented.
 */
import fc from 'fast-check'
import { beforeAll, beforeEach, describe } from 'vitest'
import { catalogFixture, type CatalogFixture } from '../../test/product-fixture.ts'
import { fuzzConsumers, fuzzOperations } from '../../test/fuzz.ts'
import { call, testPool } from '../../test/support.ts'

const pool = testPool()
let { keys, catalog, admin } = {} as CatalogFixture
let customer: string
let ids: string[] = []

beforeAll(async () => {
  ;({ keys, catalog, admin } = await catalogFixture(pool))
  customer = await keys.tokenFor()
})
// Products of each test's own: the fuzzing of DELETE must not leave the next test none to reach.
beforeEach(async () => {
  ids = []
  for (let i = 0; i < 5; i++) {
    const res = await call(catalog, 'POST', '/api/products', { token: admin, body: { name: `Fuzz ${i}`, price_cents: 100 * i, stock: 5 } })
    ids.push(res.json.id)
  }
})

describe('the product API, fuzzed', () => {
  fuzzOperations({ app: () => catalog, tag: 'products', identities: () => ({ customer, admin }), values: () => ({ id: fc.constantFrom(...ids) }) })
})

describe('the product event routes, fuzzed', () => {
  fuzzConsumers({ app: () => catalog, consumer: 'product' })
})
