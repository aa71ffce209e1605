/**
 * The payment function's routes and event routes, fuzzed from the API documents (test/fuzz.ts)
 * against the real app and database: never a 5xx, always as documented.
 */
import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { beforeAll, describe } from 'vitest'
import { orderEventExamples } from '../order/messages.ts'
import { fuzzConsumers, fuzzOperations } from '../../test/fuzz.ts'
import { appDeps, postEvent, testKeys, testPool } from '../../test/support.ts'
import { paymentApp } from './app.ts'

const pool = testPool()
let app: ReturnType<typeof paymentApp>
let customer: string
let admin: string
const userId = randomUUID()
const orders: string[] = []

beforeAll(async () => {
  const keys = await testKeys()
  app = paymentApp({ pool, ...appDeps(), verify: keys.verify, publish: async () => {}, successRate: 0.5, delayMs: 0 })
  customer = await keys.tokenFor({ id: userId })
  admin = await keys.tokenFor({ role: 'admin' })
  for (let i = 0; i < 3; i++) {
    const order_id = randomUUID()
    await postEvent(app, '/events/order.created', { type: 'order.created', source: '/shop/order', data: { ...orderEventExamples['order.created'], order_id, user_id: userId } })
    orders.push(order_id)
  }
})

const known = () => ({ orderId: fc.constantFrom(...orders), order_id: fc.constantFrom(...orders), user_id: fc.constant(userId) })

describe('the payment API, fuzzed', () => {
  fuzzOperations({ app: () => app, tag: 'payments', identities: () => ({ customer, admin }), values: known })
})

describe('the payment event routes, fuzzed', () => {
  fuzzConsumers({ app: () => app, consumer: 'payment', values: known })
})
