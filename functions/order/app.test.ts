import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:net'
import { serve } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createPool } from '../../shared/db.ts'
import { createPublisher, type OutgoingEvent, type Publisher } from '../../shared/events.ts'
import { createMetrics } from '../../shared/metrics.ts'
import { createProductClient } from '../../shared/product-client.ts'
import { catalogFixture, type CatalogFixture } from '../../test/product-fixture.ts'
import { appDeps, call, fetchVia, metricValue, postEvent, quietLog, testPool, uniqueEmail } from '../../test/support.ts'
import { productApp } from '../product/app.ts'
import { orderApp, orderIdFor } from './app.ts'

const pool = testPool()
let { keys, catalog, admin } = {} as CatalogFixture
beforeAll(async () => void ({ keys, catalog, admin } = await catalogFixture(pool)))

const products = () => createProductClient({ baseUrl: 'http://product', fetch: fetchVia(catalog) })

const outboxTables: string[] = []

/** An order app whose broker is a recorder, with an outbox table of its own. */
async function setup({ publish }: { publish?: Publisher } = {}) {
  const outboxTable = `orders.outbox_${randomUUID().replaceAll('-', '').slice(0, 10)}`
  await pool.query(`CREATE TABLE ${outboxTable} (LIKE orders.outbox INCLUDING ALL)`)
  outboxTables.push(outboxTable)
  const sent: OutgoingEvent[] = []
  const recorder: Publisher = async (e) => {
    sent.push(e)
  }
  const metrics = createMetrics({ defaults: false })
  const app = orderApp({ pool, log: quietLog, metrics, verify: keys.verify, products: products(), publish: publish ?? recorder, outboxTable })
  const userId = randomUUID()
  const token = await keys.tokenFor({ id: userId })
  const unsent = async () => (await pool.query(`SELECT id FROM ${outboxTable} WHERE sent_at IS NULL`)).rows.map((r) => r.id as string)
  return { app, sent, userId, token, outboxTable, unsent }
}

async function product(price_cents = 500, name = `Item ${randomUUID().slice(0, 6)}`) {
  const res = await call(catalog, 'POST', '/api/products', { token: admin, body: { name, price_cents, stock: 10 } })
  return res.json as { id: string; name: string; price_cents: number }
}

describe('POST /api/orders', () => {
  it('prices the order from the catalog, answers 201 pending, and publishes order.created once', async () => {
    const { app, sent, token, userId, unsent } = await setup()
    const [a, b] = [await product(250), await product(1999)]
    const res = await call(app, 'POST', '/api/orders', {
      token,
      body: { items: [{ product_id: a.id, quantity: 2 }, { product_id: b.id, quantity: 1 }, { product_id: a.id, quantity: 1 }] },
    })
    expect(res.status).toBe(201)
    expect(res.json).toMatchObject({ user_id: userId, status: 'pending', total_cents: 3 * 250 + 1999, payment_id: null })
    expect(res.json.items).toHaveLength(2)
    expect(res.json.items).toContainEqual({ product_id: a.id, name: a.name, quantity: 3, unit_price_cents: 250 })
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({ type: 'order.created', source: '/shop/order', data: { order_id: res.json.id, user_id: userId, total_cents: 2749 } })
    expect((sent[0]!.data as { items: unknown[] }).items).toContainEqual({ product_id: b.id, quantity: 1, unit_price_cents: 1999 })
    expect(await unsent()).toEqual([])
  })

  it('answers the order as committed, pending, even when its payment is in before the answer', async () => {
    // A broker and a payment so fast that payment.status is handled while order.created is
    // being published: the order is paid before POST /api/orders answers.
    let self: ReturnType<typeof orderApp> | undefined
    const paidMeanwhile: number[] = []
    const s = await setup({
      publish: async (e) => {
        const { order_id, user_id } = e.data as { order_id: string; user_id: string }
        const payment_id = randomUUID()
        const data = { payment_id, order_id, user_id, status: 'succeeded', amount_cents: 500 }
        paidMeanwhile.push((await postEvent(self!, '/events/payment.status', { type: 'payment.status', source: '/shop/payment', id: payment_id, data })).status)
      },
    })
    self = s.app
    const p = await product(500)
    const res = await call(s.app, 'POST', '/api/orders', { token: s.token, body: { items: [{ product_id: p.id, quantity: 1 }] } })
    expect(paidMeanwhile).toEqual([204])
    expect(res.status).toBe(201)
    expect(res.json).toMatchObject({ status: 'pending', payment_id: null, payment_status: null, total_cents: 500 })
    expect((await call(s.app, 'GET', `/api/orders/${res.json.id}`, { token: s.token })).json).toMatchObject({ status: 'paid', payment_status: 'succeeded' })
  })

  it.each([
    ['no lines', { items: [] }],
    ['51 lines', { items: Array.from({ length: 51 }, () => ({ product_id: randomUUID(), quantity: 1 })) }],
    ['quantity 0', { items: [{ product_id: randomUUID(), quantity: 0 }] }],
    ['quantity 1000', { items: [{ product_id: randomUUID(), quantity: 1000 }] }],
    ['a fractional quantity', { items: [{ product_id: randomUUID(), quantity: 1.5 }] }],
    ['a bad product id', { items: [{ product_id: "abc' OR 1=1 --", quantity: 1 }] }],
    ['a client-sent price', { items: [{ product_id: randomUUID(), quantity: 1, unit_price_cents: 1 }] }],
    ['a client-sent total', { items: [{ product_id: randomUUID(), quantity: 1 }], total_cents: 1 }],
    ['a client-sent status', { items: [{ product_id: randomUUID(), quantity: 1 }], status: 'paid' }],
    ['items that are not a list', { items: 'all of them' }],
  ])('answers 400 for %s and writes nothing', async (_case, body) => {
    const { app, token, userId } = await setup()
    const res = await call(app, 'POST', '/api/orders', { token, body })
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect((await pool.query('SELECT count(*)::int AS n FROM orders.orders WHERE user_id = $1', [userId])).rows[0].n).toBe(0)
  })

  it('takes one product named in lower and in upper case as one line (one product, one line), not a 500', async () => {
    const { app, token } = await setup()
    const p = await product(300)
    const res = await call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: p.id, quantity: 1 }, { product_id: p.id.toUpperCase(), quantity: 2 }] } })
    expect(res.status).toBe(201)
    expect(res.json.items).toEqual([{ product_id: p.id, name: p.name, quantity: 3, unit_price_cents: 300 }])
    expect(res.json.total_cents).toBe(900)
  })

  it('reads and cancels an order named in upper case', async () => {
    const { app, token } = await setup()
    const p = await product()
    const order = (await call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: p.id, quantity: 1 }] } })).json
    expect((await call(app, 'GET', `/api/orders/${order.id.toUpperCase()}`, { token })).json.id).toBe(order.id)
    expect((await call(app, 'POST', `/api/orders/${order.id.toUpperCase()}/cancel`, { token })).json).toMatchObject({ id: order.id, status: 'cancelled' })
  })

  it('answers 400 naming each missing field, and "is not a known field" only for extra ones', async () => {
    const { app, token } = await setup()
    const empty = await call(app, 'POST', '/api/orders', { token, body: {} })
    expect(empty.status).toBe(400)
    expect(empty.json.errors).toEqual([{ path: 'items', message: 'is required' }])
    const line = await call(app, 'POST', '/api/orders', { token, body: { items: [{ quantity: 1, price: 2 }] } })
    expect(line.json.errors).toEqual([
      { path: 'items.0.product_id', message: 'is required' },
      { path: 'items.0.price', message: 'is not a known field' },
    ])
  })

  it('answers 400 when merged duplicate lines hold more than 999', async () => {
    const { app, token } = await setup()
    const p = await product()
    const res = await call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: p.id, quantity: 600 }, { product_id: p.id, quantity: 400 }] } })
    expect(res.status).toBe(400)
  })

  it('answers 422 naming an unknown product, and 503 when the catalog does not answer', async () => {
    const { app, token } = await setup()
    const p = await product()
    const missing = randomUUID()
    const res = await call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: p.id, quantity: 1 }, { product_id: missing, quantity: 1 }] } })
    expect(res.status).toBe(422)
    expect(JSON.stringify(res.json.errors)).toContain(missing)

    // A port this test keeps, whose every connection is dropped: a port closed again could be
    // taken meanwhile by another test's server, which would answer.
    const dropping = createServer((socket) => socket.destroy())
    await new Promise<void>((r) => dropping.listen(0, '127.0.0.1', r))
    const port = (dropping.address() as { port: number }).port
    try {
      const offline = orderApp({ pool, ...appDeps(), verify: keys.verify, products: createProductClient({ baseUrl: `http://127.0.0.1:${port}` }), publish: async () => {} })
      const down = await call(offline, 'POST', '/api/orders', { token, body: { items: [{ product_id: p.id, quantity: 1 }] } })
      expect(down.status).toBe(503)
    } finally {
      dropping.close()
    }
  })

  it('needs a token, and refuses a forged X-User-ID', async () => {
    const { app, token } = await setup()
    expect((await call(app, 'POST', '/api/orders', { body: { items: [] } })).status).toBe(401)
    expect((await call(app, 'GET', '/api/orders', { token, headers: { 'X-User-ID': randomUUID() } })).status).toBe(403)
  })
})

describe('Idempotency-Key', () => {
  it('answers 201 once, then 200 with the same body, and never makes a second order', async () => {
    const { app, token, userId, sent } = await setup()
    const p = await product()
    const body = { items: [{ product_id: p.id, quantity: 2 }] }
    const headers = { 'Idempotency-Key': `key-${randomUUID()}` }
    const first = await call(app, 'POST', '/api/orders', { token, body, headers })
    const again = await call(app, 'POST', '/api/orders', { token, body, headers })
    expect(first.status).toBe(201)
    expect(again.status).toBe(200)
    expect(again.json).toEqual(first.json)
    expect(sent).toHaveLength(1)
    expect((await pool.query('SELECT count(*)::int AS n FROM orders.orders WHERE user_id = $1', [userId])).rows[0].n).toBe(1)
  })

  it('makes one order from ten requests at once', async () => {
    const { app, token, userId, sent } = await setup()
    const p = await product()
    const headers = { 'Idempotency-Key': randomUUID() }
    const results = await Promise.all(
      Array.from({ length: 10 }, () => call(app, 'POST', '/api/orders', { token, headers, body: { items: [{ product_id: p.id, quantity: 1 }] } })),
    )
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201])
    expect(new Set(results.map((r) => r.json.id)).size).toBe(1)
    expect(sent).toHaveLength(1)
    expect((await pool.query('SELECT count(*)::int AS n FROM orders.orders WHERE user_id = $1', [userId])).rows[0].n).toBe(1)
    // One reservation for the ten: the retries hold no units of their own until they expire.
    expect((await pool.query('SELECT stock FROM product.products WHERE id = $1', [p.id])).rows[0].stock).toBe(9)
    expect((await pool.query('SELECT count(*)::int AS n FROM product.reservations WHERE user_id = $1', [userId])).rows[0].n).toBe(1)
  })

  it('with one key and two bodies at once: one order, the other body 422, and only that order’s units taken', async () => {
    const { app, token, userId } = await setup()
    const p = await product()
    const headers = { 'Idempotency-Key': randomUUID() }
    const bodies = [1, 2, 1, 2, 1, 2].map((quantity) => ({ items: [{ product_id: p.id, quantity }] }))
    const results = await Promise.all(bodies.map((body) => call(app, 'POST', '/api/orders', { token, headers, body })))
    const won = results.find((r) => r.status === 201)!
    const quantity = won.json.items[0].quantity as number
    results.forEach((r, i) => expect(r.status, `request ${i}`).toBe(r === won ? 201 : bodies[i]!.items[0]!.quantity === quantity ? 200 : 422))
    expect((await pool.query('SELECT stock FROM product.products WHERE id = $1', [p.id])).rows[0].stock).toBe(10 - quantity)
    expect((await pool.query('SELECT count(*)::int AS n FROM product.reservations WHERE user_id = $1', [userId])).rows[0].n).toBe(1)
  })

  it('derives the order id from the user and the key (RFC 9562 version 8): the same for both, another for another user or key', () => {
    const [user, other] = [randomUUID(), randomUUID()]
    expect(orderIdFor(user, 'k1')).toBe(orderIdFor(user, 'k1'))
    expect(orderIdFor(user, 'k1')).not.toBe(orderIdFor(other, 'k1'))
    expect(orderIdFor(user, 'k1')).not.toBe(orderIdFor(user, 'k2'))
    expect(orderIdFor(user, 'k1')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it('answers 422 for the same key with another body, and keeps keys per user', async () => {
    const { app, token } = await setup()
    const other = await setup()
    const p = await product()
    const headers = { 'Idempotency-Key': randomUUID() }
    expect((await call(app, 'POST', '/api/orders', { token, headers, body: { items: [{ product_id: p.id, quantity: 1 }] } })).status).toBe(201)
    expect((await call(app, 'POST', '/api/orders', { token, headers, body: { items: [{ product_id: p.id, quantity: 2 }] } })).status).toBe(422)
    expect((await call(app, 'POST', '/api/orders', { token: other.token, headers, body: { items: [{ product_id: p.id, quantity: 2 }] } })).status).toBe(201)
  })

  it('answers 400 for a key that is not printable ASCII', async () => {
    const { app, token } = await setup()
    const res = await call(app, 'POST', '/api/orders', { token, headers: { 'Idempotency-Key': 'x'.repeat(256) }, body: { items: [{ product_id: randomUUID(), quantity: 1 }] } })
    expect(res.status).toBe(400)
  })
})

describe('reading and cancelling', () => {
  it('lists the caller’s orders newest first, and hides other users’ orders behind 404', async () => {
    const mine = await setup()
    const theirs = await setup()
    const p = await product()
    const body = { items: [{ product_id: p.id, quantity: 1 }] }
    const first = (await call(mine.app, 'POST', '/api/orders', { token: mine.token, body })).json
    const second = (await call(mine.app, 'POST', '/api/orders', { token: mine.token, body })).json
    const list = await call(mine.app, 'GET', '/api/orders?limit=1', { token: mine.token })
    expect(list.json).toMatchObject({ total: 2, limit: 1, offset: 0 })
    expect(list.json.items[0].id).toBe(second.id)
    expect((await call(mine.app, 'GET', `/api/orders/${first.id}`, { token: mine.token })).json).toEqual(first)
    expect((await call(mine.app, 'GET', `/api/orders/${first.id}`, { token: theirs.token })).status).toBe(404)
    expect((await call(mine.app, 'POST', `/api/orders/${first.id}/cancel`, { token: theirs.token })).status).toBe(404)
    expect((await call(mine.app, 'GET', '/api/orders', { token: theirs.token })).json.total).toBe(0)
    expect((await call(mine.app, 'GET', `/api/orders/${encodeURIComponent("1' OR '1'='1")}`, { token: mine.token })).status).toBe(400)
  })

  it('filters the caller’s orders by status', async () => {
    const { app, token } = await setup()
    const p = await product()
    const body = { items: [{ product_id: p.id, quantity: 1 }] }
    const kept = (await call(app, 'POST', '/api/orders', { token, body })).json
    const dropped = (await call(app, 'POST', '/api/orders', { token, body })).json
    await call(app, 'POST', `/api/orders/${dropped.id}/cancel`, { token })
    const pending = await call(app, 'GET', '/api/orders?status=pending', { token })
    expect(pending.json.items.map((o: { id: string }) => o.id)).toEqual([kept.id])
    expect(pending.json.total).toBe(1)
    expect((await call(app, 'GET', '/api/orders?status=cancelled', { token })).json.items.map((o: { id: string }) => o.id)).toEqual([dropped.id])
    expect((await call(app, 'GET', '/api/orders?status=shipped', { token })).status).toBe(400)
  })

  it('lists every user’s orders for an admin, with their buyer’s email, of one status; a customer gets 403', async () => {
    const { app } = await setup()
    const p = await product()
    const body = { items: [{ product_id: p.id, quantity: 1 }] }
    const buyers = [uniqueEmail('buyer'), uniqueEmail('buyer')]
    const tokens = await Promise.all(buyers.map((email) => keys.tokenFor({ id: randomUUID(), email })))
    const [a, b] = [(await call(app, 'POST', '/api/orders', { token: tokens[0], body })).json, (await call(app, 'POST', '/api/orders', { token: tokens[1], body })).json]
    await call(app, 'POST', `/api/orders/${b.id}/cancel`, { token: tokens[1] })
    const adminToken = await keys.tokenFor({ role: 'admin' })
    // Other tests order meanwhile: read every page of a listing.
    const listing = async (query: string) => {
      const all: { id: string; status: string; user_id: string; user_email: string | null }[] = []
      for (let offset = 0; ; offset += 100) {
        const res = await call(app, 'GET', `/api/orders?all=true&limit=100&offset=${offset}${query}`, { token: adminToken })
        expect(res.status).toBe(200)
        all.push(...res.json.items)
        if (res.json.items.length < 100) return all
      }
    }
    const pending = await listing('&status=pending')
    expect(pending.every((o) => o.status === 'pending')).toBe(true)
    expect(pending.find((o) => o.id === a.id)).toMatchObject({ user_id: a.user_id, user_email: buyers[0], status: 'pending', items: [{ product_id: p.id, quantity: 1 }] })
    expect(pending.find((o) => o.id === b.id)).toBeUndefined()
    expect((await listing('&status=cancelled')).find((o) => o.id === b.id)).toMatchObject({ user_email: buyers[1], status: 'cancelled' })
    const every = (await listing('')).map((o) => o.id)
    expect(every.indexOf(b.id)).toBeGreaterThanOrEqual(0)
    expect(every.indexOf(b.id)).toBeLessThan(every.indexOf(a.id))
    const refused = await call(app, 'GET', '/api/orders?all=true', { token: tokens[0] })
    expect(refused.status).toBe(403)
    expect(refused.headers.get('Content-Type')).toBe('application/problem+json')
    // Without all=true an admin sees their own orders, like anyone.
    expect((await call(app, 'GET', '/api/orders', { token: adminToken })).json.total).toBe(0)
    expect((await call(app, 'GET', '/api/orders?all=yes', { token: adminToken })).status).toBe(400)
  })

  it('cancels a pending order once; then 409', async () => {
    const { app, token } = await setup()
    const p = await product()
    const order = (await call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: p.id, quantity: 1 }] } })).json
    const res = await call(app, 'POST', `/api/orders/${order.id}/cancel`, { token })
    expect(res.json.status).toBe('cancelled')
    expect((await call(app, 'POST', `/api/orders/${order.id}/cancel`, { token })).status).toBe(409)
  })
})

describe('POST /events/payment.status', () => {
  const paymentStatus = (order: { id: string; user_id: string }, status: 'succeeded' | 'failed', payment_id = randomUUID()) => ({
    type: 'payment.status',
    source: '/shop/payment',
    id: payment_id,
    data: { payment_id, order_id: order.id, user_id: order.user_id, status, amount_cents: 500, processed_at: new Date().toISOString() },
  })
  const placed = async () => {
    const s = await setup()
    const p = await product()
    const order = (await call(s.app, 'POST', '/api/orders', { token: s.token, body: { items: [{ product_id: p.id, quantity: 1 }] } })).json
    const status = async () => (await call(s.app, 'GET', `/api/orders/${order.id}`, { token: s.token })).json
    return { ...s, order, status }
  }

  it('moves pending to paid once, however often and however concurrently it arrives', async () => {
    const { app, order, status } = await placed()
    const event = paymentStatus(order, 'succeeded')
    const answers = [await postEvent(app, '/events/payment.status', event)]
    answers.push(...(await Promise.all([1, 2, 3].map(() => postEvent(app, '/events/payment.status', event)))))
    expect(answers.map((a) => a.status)).toEqual([204, 204, 204, 204])
    expect(await status()).toMatchObject({ status: 'paid', payment_id: event.data.payment_id, payment_status: 'succeeded' })
    expect(await metricValue(app, 'orders_total{status="paid"}')).toBe(1)
    expect(await metricValue(app, 'events_received_total{type="payment.status",outcome="handled"}')).toBe(1)
    expect(await metricValue(app, 'events_received_total{type="payment.status",outcome="duplicate"}')).toBe(3)
    expect(await metricValue(app, 'orders_total{status="pending"}')).toBe(1)
  })

  it('moves pending to payment_failed, in structured mode too', async () => {
    const { app, order, status } = await placed()
    expect((await postEvent(app, '/events/payment.status', { ...paymentStatus(order, 'failed'), mode: 'structured' })).status).toBe(204)
    expect((await status()).status).toBe('payment_failed')
  })

  it('ignores a failure after a success (2xx, nothing changes)', async () => {
    const { app, order, status } = await placed()
    const ok = paymentStatus(order, 'succeeded')
    await postEvent(app, '/events/payment.status', ok)
    expect((await postEvent(app, '/events/payment.status', paymentStatus(order, 'failed'))).status).toBe(204)
    expect(await status()).toMatchObject({ status: 'paid', payment_id: ok.data.payment_id })
  })

  it('keeps a cancelled order cancelled and records a late success on it for a refund', async () => {
    const { app, token, order, status } = await placed()
    await call(app, 'POST', `/api/orders/${order.id}/cancel`, { token })
    const ok = paymentStatus(order, 'succeeded')
    expect((await postEvent(app, '/events/payment.status', ok)).status).toBe(204)
    expect(await status()).toMatchObject({ status: 'cancelled', payment_id: ok.data.payment_id, payment_status: 'succeeded' })
    expect((await postEvent(app, '/events/payment.status', paymentStatus(order, 'failed'))).status).toBe(204)
    expect((await status()).payment_status).toBe('succeeded')
  })

  it('rejects, counts and changes nothing for malformed events and unknown orders', async () => {
    const { app, order, status } = await placed()
    const good = paymentStatus(order, 'succeeded')
    const bad = [
      { ...good, data: { ...good.data, order_id: undefined } },
      { ...good, data: { ...good.data, status: 'maybe' } },
      { ...good, data: { ...good.data, user_id: 42 } },
      { ...good, data: { ...good.data, user_id: randomUUID() } },
      { ...good, data: { ...good.data, order_id: randomUUID() } },
      { ...good, type: 'order.created' },
    ]
    for (const event of bad) expect([400, 422]).toContain((await postEvent(app, '/events/payment.status', event)).status)
    const notAnEvent = await app.request('/events/payment.status', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"hello":1}' })
    expect(notAnEvent.status).toBe(400)
    expect(await metricValue(app, 'events_received_total{type="payment.status",outcome="rejected"}')).toBe(7)
    expect((await status()).status).toBe('pending')
  })

  it('takes a redelivery that writes the ids in upper case as the duplicate it is', async () => {
    const { app, order, status } = await placed()
    const event = paymentStatus(order, 'succeeded')
    expect((await postEvent(app, '/events/payment.status', event)).status).toBe(204)
    const upper = { ...event, data: { ...event.data, order_id: order.id.toUpperCase(), user_id: order.user_id.toUpperCase(), payment_id: event.data.payment_id.toUpperCase() } }
    expect((await postEvent(app, '/events/payment.status', upper)).status).toBe(204)
    expect(await metricValue(app, 'events_received_total{type="payment.status",outcome="duplicate"}')).toBe(1)
    expect(await status()).toMatchObject({ status: 'paid', payment_id: event.data.payment_id })
  })

  it('answers 400 for a payment.status that is not a valid CloudEvent 1.0, and the order stays pending', async () => {
    const { app, order, status } = await placed()
    const { data } = paymentStatus(order, 'succeeded')
    const headers = { 'ce-specversion': '9.9', 'ce-id': randomUUID(), 'ce-source': '/shop/payment', 'ce-type': 'payment.status', 'Content-Type': 'application/json' }
    const res = await app.request('/events/payment.status', { method: 'POST', headers, body: JSON.stringify(data) })
    expect(res.status).toBe(400)
    expect(((await res.json()) as { errors: unknown }).errors).toEqual([{ path: 'ce-specversion', message: 'must be "1.0"' }])
    expect((await status()).status).toBe('pending')
  })

  it('answers 503 while the database is unreachable, and succeeds when retried', async () => {
    const { app, order, status } = await placed()
    const hung: Server = createServer(() => {})
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r))
    const dead = createPool({ connectionString: `postgres://postgres@127.0.0.1:${(hung.address() as { port: number }).port}/x`, applicationName: 't', log: quietLog, connectionTimeoutMs: 300 })
    const offline = orderApp({ pool: dead, ...appDeps(), verify: keys.verify, products: products(), publish: async () => {} })
    const event = paymentStatus(order, 'succeeded')
    try {
      expect((await postEvent(offline, '/events/payment.status', event)).status).toBe(503)
      expect(await metricValue(offline, 'events_received_total{type="payment.status",outcome="failed"}')).toBe(1)
    } finally {
      await dead.end()
      hung.close()
    }
    expect((await postEvent(app, '/events/payment.status', event)).status).toBe(204)
    expect((await status()).status).toBe('paid')
  })
})

describe('stock', () => {
  const stockOf = async (id: string) => (await pool.query<{ stock: number }>('SELECT stock FROM product.products WHERE id = $1', [id])).rows[0]!.stock
  const withStock = async (stock: number, price_cents = 500) =>
    (await call(catalog, 'POST', '/api/products', { token: admin, body: { name: `Item ${randomUUID().slice(0, 6)}`, price_cents, stock } })).json as { id: string; name: string }

  it('sells exactly the stock: 100 orders of 1 at once against stock 10 give 10 × 201 and 90 × 409', { timeout: 120_000 }, async () => {
    // Real servers and sockets: product listens, order reaches it through the client's keep-alive
    // pool. Pools of their own that wait for a connection as long as it takes: the assertion is
    // about who gets the stock, never about how fast.
    const pools = ['product', 'order'].map((name) =>
      createPool({ connectionString: inject('databaseUrl'), applicationName: `oversell-${name}`, log: quietLog, max: 10, connectionTimeoutMs: 120_000, statementTimeoutMs: 60_000 }),
    )
    const [productPool, orderPool] = pools as [ReturnType<typeof createPool>, ReturnType<typeof createPool>]
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: productApp({ pool: productPool, ...appDeps(), verify: keys.verify }).fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
    })
    try {
      const port = (server.address() as { port: number }).port
      const outboxTable = `orders.outbox_${randomUUID().replaceAll('-', '').slice(0, 10)}`
      await pool.query(`CREATE TABLE ${outboxTable} (LIKE orders.outbox INCLUDING ALL)`)
      const app = orderApp({
        pool: orderPool,
        ...appDeps(),
        verify: keys.verify,
        products: createProductClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 120_000 }),
        publish: async () => {},
        outboxTable,
      })
      const p = await withStock(10)
      const tokens = await Promise.all(Array.from({ length: 100 }, () => keys.tokenFor()))
      const answers = await Promise.all(tokens.map((token) => call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: p.id, quantity: 1 }] } })))

      const by = (status: number) => answers.filter((a) => a.status === status)
      expect(answers.map((a) => a.status).filter((s) => s !== 201 && s !== 409)).toEqual([])
      expect(by(201)).toHaveLength(10)
      expect(by(409)).toHaveLength(90)
      for (const { json } of by(409)) {
        expect(json.type).toMatch(/\/out-of-stock$/)
        expect(json.unavailable).toEqual([{ product_id: p.id, requested: 1, available: 0 }])
      }
      expect(await stockOf(p.id)).toBe(0)
      const held = await pool.query<{ n: number; units: number }>(
        `SELECT count(*)::int AS n, coalesce(sum(l.quantity), 0)::int AS units FROM product.reservation_lines l WHERE l.product_id = $1`,
        [p.id],
      )
      expect(held.rows[0]).toEqual({ n: 10, units: 10 })
      const orders = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM orders.order_items WHERE product_id = $1', [p.id])
      expect(orders.rows[0]!.n).toBe(10)
    } finally {
      await new Promise((r) => server.close(r))
      await Promise.all(pools.map((p) => p.end()))
    }
  })

  it('takes nothing from line 1 when line 2 is short, and says which line in unavailable', async () => {
    const { app, token, userId, sent } = await setup()
    const [a, b] = [await withStock(5), await withStock(1)]
    const res = await call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: a.id, quantity: 2 }, { product_id: b.id, quantity: 3 }] } })
    expect(res.status).toBe(409)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.json.type).toMatch(/\/out-of-stock$/)
    expect(res.json.unavailable).toEqual([{ product_id: b.id, requested: 3, available: 1 }])
    expect([await stockOf(a.id), await stockOf(b.id)]).toEqual([5, 1])
    expect(sent).toEqual([])
    expect((await pool.query('SELECT count(*)::int AS n FROM orders.orders WHERE user_id = $1', [userId])).rows[0].n).toBe(0)
  })

  it('asks product once per order, whatever the number of lines', async () => {
    const calls: string[] = []
    const counting = createProductClient({
      baseUrl: 'http://product',
      fetch: (async (input: string | URL | Request, init?: RequestInit) => {
        calls.push(`${init?.method ?? 'GET'} ${new URL(typeof input === 'string' || input instanceof URL ? input : input.url).pathname}`)
        return fetchVia(catalog)(input, init)
      }) as typeof fetch,
    })
    const app = orderApp({ pool, ...appDeps(), verify: keys.verify, products: counting, publish: async () => {}, outboxTable: (await setup()).outboxTable })
    const lines = await Promise.all([withStock(5, 100), withStock(5, 200), withStock(5, 300)])
    const res = await call(app, 'POST', '/api/orders', { token: await keys.tokenFor(), body: { items: lines.map((p) => ({ product_id: p.id, quantity: 2 })) } })
    expect(res.status).toBe(201)
    expect(res.json.total_cents).toBe(2 * (100 + 200 + 300))
    expect(res.json.items.map((i: { name: string }) => i.name).sort()).toEqual(lines.map((p) => p.name).sort())
    expect(calls).toEqual(['POST /internal/reservations'])
  })

  it('takes the stock once for a request replayed with its Idempotency-Key', async () => {
    const { app, token } = await setup()
    const p = await withStock(10)
    const headers = { 'Idempotency-Key': randomUUID() }
    const body = { items: [{ product_id: p.id, quantity: 3 }] }
    const answers = [await call(app, 'POST', '/api/orders', { token, headers, body }), await call(app, 'POST', '/api/orders', { token, headers, body })]
    expect(answers.map((a) => a.status)).toEqual([201, 200])
    expect(await stockOf(p.id)).toBe(7)
  })

  it('answers the order as committed, pending, even when its payment is decided before the answer', async () => {
    let app: ReturnType<typeof orderApp> | undefined
    // A broker and a payment so fast that payment.status is handled while order.created is being published.
    const s = await setup({
      publish: async (e) => {
        const { order_id, user_id } = e.data as { order_id: string; user_id: string }
        const payment_id = randomUUID()
        const answer = await postEvent(app!, '/events/payment.status', { type: 'payment.status', id: payment_id, data: { payment_id, order_id, user_id, status: 'succeeded' } })
        expect(answer.status).toBe(204)
      },
    })
    app = s.app
    const p = await withStock(2)
    const res = await call(s.app, 'POST', '/api/orders', { token: s.token, body: { items: [{ product_id: p.id, quantity: 1 }] } })
    expect(res.status).toBe(201)
    expect(res.json).toMatchObject({ status: 'pending', payment_id: null })
    expect((await call(s.app, 'GET', `/api/orders/${res.json.id}`, { token: s.token })).json.status).toBe('paid')
  })

  it('points an unknown product at the line of the request that named it', async () => {
    const { app, token } = await setup()
    const [a, b] = [await withStock(5), await withStock(5)]
    const missing = randomUUID()
    const res = await call(app, 'POST', '/api/orders', {
      token,
      body: { items: [{ product_id: a.id, quantity: 1 }, { product_id: b.id, quantity: 1 }, { product_id: missing, quantity: 1 }] },
    })
    expect(res.status).toBe(422)
    expect(res.json.type).toMatch(/\/unknown-product$/)
    expect(res.json.errors).toEqual([{ path: 'items.2.product_id', message: `no product ${missing}` }])
    expect([await stockOf(a.id), await stockOf(b.id)]).toEqual([5, 5])
  })
})

describe('the outbox', () => {
  const order = async (app: ReturnType<typeof orderApp>, token: string) => {
    const p = await product()
    return call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: p.id, quantity: 1 }] } })
  }

  it('keeps the event when the broker refuses; a flush sends it once', async () => {
    let refuse = true
    const sent: OutgoingEvent[] = []
    const { app, token, unsent } = await setup({
      publish: async (e) => {
        if (refuse) throw new Error('broker answered 500')
        sent.push(e)
      },
    })
    const res = await order(app, token)
    expect(res.status).toBe(201)
    expect(await unsent()).toHaveLength(1)
    expect(await metricValue(app, 'outbox_pending')).toBe(1)
    expect((await call(app, 'POST', '/internal/outbox/flush')).json).toMatchObject({ sent: 0, failed: 1, pending: 1 })
    refuse = false
    expect((await call(app, 'POST', '/internal/outbox/flush')).json).toEqual({ sent: 1, failed: 0, pending: 0 })
    expect((await call(app, 'POST', '/internal/outbox/flush')).json).toEqual({ sent: 0, failed: 0, pending: 0 })
    expect(sent.map((e) => (e.data as { order_id: string }).order_id)).toEqual([res.json.id])
    expect(await unsent()).toEqual([])
  })

  it('answers 201 when the broker times out, and leaves the event for the sweep', async () => {
    // A broker that accepts the connection and never answers.
    const silent = createServer(() => {})
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const sink = `http://127.0.0.1:${(silent.address() as { port: number }).port}/`
    try {
      const { app, token, unsent } = await setup({ publish: createPublisher({ sink, metrics: createMetrics({ defaults: false }), timeoutMs: 200 }) })
      const res = await order(app, token)
      expect(res.status).toBe(201)
      expect(await unsent()).toHaveLength(1)
    } finally {
      silent.close()
    }
  })

  it('sends after a crash between commit and publish: the restarted function flushes it', async () => {
    const crashed = await setup({
      publish: async () => {
        throw new Error('process killed before it could publish')
      },
    })
    const res = await order(crashed.app, crashed.token)
    expect(res.status).toBe(201)
    // The "restarted" instance: same database and outbox, a broker that works.
    const sent: OutgoingEvent[] = []
    const restarted = orderApp({
      pool,
      ...appDeps(),
      verify: keys.verify,
      products: products(),
      outboxTable: crashed.outboxTable,
      publish: async (e) => {
        sent.push(e)
      },
    })
    expect((await call(restarted, 'POST', '/internal/outbox/flush')).json).toMatchObject({ sent: 1, pending: 0 })
    await call(restarted, 'POST', '/internal/outbox/flush')
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({ type: 'order.created', data: { order_id: res.json.id } })
  })

  it('sweeps earlier leftovers after a later publish works', async () => {
    let refuse = true
    const sent: OutgoingEvent[] = []
    const { app, token, unsent } = await setup({
      publish: async (e) => {
        if (refuse) throw new Error('broker down')
        sent.push(e)
      },
    })
    await order(app, token)
    refuse = false
    await order(app, token)
    // The sweep runs after the answer: wait for its outcome (expect.poll's default 1 s is short on a loaded machine).
    await expect.poll(unsent, { timeout: 10_000 }).toEqual([])
    expect(sent).toHaveLength(2)
  })
})

// Only this file's tables: other files running at the same time make theirs the same way.
afterAll(async () => {
  for (const table of outboxTables) await pool.query(`DROP TABLE IF EXISTS ${table}`)
})
