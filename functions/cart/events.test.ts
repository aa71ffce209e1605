import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { createProductClient } from '../../shared/product-client.ts'
import { catalogFixture, type CatalogFixture } from '../../test/product-fixture.ts'
import { appDeps, call, fetchVia, metricValue, postEvent, testPool } from '../../test/support.ts'
import { cartApp } from './app.ts'

const pool = testPool(10)
let { keys, catalog, admin } = {} as CatalogFixture
beforeAll(async () => void ({ keys, catalog, admin } = await catalogFixture(pool)))

type Line = { product_id: string; quantity: number }
type App = ReturnType<typeof cartApp>

/** A cart app of its own (its own metrics), a user with a token, and products in the catalog. */
async function setup() {
  const app = cartApp({ pool, ...appDeps(), verify: keys.verify, products: createProductClient({ baseUrl: 'http://product', fetch: fetchVia(catalog) }) })
  const id = randomUUID()
  const token = await keys.tokenFor({ id })
  const product = async () => {
    const res = await call(catalog, 'POST', '/api/products', { token: admin, body: { name: `Mug ${randomUUID().slice(0, 8)}`, price_cents: 1250 } })
    return res.json.id as string
  }
  const set = async (product_id: string, quantity: number) =>
    expect((await call(app, 'PUT', `/api/cart/items/${product_id}`, { token, body: { quantity } })).status).toBe(200)
  const lines = async () => {
    const items = (await call(app, 'GET', '/api/cart', { token })).json.items as Line[]
    return Object.fromEntries(items.map((l) => [l.product_id, l.quantity]))
  }
  return { app, user: { id, token }, product, set, lines }
}

const orderCreated = (userId: string, items: Line[]) => ({
  order_id: randomUUID(),
  user_id: userId,
  items: items.map((l) => ({ ...l, unit_price_cents: 1250 })),
  total_cents: 1250 * items.reduce((n, l) => n + l.quantity, 0),
  created_at: new Date().toISOString(),
})
type Order = ReturnType<typeof orderCreated>

const created = (app: App, order: Order) => postEvent(app, '/events/order.created', { type: 'order.created', source: '/shop/order', data: order })
const cancelled = (app: App, order: Order, id = randomUUID()) =>
  postEvent(app, '/events/order.cancelled', {
    type: 'order.cancelled',
    source: '/shop/order',
    id,
    data: { order_id: order.order_id, user_id: order.user_id, items: order.items, reason: 'cancelled' },
  })
const paymentStatus = (app: App, order: Order, status: 'succeeded' | 'failed' | 'refunded', id = randomUUID()) =>
  postEvent(app, '/events/payment.status', {
    type: 'payment.status',
    source: '/shop/payment',
    id,
    data: { payment_id: randomUUID(), order_id: order.order_id, user_id: order.user_id, status, amount_cents: order.total_cents, processed_at: new Date().toISOString() },
  })
const statuses = (answers: { status: number }[]) => answers.map((a) => a.status)

describe('an order cancelled or whose payment failed', () => {
  it('puts the order’s lines back once, added to what the cart holds now and capped at 999, when order.cancelled arrives three times at once', async () => {
    const { app, user, product, set, lines } = await setup()
    const [mug, pot, lamp] = [await product(), await product(), await product()]
    await set(mug, 5)
    await set(pot, 2)
    // Two lines of one product, and a product that was never in the cart.
    const order = orderCreated(user.id, [{ product_id: mug, quantity: 1 }, { product_id: pot, quantity: 2 }, { product_id: lamp, quantity: 4 }, { product_id: mug, quantity: 2 }])
    expect((await created(app, order)).status).toBe(204)
    expect(await lines()).toEqual({ [mug]: 2 })
    // The shopper goes on shopping before the cancel comes.
    await set(pot, 998)
    const id = randomUUID()
    expect(statuses(await Promise.all([1, 2, 3].map(() => cancelled(app, order, id))))).toEqual([204, 204, 204])
    expect(await lines()).toEqual({ [mug]: 5, [pot]: 999, [lamp]: 4 })
    expect(await metricValue(app, 'events_received_total{type="order.cancelled",outcome="handled"}')).toBe(1)
    expect(await metricValue(app, 'events_received_total{type="order.cancelled",outcome="duplicate"}')).toBe(2)
  })

  it('puts them back once after a failed payment, however the failure and a cancel of the order mix', async () => {
    const { app, user, product, set, lines } = await setup()
    const mug = await product()
    await set(mug, 3)
    const order = orderCreated(user.id, [{ product_id: mug, quantity: 3 }])
    await created(app, order)
    expect(await lines()).toEqual({})
    const failed = randomUUID()
    const answers = await Promise.all([paymentStatus(app, order, 'failed', failed), cancelled(app, order), paymentStatus(app, order, 'failed', failed)])
    expect(statuses(answers)).toEqual([204, 204, 204])
    expect(await lines()).toEqual({ [mug]: 3 })
  })

  it('changes nothing for a payment that succeeded or was refunded', async () => {
    const { app, user, product, set, lines } = await setup()
    const mug = await product()
    await set(mug, 3)
    const order = orderCreated(user.id, [{ product_id: mug, quantity: 2 }])
    await created(app, order)
    expect((await paymentStatus(app, order, 'succeeded')).status).toBe(204)
    expect((await paymentStatus(app, order, 'refunded')).status).toBe(204)
    expect(await lines()).toEqual({ [mug]: 1 })
  })

  it.each(['order.cancelled', 'payment.status failed'])('keeps the lines in the cart when %s comes before order.created, which then takes nothing', async (first) => {
    const { app, user, product, set, lines } = await setup()
    const mug = await product()
    await set(mug, 5)
    const order = orderCreated(user.id, [{ product_id: mug, quantity: 3 }])
    expect((first === 'order.cancelled' ? await cancelled(app, order) : await paymentStatus(app, order, 'failed')).status).toBe(204)
    expect(await lines()).toEqual({ [mug]: 5 })
    expect((await created(app, order)).status).toBe(204)
    expect(await lines()).toEqual({ [mug]: 5 })
    expect((await cancelled(app, order)).status).toBe(204)
    expect(await lines()).toEqual({ [mug]: 5 })
  })

  it('ends with the cart as it was when order.created and its cancel arrive at once, three times each, whichever goes first', async () => {
    const { app, user, product, set, lines } = await setup()
    const [mug, pot] = [await product(), await product()]
    await set(mug, 5)
    await set(pot, 1)
    const before = await lines()
    const order = orderCreated(user.id, [{ product_id: mug, quantity: 3 }, { product_id: pot, quantity: 1 }])
    const [c, x] = [randomUUID(), randomUUID()]
    const answers = await Promise.all([1, 2, 3].flatMap(() => [postEvent(app, '/events/order.created', { type: 'order.created', source: '/shop/order', id: c, data: order }), cancelled(app, order, x)]))
    expect(statuses(answers)).toEqual([204, 204, 204, 204, 204, 204])
    expect(await lines()).toEqual(before)
  })

  it('makes a cart for a user who had none, with the order’s lines', async () => {
    const { app, user, product, lines } = await setup()
    const mug = await product()
    const order = orderCreated(user.id, [{ product_id: mug, quantity: 2 }])
    await created(app, order)
    expect((await pool.query('SELECT 1 FROM cart.carts WHERE user_id = $1', [user.id])).rowCount).toBe(0)
    expect((await cancelled(app, order)).status).toBe(204)
    expect(await lines()).toEqual({ [mug]: 2 })
  })

  it('puts nothing back for an order applied before its lines were kept', async () => {
    const { app, user, product, set, lines } = await setup()
    const mug = await product()
    await set(mug, 1)
    const order = orderCreated(user.id, [{ product_id: mug, quantity: 2 }])
    await pool.query('INSERT INTO cart.orders (order_id, applied_at) VALUES ($1, now())', [order.order_id])
    expect((await cancelled(app, order)).status).toBe(204)
    expect(await lines()).toEqual({ [mug]: 1 })
  })

  it('rejects malformed events and another user’s order with 400/422, counts them, and changes nothing', async () => {
    const { app, user, product, set, lines } = await setup()
    const mug = await product()
    await set(mug, 2)
    const order = orderCreated(user.id, [{ product_id: mug, quantity: 2 }])
    await created(app, order)
    const bad = [
      postEvent(app, '/events/order.cancelled', { type: 'order.cancelled', data: { order_id: order.order_id } }),
      postEvent(app, '/events/order.cancelled', { type: 'order.cancelled', data: { order_id: 'order-1', user_id: user.id } }),
      postEvent(app, '/events/order.cancelled', { type: 'order.created', data: { order_id: order.order_id, user_id: user.id } }),
      postEvent(app, '/events/payment.status', { type: 'payment.status', data: { order_id: order.order_id, user_id: user.id, status: 'maybe' } }),
      postEvent(app, '/events/payment.status', { type: 'payment.status', data: { order_id: order.order_id, status: 'failed' } }),
      cancelled(app, { ...order, user_id: randomUUID() }),
      paymentStatus(app, { ...order, user_id: randomUUID() }, 'failed'),
    ]
    for (const answer of await Promise.all(bad)) expect([400, 422]).toContain(answer.status)
    expect(await lines()).toEqual({})
    const rejected = (type: string) => metricValue(app, `events_received_total{type="${type}",outcome="rejected"}`)
    expect((await rejected('order.cancelled')) + (await rejected('payment.status'))).toBe(bad.length)
    // The real cancel still works afterwards.
    expect((await cancelled(app, order)).status).toBe(204)
    expect(await lines()).toEqual({ [mug]: 2 })
  })

  it('puts the lines back for a cancel that writes the order and user ids in upper case', async () => {
    const { app, user, product, set, lines } = await setup()
    const mug = await product()
    await set(mug, 2)
    const order = orderCreated(user.id, [{ product_id: mug.toUpperCase(), quantity: 2 }])
    expect((await created(app, order)).status).toBe(204)
    expect(await lines()).toEqual({})
    expect((await cancelled(app, { ...order, order_id: order.order_id.toUpperCase() as Order['order_id'], user_id: user.id.toUpperCase() })).status).toBe(204)
    expect(await lines()).toEqual({ [mug]: 2 })
  })

  it('answers 400 for an event that is not a valid CloudEvent 1.0, and puts nothing back', async () => {
    const { app, user, product, set, lines } = await setup()
    const mug = await product()
    await set(mug, 2)
    const order = orderCreated(user.id, [{ product_id: mug, quantity: 2 }])
    await created(app, order)
    const body = JSON.stringify({ order_id: order.order_id, user_id: user.id, items: order.items, reason: 'cancelled' })
    const base = { 'ce-id': randomUUID(), 'ce-type': 'order.cancelled', 'Content-Type': 'application/json' }
    for (const headers of [{ ...base, 'ce-specversion': '1.0' }, { ...base, 'ce-specversion': '9.9', 'ce-source': '/shop/order' }]) {
      const res = await app.request('/events/order.cancelled', { method: 'POST', headers, body })
      expect(res.status).toBe(400)
    }
    expect(await lines()).toEqual({})
  })
})
