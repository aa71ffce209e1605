import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { appDeps, call, metricValue, postEvent, testKeys, testPool } from '../../test/support.ts'
import { productApp } from './app.ts'

const pool = testPool(10)
let keys: Awaited<ReturnType<typeof testKeys>>
let admin: string

beforeAll(async () => {
  keys = await testKeys()
  admin = await keys.tokenFor({ role: 'admin' })
})

/** A product app of its own (its own metrics), a product with `stock` units, and a hold of `quantity` of them. */
async function held({ stock = 10, quantity = 3 } = {}) {
  const app = productApp({ pool, ...appDeps(), verify: keys.verify })
  const product = (await call(app, 'POST', '/api/products', { token: admin, body: { name: `Pot ${randomUUID().slice(0, 6)}`, price_cents: 900, stock } })).json as { id: string }
  const order = { order_id: randomUUID(), user_id: randomUUID() }
  const reserve = () => call(app, 'POST', '/internal/reservations', { body: { ...order, items: [{ product_id: product.id, quantity }] } })
  expect((await reserve()).status).toBe(201)
  const stock_ = async () => (await pool.query<{ stock: number }>('SELECT stock FROM product.products WHERE id = $1', [product.id])).rows[0]!.stock
  const status = async () =>
    (await pool.query<{ status: string; release_reason: string | null }>('SELECT status, release_reason FROM product.reservations WHERE order_id = $1', [order.order_id])).rows[0]
  const outlive = () => pool.query(`UPDATE product.reservations SET expires_at = now() - interval '1 second' WHERE order_id = $1`, [order.order_id])
  const expire = () => call(app, 'POST', '/internal/reservations/expire')
  return { app, product, order, reserve, stock: stock_, status, outlive, expire }
}

const created = (order: { order_id: string; user_id: string }, id = randomUUID()) => ({
  type: 'order.created',
  id,
  data: { ...order, items: [{ product_id: randomUUID(), quantity: 1, unit_price_cents: 1 }], total_cents: 1, created_at: new Date().toISOString() },
})
const cancelled = (order: { order_id: string; user_id: string }, reason: 'cancelled' | 'expired' = 'cancelled', id = randomUUID()) => ({
  type: 'order.cancelled',
  id,
  data: { ...order, reason },
})
const payment = (order: { order_id: string; user_id: string }, status: 'succeeded' | 'failed', id = randomUUID()) => ({
  type: 'payment.status',
  id,
  data: { payment_id: id, ...order, status, amount_cents: 2700, processed_at: new Date().toISOString() },
})

/** The same event delivered three times at once, as a broker that redelivers might. */
const thrice = (app: Parameters<typeof postEvent>[0], path: string, event: Parameters<typeof postEvent>[2]) =>
  Promise.all([1, 2, 3].map(() => postEvent(app, path, event)))

describe('order.created', () => {
  it('confirms the hold once, and a confirmed hold never expires', async () => {
    const h = await held()
    const answers = await thrice(h.app, '/events/order.created', created(h.order))
    expect(answers.map((a) => a.status)).toEqual([204, 204, 204])
    expect(await h.status()).toEqual({ status: 'confirmed', release_reason: null })
    expect(await metricValue(h.app, 'events_received_total{type="order.created",outcome="handled"}')).toBe(1)
    expect(await metricValue(h.app, 'events_received_total{type="order.created",outcome="duplicate"}')).toBe(2)
    await h.outlive()
    await h.expire()
    expect(await h.stock()).toBe(7)
    // A reserve retried after the confirmation still answers the same lines, and takes nothing.
    const again = await h.reserve()
    expect(again.status).toBe(200)
    expect(again.json.status).toBe('confirmed')
    expect(await h.stock()).toBe(7)
  })

  it('takes the units again when it comes after the hold expired, if they are all still there', async () => {
    const h = await held()
    await h.outlive()
    await h.expire()
    expect(await h.stock()).toBe(10)
    expect((await postEvent(h.app, '/events/order.created', created(h.order))).status).toBe(204)
    expect(await h.stock()).toBe(7)
    expect(await h.status()).toEqual({ status: 'confirmed', release_reason: null })
    expect(await metricValue(h.app, 'stock_reservations_total{outcome="retaken",reason=""}')).toBe(1)
  })

  it('counts the order as lost (2xx, nothing taken) when its expired units were sold meanwhile', async () => {
    const h = await held({ stock: 3, quantity: 3 })
    await h.outlive()
    await h.expire()
    const other = await call(h.app, 'POST', '/internal/reservations', { body: { order_id: randomUUID(), user_id: randomUUID(), items: [{ product_id: h.product.id, quantity: 2 }] } })
    expect(other.status).toBe(201)
    expect((await postEvent(h.app, '/events/order.created', created(h.order))).status).toBe(204)
    expect(await h.stock()).toBe(1)
    expect((await h.status())?.status).toBe('released')
    expect(await metricValue(h.app, 'stock_reservations_total{outcome="lost",reason=""}')).toBe(1)
  })

  it('rejects (422, counted) an order never reserved, another user’s, and malformed data', async () => {
    const h = await held()
    const bad = [
      created({ order_id: randomUUID(), user_id: h.order.user_id }),
      created({ ...h.order, user_id: randomUUID() }),
      { ...created(h.order), data: { user_id: h.order.user_id } },
      { ...created(h.order), data: { ...h.order, order_id: 'nope' } },
    ]
    for (const event of bad) expect((await postEvent(h.app, '/events/order.created', event)).status).toBe(422)
    expect(await metricValue(h.app, 'events_received_total{type="order.created",outcome="rejected"}')).toBe(4)
    expect(await h.status()).toEqual({ status: 'held', release_reason: null })
  })
})

describe('releases', () => {
  it.each([
    ['order.cancelled', '/events/order.cancelled', cancelled, 'order_cancelled'],
    ['order.cancelled (expired)', '/events/order.cancelled', (o: { order_id: string; user_id: string }) => cancelled(o, 'expired'), 'order_expired'],
    ['payment.status failed', '/events/payment.status', (o: { order_id: string; user_id: string }) => payment(o, 'failed'), 'payment_failed'],
  ] as const)('%s gives a held order’s units back once, delivered three times at once', async (_name, path, make, reason) => {
    const h = await held()
    const event = make(h.order)
    expect((await thrice(h.app, path, event)).map((a) => a.status)).toEqual([204, 204, 204])
    expect(await h.stock()).toBe(10)
    expect(await h.status()).toEqual({ status: 'released', release_reason: reason })
    expect(await metricValue(h.app, `events_received_total{type="${event.type}",outcome="handled"}`)).toBe(1)
    expect(await metricValue(h.app, `events_received_total{type="${event.type}",outcome="duplicate"}`)).toBe(2)
    // Replayed later, with a new event id: still nothing more.
    expect((await postEvent(h.app, path, make(h.order))).status).toBe(204)
    expect(await h.stock()).toBe(10)
  })

  it('gives a confirmed order’s units back once when it is cancelled', async () => {
    const h = await held()
    await postEvent(h.app, '/events/order.created', created(h.order))
    expect((await thrice(h.app, '/events/order.cancelled', cancelled(h.order))).map((a) => a.status)).toEqual([204, 204, 204])
    expect(await h.stock()).toBe(10)
  })

  it('gives back once when a cancel, a failed payment and the expiry all arrive at once', async () => {
    const h = await held()
    await h.outlive()
    await Promise.all([
      postEvent(h.app, '/events/order.cancelled', cancelled(h.order)),
      postEvent(h.app, '/events/payment.status', payment(h.order, 'failed')),
      h.expire(),
      postEvent(h.app, '/events/order.cancelled', cancelled(h.order)),
    ])
    expect(await h.stock()).toBe(10)
    expect((await h.status())?.status).toBe('released')
  })

  it('keeps a paid order’s units (payment succeeded releases nothing)', async () => {
    const h = await held()
    await postEvent(h.app, '/events/order.created', created(h.order))
    expect((await thrice(h.app, '/events/payment.status', payment(h.order, 'succeeded'))).map((a) => a.status)).toEqual([204, 204, 204])
    expect(await h.stock()).toBe(7)
    expect((await h.status())?.status).toBe('confirmed')
  })

  it('confirms the hold on payment succeeded when order.created never came, so the hold does not expire under a paid order', async () => {
    const h = await held()
    expect((await thrice(h.app, '/events/payment.status', payment(h.order, 'succeeded'))).map((a) => a.status)).toEqual([204, 204, 204])
    expect(await h.status()).toEqual({ status: 'confirmed', release_reason: null })
    await h.outlive()
    await h.expire()
    expect(await h.stock()).toBe(7)
    expect((await h.status())?.status).toBe('confirmed')
  })

  it('does not take the units again when payment succeeded comes after the cancel (a refund follows)', async () => {
    const h = await held()
    await postEvent(h.app, '/events/order.cancelled', cancelled(h.order))
    expect((await postEvent(h.app, '/events/payment.status', payment(h.order, 'succeeded'))).status).toBe(204)
    expect(await h.stock()).toBe(10)
    expect((await h.status())?.status).toBe('released')
  })

  it('does not take the units again when order.created comes after the cancel', async () => {
    const h = await held()
    await postEvent(h.app, '/events/order.cancelled', cancelled(h.order))
    expect((await postEvent(h.app, '/events/order.created', created(h.order))).status).toBe(204)
    expect(await h.stock()).toBe(10)
    expect((await h.status())?.status).toBe('released')
  })

  it('does not take expired units again for an order cancelled meanwhile', async () => {
    const h = await held()
    await h.outlive()
    await h.expire()
    expect((await postEvent(h.app, '/events/order.cancelled', cancelled(h.order))).status).toBe(204)
    expect(await h.status()).toEqual({ status: 'released', release_reason: 'order_cancelled' })
    await postEvent(h.app, '/events/order.created', created(h.order))
    expect(await h.stock()).toBe(10)
  })

  it('records a release that comes before the reserve, so the late reserve takes nothing', async () => {
    const app = productApp({ pool, ...appDeps(), verify: keys.verify })
    const p = (await call(app, 'POST', '/api/products', { token: admin, body: { name: 'Late', price_cents: 100, stock: 5 } })).json as { id: string }
    const order = { order_id: randomUUID(), user_id: randomUUID() }
    expect((await thrice(app, '/events/order.cancelled', cancelled(order))).map((a) => a.status)).toEqual([204, 204, 204])
    const late = await call(app, 'POST', '/internal/reservations', { body: { ...order, items: [{ product_id: p.id, quantity: 2 }] } })
    expect(late.status).toBe(409)
    expect(late.json.type).toMatch(/\/reservation-released$/)
    expect((await call(app, 'GET', `/api/products/${p.id}`)).json.stock).toBe(5)
    expect(await metricValue(app, 'stock_reservations_total{outcome="tombstone",reason="order_cancelled"}')).toBe(1)
  })

  it('ends with every unit back whichever of a release and a reserve for one order runs first', async () => {
    for (let i = 0; i < 10; i++) {
      const app = productApp({ pool, ...appDeps(), verify: keys.verify })
      const p = (await call(app, 'POST', '/api/products', { token: admin, body: { name: 'Race', price_cents: 100, stock: 5 } })).json as { id: string }
      const order = { order_id: randomUUID(), user_id: randomUUID() }
      const [reserved, released] = await Promise.all([
        call(app, 'POST', '/internal/reservations', { body: { ...order, items: [{ product_id: p.id, quantity: 2 }] } }),
        postEvent(app, '/events/payment.status', payment(order, 'failed')),
      ])
      expect([201, 409]).toContain(reserved.status)
      expect(released.status).toBe(204)
      expect((await call(app, 'GET', `/api/products/${p.id}`)).json.stock).toBe(5)
    }
  })

  it('rejects (422, counted) a release for another user’s order, and a malformed one', async () => {
    const h = await held()
    const bad = [
      cancelled({ ...h.order, user_id: randomUUID() }),
      { ...cancelled(h.order), data: { ...h.order, reason: 'bored' } },
      { ...cancelled(h.order), data: { order_id: h.order.order_id } },
    ]
    for (const event of bad) expect((await postEvent(h.app, '/events/order.cancelled', event)).status).toBe(422)
    expect(await metricValue(h.app, 'events_received_total{type="order.cancelled",outcome="rejected"}')).toBe(3)
    expect(await h.stock()).toBe(7)
  })
})

describe('an event route given something that is not a valid CloudEvent 1.0', () => {
  /** order.cancelled for the hold, in binary mode, with these headers changed (undefined: left out). */
  const rawCancel = (app: Parameters<typeof postEvent>[0], order: { order_id: string; user_id: string }, change: Record<string, string | undefined>) => {
    const headers = Object.entries({
      'ce-specversion': '1.0',
      'ce-id': randomUUID(),
      'ce-source': '/shop/order',
      'ce-type': 'order.cancelled',
      'Content-Type': 'application/json',
      ...change,
    }).filter((e): e is [string, string] => e[1] !== undefined)
    return app.request('/events/order.cancelled', { method: 'POST', headers: Object.fromEntries(headers), body: JSON.stringify({ ...order, reason: 'cancelled' }) })
  }

  it.each([
    ['without ce-source', { 'ce-source': undefined }],
    ['with ce-specversion 9.9', { 'ce-specversion': '9.9' }],
    ['without ce-id', { 'ce-id': undefined }],
    ['with text/plain data', { 'Content-Type': 'text/plain' }],
  ])('answers 400 %s and moves no stock', async (_, change) => {
    const h = await held()
    const res = await rawCancel(h.app, h.order, change)
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(await h.stock()).toBe(7)
    expect(await h.status()).toEqual({ status: 'held', release_reason: null })
  })

  it('takes the order and user ids in any case: they are the same reservation', async () => {
    const h = await held()
    const upper = { order_id: h.order.order_id.toUpperCase(), user_id: h.order.user_id.toUpperCase() }
    expect((await rawCancel(h.app, upper, {})).status).toBe(204)
    expect(await h.stock()).toBe(10)
    expect(await h.status()).toEqual({ status: 'released', release_reason: 'order_cancelled' })
  })
})
