import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { appDeps, call, testKeys, testPool } from '../../test/support.ts'
import { productApp } from './app.ts'

const pool = testPool(10)
let keys: Awaited<ReturnType<typeof testKeys>>
let app: ReturnType<typeof productApp>
let admin: string

beforeAll(async () => {
  keys = await testKeys()
  app = productApp({ pool, ...appDeps(), verify: keys.verify })
  admin = await keys.tokenFor({ role: 'admin' })
})

type Line = { product_id: string; quantity: number }

const create = async (stock: number, price_cents = 700) => {
  const res = await call(app, 'POST', '/api/products', { token: admin, body: { name: `Cup ${randomUUID().slice(0, 6)}`, price_cents, stock } })
  expect(res.status).toBe(201)
  return res.json as { id: string; name: string; price_cents: number }
}
const reserve = (items: Line[], { order_id = randomUUID(), user_id = randomUUID(), via = app } = {}) =>
  call(via, 'POST', '/internal/reservations', { body: { order_id, user_id, items } })
const stockOf = async (id: string) => (await pool.query<{ stock: number }>('SELECT stock FROM product.products WHERE id = $1', [id])).rows[0]!.stock
const stored = async (orderId: string) =>
  (await pool.query<{ status: string; release_reason: string | null }>('SELECT status, release_reason FROM product.reservations WHERE order_id = $1', [orderId])).rows[0]
/** Moves a hold's expiry into the past: what the clock would do after RESERVATION_TTL_S. */
const outlive = (orderId: string) => pool.query(`UPDATE product.reservations SET expires_at = now() - interval '1 second' WHERE order_id = $1`, [orderId])
const expire = () => call(app, 'POST', '/internal/reservations/expire')

describe('POST /internal/reservations', () => {
  it('takes every line at once and answers 201 with each line named and priced', async () => {
    const [a, b] = [await create(5, 250), await create(3, 1999)]
    const order_id = randomUUID()
    const res = await reserve([{ product_id: b.id, quantity: 3 }, { product_id: a.id, quantity: 2 }], { order_id })
    expect(res.status).toBe(201)
    expect(res.json).toMatchObject({ order_id, status: 'held' })
    expect(new Date(res.json.expires_at).getTime()).not.toBeNaN()
    expect(res.json.items).toHaveLength(2)
    expect(res.json.items).toContainEqual({ product_id: a.id, name: a.name, quantity: 2, unit_price_cents: 250 })
    expect(res.json.items).toContainEqual({ product_id: b.id, name: b.name, quantity: 3, unit_price_cents: 1999 })
    expect([await stockOf(a.id), await stockOf(b.id)]).toEqual([3, 0])
  })

  it('is idempotent per order id: the same body again answers 200 with the same body and takes nothing', async () => {
    const p = await create(10)
    const order_id = randomUUID()
    const user_id = randomUUID()
    const first = await reserve([{ product_id: p.id, quantity: 4 }], { order_id, user_id })
    const again = await reserve([{ product_id: p.id.toUpperCase(), quantity: 4 }], { order_id, user_id })
    expect([first.status, again.status]).toEqual([201, 200])
    expect(again.json).toEqual(first.json)
    expect(await stockOf(p.id)).toBe(6)
  })

  it('takes once for one order id reserved five times at once', async () => {
    const p = await create(10)
    const order_id = randomUUID()
    const user_id = randomUUID()
    const answers = await Promise.all(Array.from({ length: 5 }, () => reserve([{ product_id: p.id, quantity: 3 }], { order_id, user_id })))
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 201])
    expect(await stockOf(p.id)).toBe(7)
  })

  it('takes nothing when any line is short, and lists every short line in unavailable', async () => {
    const [a, b, c] = [await create(5), await create(1), await create(0)]
    const order_id = randomUUID()
    const res = await reserve(
      [{ product_id: a.id, quantity: 2 }, { product_id: b.id, quantity: 2 }, { product_id: c.id, quantity: 1 }],
      { order_id },
    )
    expect(res.status).toBe(409)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.json.type).toMatch(/\/out-of-stock$/)
    expect(res.json.title).toBe('Out of Stock')
    expect(res.json.unavailable).toHaveLength(2)
    expect(res.json.unavailable).toContainEqual({ product_id: b.id, requested: 2, available: 1 })
    expect(res.json.unavailable).toContainEqual({ product_id: c.id, requested: 1, available: 0 })
    expect([await stockOf(a.id), await stockOf(b.id), await stockOf(c.id)]).toEqual([5, 1, 0])
    expect(await stored(order_id)).toBeUndefined()
    // Nothing was recorded, so the same order id may try again once there is stock.
    await call(app, 'POST', `/api/products/${b.id}/stock`, { token: admin, body: { delta: 1 } })
    await call(app, 'POST', `/api/products/${c.id}/stock`, { token: admin, body: { delta: 1 } })
    expect((await reserve([{ product_id: a.id, quantity: 2 }, { product_id: b.id, quantity: 2 }, { product_id: c.id, quantity: 1 }], { order_id })).status).toBe(201)
  })

  it('answers 422 naming an unknown product, and takes nothing', async () => {
    const p = await create(5)
    const missing = randomUUID()
    const res = await reserve([{ product_id: p.id, quantity: 1 }, { product_id: missing, quantity: 1 }])
    expect(res.status).toBe(422)
    expect(res.json.type).toMatch(/\/unknown-product$/)
    expect(res.json.errors).toEqual([{ path: 'items.1.product_id', message: `no product ${missing}` }])
    expect(await stockOf(p.id)).toBe(5)
  })

  it('answers 422 for an order id reserved with other lines or for another user, and takes nothing more', async () => {
    const p = await create(10)
    const order_id = randomUUID()
    const user_id = randomUUID()
    await reserve([{ product_id: p.id, quantity: 1 }], { order_id, user_id })
    for (const res of [
      await reserve([{ product_id: p.id, quantity: 2 }], { order_id, user_id }),
      await reserve([{ product_id: p.id, quantity: 1 }], { order_id, user_id: randomUUID() }),
    ]) {
      expect(res.status).toBe(422)
      expect(res.json.type).toMatch(/\/reservation-mismatch$/)
    }
    expect(await stockOf(p.id)).toBe(9)
  })

  it.each([
    ['no lines', { items: [] }],
    ['a product twice', { items: [{ product_id: 'P', quantity: 1 }, { product_id: 'P', quantity: 1 }] }],
    ['quantity 0', { items: [{ product_id: 'P', quantity: 0 }] }],
    ['a fractional quantity', { items: [{ product_id: 'P', quantity: 1.5 }] }],
    ['a bad order id', { order_id: 'nope' }],
    ['a client-sent price', { items: [{ product_id: 'P', quantity: 1, unit_price_cents: 1 }] }],
    ['an unknown field', { status: 'confirmed' }],
  ])('answers 400 for %s', async (_case, patch) => {
    const p = await create(5)
    const body = { order_id: randomUUID(), user_id: randomUUID(), items: [{ product_id: p.id, quantity: 1 }], ...patch }
    const res = await call(app, 'POST', '/internal/reservations', { body: JSON.parse(JSON.stringify(body).replaceAll('"P"', `"${p.id}"`)) })
    expect(res.status).toBe(400)
    expect(await stockOf(p.id)).toBe(5)
  })

  it('answers 400 "must name each product once" for one product in lower and upper case, not 500', async () => {
    const p = await create(5)
    const items = [{ product_id: p.id, quantity: 1 }, { product_id: p.id.toUpperCase(), quantity: 1 }]
    const res = await call(app, 'POST', '/internal/reservations', { body: { order_id: randomUUID(), user_id: randomUUID(), items } })
    expect(res.status).toBe(400)
    expect(res.json.errors).toEqual([{ path: 'items', message: 'must name each product once' }])
    expect(await stockOf(p.id)).toBe(5)
  })

  it('says "is required" for each missing field', async () => {
    const res = await call(app, 'POST', '/internal/reservations', { body: { items: [{ quantity: 1 }] } })
    expect(res.json.errors).toEqual([
      { path: 'order_id', message: 'is required' },
      { path: 'user_id', message: 'is required' },
      { path: 'items.0.product_id', message: 'is required' },
    ])
  })
})

describe('expiry of holds nothing confirmed', () => {
  it('gives the units back after the TTL, once, and the order id takes nothing again', async () => {
    const p = await create(4)
    const order_id = randomUUID()
    const user_id = randomUUID()
    await reserve([{ product_id: p.id, quantity: 3 }], { order_id, user_id })
    await expire()
    expect(await stockOf(p.id)).toBe(1) // not expired yet: nothing comes back
    await outlive(order_id)
    expect((await expire()).status).toBe(200)
    await expire()
    expect(await stockOf(p.id)).toBe(4)
    expect(await stored(order_id)).toEqual({ status: 'released', release_reason: 'hold_expired' })
    const late = await reserve([{ product_id: p.id, quantity: 3 }], { order_id, user_id })
    expect(late.status).toBe(409)
    expect(late.json.type).toMatch(/\/reservation-released$/)
    expect(await stockOf(p.id)).toBe(4)
  })

  it('uses the TTL the app was given', async () => {
    const instant = productApp({ pool, ...appDeps(), verify: keys.verify, reservationTtlSeconds: 0, expirySweepIntervalMs: 0 })
    const p = await create(2)
    const order_id = randomUUID()
    expect((await reserve([{ product_id: p.id, quantity: 2 }], { order_id, via: instant })).status).toBe(201)
    await call(instant, 'POST', '/internal/reservations/expire')
    expect(await stockOf(p.id)).toBe(2)
    expect((await stored(order_id))?.status).toBe('released')
  })

  it('sweeps on its own when reserves come in, without the PingSource', async () => {
    const sweeping = productApp({ pool, ...appDeps(), verify: keys.verify, expirySweepIntervalMs: 1 })
    const p = await create(3)
    const order_id = randomUUID()
    await reserve([{ product_id: p.id, quantity: 3 }], { order_id, via: sweeping })
    await outlive(order_id)
    const other = await create(1)
    await reserve([{ product_id: other.id, quantity: 1 }], { via: sweeping })
    await expect.poll(() => stockOf(p.id), { timeout: 10_000 }).toBe(3)
  })

  it('keeps every unit accounted for when sweeps run at once', async () => {
    const p = await create(20)
    const orders = Array.from({ length: 20 }, () => randomUUID())
    for (const order_id of orders) await reserve([{ product_id: p.id, quantity: 1 }], { order_id })
    expect(await stockOf(p.id)).toBe(0)
    for (const order_id of orders) await outlive(order_id)
    await Promise.all([expire(), expire(), expire()])
    expect(await stockOf(p.id)).toBe(20)
  })
})
