import { randomUUID } from 'node:crypto'
import { CloudEvent, HTTP } from 'cloudevents'
import { beforeAll, describe, expect, it } from 'vitest'
import { appDeps, call, testKeys, testPool } from '../../test/support.ts'
import { paymentApp } from './app.ts'

const pool = testPool()
let keys: Awaited<ReturnType<typeof testKeys>>
let app: ReturnType<typeof paymentApp>

beforeAll(async () => {
  keys = await testKeys()
  app = paymentApp({ pool, ...appDeps(), verify: keys.verify, publish: async () => {}, successRate: 0.5, delayMs: 0 })
})

/** A user with a token, and a payment of theirs made the way it is in production: by order.created. */
const signIn = async () => {
  const id = randomUUID()
  return { id, token: await keys.tokenFor({ id }) }
}
const pay = async (userId: string, total_cents = 1000) => {
  const order_id = randomUUID()
  const { headers, body } = HTTP.binary(
    new CloudEvent({ type: 'order.created', source: '/shop/order', id: randomUUID(), datacontenttype: 'application/json', data: { order_id, user_id: userId, total_cents, items: [] } }),
  )
  const res = await app.request('/events/order.created', {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)])),
    body: String(body),
  })
  expect(res.status).toBe(204)
  return order_id
}

const FIELDS = ['amount_cents', 'created_at', 'id', 'order_id', 'processed_at', 'reason', 'refunded_at', 'status', 'user_id']

describe('GET /api/payments', () => {
  it("lists the caller's payments only, newest first, with limit, offset and total", async () => {
    const me = await signIn()
    const other = await signIn()
    const first = await pay(me.id, 100)
    const second = await pay(me.id, 200)
    const third = await pay(me.id, 300)
    await pay(other.id)
    const res = await call(app, 'GET', '/api/payments?limit=2', { token: me.token })
    expect(res.status).toBe(200)
    expect(res.json).toMatchObject({ total: 3, limit: 2, offset: 0 })
    expect(res.json.items.map((p: { order_id: string }) => p.order_id)).toEqual([third, second])
    expect(Object.keys(res.json.items[0]).sort()).toEqual(FIELDS)
    const next = await call(app, 'GET', '/api/payments?limit=2&offset=2', { token: me.token })
    expect(next.json.items.map((p: { order_id: string }) => p.order_id)).toEqual([first])
  })

  it('answers 401 without a token and 400 for a bad page', async () => {
    const me = await signIn()
    expect((await call(app, 'GET', '/api/payments')).status).toBe(401)
    for (const query of ['limit=0', 'limit=101', 'offset=-1', 'sort=amount']) {
      expect((await call(app, 'GET', `/api/payments?${query}`, { token: me.token })).status).toBe(400)
    }
  })
})

describe('GET /api/payments/:orderId', () => {
  it("returns the caller's payment of that order, settled", async () => {
    const me = await signIn()
    const orderId = await pay(me.id, 4200)
    const res = await call(app, 'GET', `/api/payments/${orderId}`, { token: me.token })
    expect(res.status).toBe(200)
    expect(Object.keys(res.json).sort()).toEqual(FIELDS)
    expect(res.json).toMatchObject({ order_id: orderId, user_id: me.id, amount_cents: 4200 })
    expect(['succeeded', 'failed']).toContain(res.json.status)
    expect(res.json.processed_at).not.toBeNull()
  })

  it('finds the payment of an order named in upper case; a NUL or a stray byte is a 400, never a 500', async () => {
    const me = await signIn()
    const orderId = await pay(me.id)
    expect((await call(app, 'GET', `/api/payments/${orderId.toUpperCase()}`, { token: me.token })).json.order_id).toBe(orderId)
    for (const path of ['/api/payments/%00', '/api/payments/%FF', '/api/payments?limit=%00', '/api/payments?offset=%FF']) {
      const res = await call(app, 'GET', path, { token: me.token })
      expect(res.status, path).toBe(400)
      expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    }
  })

  it('does not show the decided outcome of a payment still pending', async () => {
    const me = await signIn()
    const orderId = randomUUID()
    await pool.query("INSERT INTO payment.payments (order_id, user_id, amount_cents, outcome) VALUES ($1, $2, 500, 'failed')", [orderId, me.id])
    const res = await call(app, 'GET', `/api/payments/${orderId}`, { token: me.token })
    expect(res.json).toMatchObject({ status: 'pending', reason: null, processed_at: null })
    expect(res.text).not.toContain('failed')
  })

  it("answers 404 for another user's payment and for none, 400 for a bad id, 401 without a token", async () => {
    const me = await signIn()
    const other = await signIn()
    const theirs = await pay(other.id)
    expect((await call(app, 'GET', `/api/payments/${theirs}`, { token: me.token })).status).toBe(404)
    expect((await call(app, 'GET', `/api/payments/${randomUUID()}`, { token: me.token })).status).toBe(404)
    expect((await call(app, 'GET', '/api/payments/not-a-uuid', { token: me.token })).status).toBe(400)
    expect((await call(app, 'GET', `/api/payments/${theirs}`)).status).toBe(401)
  })
})
