/**
 * Every kind of event the producers publish, made the way production makes it (order placed,
 * cancelled, announced again, expired; payment succeeded, failed, refunded) and checked against
 * the AsyncAPI document (test/contract.ts `checkEvent`), and against each consumer's own schema.
 */
import { randomUUID } from 'node:crypto'
import * as v from 'valibot'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appRoutes } from '../functions/api-docs.ts'
import { orderApp } from '../functions/order/app.ts'
import { paymentApp } from '../functions/payment/app.ts'
import { eventConsumers } from '../shared/asyncapi.ts'
import type { OutgoingEvent } from '../shared/events.ts'
import { createProductClient } from '../shared/product-client.ts'
import { catalogFixture, type CatalogFixture } from './product-fixture.ts'
import { checkEvent } from './contract.ts'
import { appDeps, call, fetchVia, postEvent, testPool } from './support.ts'

const pool = testPool()
let { keys, catalog, admin } = {} as CatalogFixture
const published: OutgoingEvent[] = []
const record = async (e: OutgoingEvent) => {
  published.push(e)
}
const outboxTable = `orders.outbox_contract_${randomUUID().replaceAll('-', '').slice(0, 8)}`
const consumers = eventConsumers(appRoutes())

beforeAll(async () => {
  ;({ keys, catalog, admin } = await catalogFixture(pool))
  await pool.query(`CREATE TABLE ${outboxTable} (LIKE orders.outbox INCLUDING ALL)`)
})
afterAll(() => pool.query(`DROP TABLE IF EXISTS ${outboxTable}`))

const expectInContract = (events: OutgoingEvent[]) => {
  expect(events.length).toBeGreaterThan(0)
  for (const e of events) {
    checkEvent(e)
    for (const c of consumers.filter((x) => x.type === e.type)) {
      const parsed = v.safeParse(c.schema, e.data)
      expect(parsed.success, `${c.function} takes ${e.type}: ${JSON.stringify(parsed.issues?.map((i) => i.message))}`).toBe(true)
    }
  }
}

describe('the events producers publish', () => {
  it('order: order.created when placed and announced again, order.cancelled when cancelled or expired', async () => {
    const app = orderApp({
      pool,
      ...appDeps(),
      verify: keys.verify,
      products: createProductClient({ baseUrl: 'http://product', fetch: fetchVia(catalog) }),
      publish: record,
      outboxTable,
      reannounceAfterS: 0,
      expireAfterS: 3_600,
    })
    const userId = randomUUID()
    const token = await keys.tokenFor({ id: userId })
    const product = (await call(catalog, 'POST', '/api/products', { token: admin, body: { name: 'Contract', price_cents: 250, stock: 100 } })).json.id
    const from = published.length
    // Both spellings of one product: one line, one id in the event, as the database writes it.
    const placed = await call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: product, quantity: 2 }, { product_id: product.toUpperCase(), quantity: 1 }] } })
    expect(placed.status).toBe(201)
    const kept = await call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: product, quantity: 1 }] } })
    expect((await call(app, 'POST', `/api/orders/${placed.json.id}/cancel`, { token })).status).toBe(200)
    // The sweep announces the order still pending again.
    expect((await call(app, 'POST', '/internal/outbox/flush')).status).toBe(200)
    const expiring = orderApp({
      pool,
      ...appDeps(),
      verify: keys.verify,
      products: createProductClient({ baseUrl: 'http://product', fetch: fetchVia(catalog) }),
      publish: record,
      outboxTable,
      expireAfterS: 0,
    })
    expect((await call(expiring, 'POST', '/internal/outbox/flush')).status).toBe(200)
    const mine = published.slice(from).filter((e) => (e.data as { user_id: string }).user_id === userId)
    expect(mine.map((e) => e.type)).toEqual(['order.created', 'order.created', 'order.cancelled', 'order.created', 'order.cancelled'])
    expect(mine.filter((e) => e.type === 'order.cancelled').map((e) => (e.data as { reason: string }).reason)).toEqual(['cancelled', 'expired'])
    expect((mine[4]!.data as { order_id: string }).order_id).toBe(kept.json.id)
    expectInContract(mine)
  })

  it('payment: payment.status succeeded, failed, and refunded after a cancel', async () => {
    const app = (successRate: number) => paymentApp({ pool, ...appDeps(), verify: keys.verify, publish: record, successRate, delayMs: 0 })
    const order = (user_id: string) => ({
      order_id: randomUUID(),
      user_id,
      items: [{ product_id: randomUUID(), quantity: 1, unit_price_cents: 700 }],
      total_cents: 700,
      created_at: new Date().toISOString(),
    })
    const userId = randomUUID()
    const from = published.length
    const paid = order(userId)
    const failed = order(userId)
    expect((await postEvent(app(1), '/events/order.created', { type: 'order.created', source: '/shop/order', data: paid })).status).toBe(204)
    expect((await postEvent(app(0), '/events/order.created', { type: 'order.created', source: '/shop/order', data: failed })).status).toBe(204)
    const cancel = { order_id: paid.order_id, user_id: userId, items: paid.items, reason: 'cancelled' }
    expect((await postEvent(app(1), '/events/order.cancelled', { type: 'order.cancelled', source: '/shop/order', data: cancel })).status).toBe(204)
    const mine = published.slice(from).filter((e) => (e.data as { user_id: string }).user_id === userId)
    expect(mine.map((e) => (e.data as { status: string }).status)).toEqual(['succeeded', 'failed', 'refunded'])
    expectInContract(mine)
  })
})
