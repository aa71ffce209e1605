/**
 * The whole flow across product, cart, order and payment, in-process, with a small event relay
 * standing in for the brokers and wired as the Triggers are: order.created and order.cancelled go
 * to payment, cart and product, payment.status to order, cart and product.
 * Like the RabbitMQ broker, the relay takes an event at once and delivers it afterwards,
 * retrying what is answered 5xx. Payments take no time, so the payment may well land before
 * `POST /api/orders` answers: what the tests check holds whichever comes first.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Publisher } from '../shared/events.ts'
import { createProductClient } from '../shared/product-client.ts'
import { cartApp } from '../functions/cart/app.ts'
import { orderApp } from '../functions/order/app.ts'
import { paymentApp } from '../functions/payment/app.ts'
import { productApp } from '../functions/product/app.ts'
import { appDeps, call, fetchVia, postEvent, testKeys, testPool } from './support.ts'

const pool = testPool(10)
type App = { request: (path: string, init?: RequestInit) => Response | Promise<Response> }

/** Delivers each event to every subscriber of its type, in the background, retrying 5xx. */
function relay() {
  const routes = new Map<string, { app: App; path: string }[]>()
  const inFlight = new Set<Promise<void>>()
  const deliver = async (app: App, path: string, event: Parameters<Publisher>[0]) => {
    let status = 0
    for (let attempt = 0; attempt < 5; attempt++) {
      status = (await postEvent(app, path, { ...event, id: event.id ?? randomUUID() })).status
      if (status < 500) return
      await new Promise((r) => setTimeout(r, 20 * 2 ** attempt)) // a backoff, not a wait for anything
    }
    // Given up: `settled()` rejects with this, rather than a later assertion failing for no clear reason.
    throw new Error(`${event.type} to ${path} was answered ${status} five times`)
  }
  const publish: Publisher = async (event) => {
    for (const { app, path } of routes.get(event.type) ?? []) {
      const p = deliver(app, path, event).finally(() => inFlight.delete(p))
      inFlight.add(p)
    }
  }
  return {
    publish,
    subscribe: (type: string, app: App, path: string) => routes.set(type, [...(routes.get(type) ?? []), { app, path }]),
    settled: async () => {
      while (inFlight.size) await Promise.all(inFlight)
    },
  }
}

let shop: Awaited<ReturnType<typeof openShop>>
const outboxTables: string[] = []

async function openShop({ successRate }: { successRate: number }) {
  const keys = await testKeys()
  const events = relay()
  // An outbox of its own: the shared orders.outbox is swept by the other shops the tests start
  // on this database, which would hand this shop's orders to their payment function.
  const outboxTable = `orders.outbox_${randomUUID().replaceAll('-', '').slice(0, 10)}`
  await pool.query(`CREATE TABLE ${outboxTable} (LIKE orders.outbox INCLUDING ALL)`)
  outboxTables.push(outboxTable)
  const product = productApp({ pool, ...appDeps(), verify: keys.verify })
  const products = createProductClient({ baseUrl: 'http://product', fetch: fetchVia(product) })
  const cart = cartApp({ pool, ...appDeps(), verify: keys.verify, products })
  const order = orderApp({ pool, ...appDeps(), verify: keys.verify, products, publish: events.publish, outboxTable })
  // No delay: the payment races the answer to POST /api/orders, the worst case for that answer.
  const payment = paymentApp({ pool, ...appDeps(), verify: keys.verify, publish: events.publish, successRate, delayMs: 0 })
  for (const [type, subscribers] of Object.entries({
    'order.created': [payment, cart, product],
    'order.cancelled': [payment, cart, product],
    'payment.status': [order, cart, product],
  })) {
    for (const app of subscribers) events.subscribe(type, app, `/events/${type}`)
  }
  return { keys, events, product, cart, order, payment }
}

beforeAll(async () => {
  shop = await openShop({ successRate: 1 })
})
afterAll(async () => {
  for (const table of outboxTables) await pool.query(`DROP TABLE IF EXISTS ${table}`)
})

async function shopper(s = shop) {
  const id = randomUUID()
  return { id, token: await s.keys.tokenFor({ id }) }
}

async function stock(s = shop, price_cents = 1500) {
  const admin = await s.keys.tokenFor({ role: 'admin' })
  const res = await call(s.product, 'POST', '/api/products', { token: admin, body: { name: `Lamp ${randomUUID().slice(0, 4)}`, price_cents, stock: 20 } })
  return res.json.id as string
}

describe('an order, end to end', () => {
  it('goes from cart to order to payment to paid, and empties the ordered lines from the cart', async () => {
    const { id: userId, token } = await shopper()
    const [lamp, bulb] = [await stock(), await stock(shop, 300)]
    await call(shop.cart, 'POST', '/api/cart/items', { token, body: { product_id: lamp, quantity: 1 } })
    await call(shop.cart, 'POST', '/api/cart/items', { token, body: { product_id: bulb, quantity: 4 } })

    const placed = await call(shop.order, 'POST', '/api/orders', { token, body: { items: [{ product_id: lamp, quantity: 1 }, { product_id: bulb, quantity: 3 }] } })
    expect(placed.status).toBe(201)
    expect(placed.json).toMatchObject({ status: 'pending', total_cents: 1500 + 3 * 300 })
    await shop.events.settled()

    const order = await call(shop.order, 'GET', `/api/orders/${placed.json.id}`, { token })
    expect(order.json).toMatchObject({ status: 'paid', payment_status: 'succeeded' })
    const payment = await call(shop.payment, 'GET', `/api/payments/${placed.json.id}`, { token })
    expect(payment.json).toMatchObject({ order_id: placed.json.id, user_id: userId, status: 'succeeded', amount_cents: 2400 })
    expect(order.json.payment_id).toBe(payment.json.id)
    const cart = await call(shop.cart, 'GET', '/api/cart', { token })
    expect(cart.json.items).toEqual([{ product_id: bulb, quantity: 1 }])
  })

  it('ends payment_failed when the payment fails, and puts the ordered lines back in the cart', async () => {
    const failing = await openShop({ successRate: 0 })
    const { token } = await shopper(failing)
    const lamp = await stock(failing)
    await call(failing.cart, 'PUT', `/api/cart/items/${lamp}`, { token, body: { quantity: 2 } })
    const placed = await call(failing.order, 'POST', '/api/orders', { token, body: { items: [{ product_id: lamp, quantity: 2 }] } })
    await failing.events.settled()
    expect((await call(failing.order, 'GET', `/api/orders/${placed.json.id}`, { token })).json.status).toBe('payment_failed')
    expect((await call(failing.payment, 'GET', `/api/payments/${placed.json.id}`, { token })).json.status).toBe('failed')
    expect((await call(failing.cart, 'GET', '/api/cart', { token })).json.items).toEqual([{ product_id: lamp, quantity: 2 }])
  })

  it('keeps shoppers apart: one sees none of another’s order, payment or cart', async () => {
    const [ann, bob] = [await shopper(), await shopper()]
    const lamp = await stock()
    await call(shop.cart, 'POST', '/api/cart/items', { token: ann.token, body: { product_id: lamp, quantity: 1 } })
    const placed = await call(shop.order, 'POST', '/api/orders', { token: ann.token, body: { items: [{ product_id: lamp, quantity: 1 }] } })
    await shop.events.settled()
    expect((await call(shop.order, 'GET', `/api/orders/${placed.json.id}`, { token: bob.token })).status).toBe(404)
    expect((await call(shop.payment, 'GET', `/api/payments/${placed.json.id}`, { token: bob.token })).status).toBe(404)
    expect((await call(shop.payment, 'GET', '/api/payments', { token: bob.token })).json.total).toBe(0)
    expect((await call(shop.cart, 'DELETE', `/api/cart/items/${lamp}`, { token: bob.token })).status).toBe(404)
  })
})
