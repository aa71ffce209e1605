import { randomUUID } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import { CloudEvent, HTTP, type Message } from 'cloudevents'
import { beforeAll, describe, expect, it } from 'vitest'
import { createProductClient } from '../../shared/product-client.ts'
import { catalogFixture, type CatalogFixture } from '../../test/product-fixture.ts'
import { appDeps, call, testPool } from '../../test/support.ts'
import { cartApp } from './app.ts'

const pool = testPool()
let { keys, catalog, admin } = {} as CatalogFixture
let app: ReturnType<typeof cartApp>

beforeAll(async () => {
  ;({ keys, catalog, admin } = await catalogFixture(pool))
  // The real product function, in-process: the client's fetch is its app.request.
  const products = createProductClient({ baseUrl: 'http://product', fetch: async (url, init) => catalog.request(url, init) })
  app = cartApp({ pool, ...appDeps(), verify: keys.verify, products })
})

type Line = { product_id: string; quantity: number }

const newUser = async () => {
  const id = randomUUID()
  return { id, token: await keys.tokenFor({ id }) }
}
const newProduct = async () => {
  const res = await call(catalog, 'POST', '/api/products', { token: admin, body: { name: `Mug ${randomUUID().slice(0, 8)}`, price_cents: 1250 } })
  expect(res.status).toBe(201)
  return res.json.id as string
}
const cartOf = async (token: string) => {
  const res = await call(app, 'GET', '/api/cart', { token })
  expect(res.status).toBe(200)
  return res.json as { id: string; user_id: string; items: Line[]; updated_at: string }
}
const add = (token: string, product_id: string, quantity: number) => call(app, 'POST', '/api/cart/items', { token, body: { product_id, quantity } })
// Microseconds, which the JSON's milliseconds would blur.
const stamp = async (userId: string) =>
  (await pool.query<{ us: number }>('SELECT (extract(epoch FROM updated_at) * 1000000)::bigint AS us FROM cart.carts WHERE user_id = $1', [userId])).rows[0]?.us

describe('GET /api/cart', () => {
  it('creates the cart on first use and returns the same cart after', async () => {
    const user = await newUser()
    const first = await cartOf(user.token)
    expect(first).toEqual({ id: expect.any(String), user_id: user.id, items: [], updated_at: expect.any(String), lines: [], total_cents: 0 })
    expect((await cartOf(user.token)).id).toBe(first.id)
  })

  it('prices every line by the catalog now: name, unit price, line total, stock left, whether it can be bought, and the total', async () => {
    const user = await newUser()
    const [mug, pot, gone] = [await newProduct(), await newProduct(), await newProduct()]
    await add(user.token, mug, 2)
    await add(user.token, pot, 3)
    await add(user.token, gone, 1)
    // The price changes, pot runs short, gone leaves the catalog: the cart says so, as it is now.
    expect((await call(catalog, 'PATCH', `/api/products/${mug}`, { token: admin, body: { price_cents: 1000, stock: 5 } })).status).toBe(200)
    expect((await call(catalog, 'PATCH', `/api/products/${pot}`, { token: admin, body: { stock: 2 } })).status).toBe(200)
    expect((await call(catalog, 'DELETE', `/api/products/${gone}`, { token: admin })).status).toBe(204)
    const cart = (await cartOf(user.token)) as unknown as { items: Line[]; lines: Record<string, unknown>[]; total_cents: number }
    expect(cart.items).toEqual([{ product_id: mug, quantity: 2 }, { product_id: pot, quantity: 3 }, { product_id: gone, quantity: 1 }])
    expect(cart.lines).toEqual([
      { product_id: mug, quantity: 2, name: expect.stringMatching(/^Mug /), unit_price_cents: 1000, line_total_cents: 2000, stock: 5, purchasable: true },
      { product_id: pot, quantity: 3, name: expect.stringMatching(/^Mug /), unit_price_cents: 1250, line_total_cents: 3750, stock: 2, purchasable: false },
      { product_id: gone, quantity: 1, name: null, unit_price_cents: null, line_total_cents: null, stock: 0, purchasable: false },
    ])
    expect(cart.total_cents).toBe(5750)
  })

  it('answers 503 when the product function cannot price the lines', async () => {
    const user = await newUser()
    await add(user.token, await newProduct(), 1)
    const down = createProductClient({ baseUrl: 'http://product', fetch: async () => Promise.reject(new Error('connection refused')) })
    const blind = cartApp({ pool, ...appDeps(), verify: keys.verify, products: down })
    const res = await call(blind, 'GET', '/api/cart', { token: user.token })
    expect(res.status).toBe(503)
    expect(res.headers.get('Retry-After')).toBeTruthy()
  })

  it('makes one cart when two first requests arrive at once', async () => {
    const user = await newUser()
    const [a, b] = await Promise.all([cartOf(user.token), cartOf(user.token)])
    expect(a.id).toBe(b.id)
  })

  it('answers 401 without a token and 403 for an X-User-ID that is not the token\'s', async () => {
    const user = await newUser()
    const none = await call(app, 'GET', '/api/cart')
    expect(none.status).toBe(401)
    expect(none.headers.get('Content-Type')).toBe('application/problem+json')
    expect((await call(app, 'POST', '/api/cart/items', { body: { product_id: randomUUID(), quantity: 1 } })).status).toBe(401)
    expect((await call(app, 'DELETE', '/api/cart')).status).toBe(401)
    const forged = await call(app, 'GET', '/api/cart', { token: user.token, headers: { 'X-User-ID': randomUUID() } })
    expect(forged.status).toBe(403)
    expect((await call(app, 'DELETE', '/api/cart', { token: user.token, headers: { 'X-User-ID': randomUUID() } })).status).toBe(403)
    expect((await call(app, 'GET', '/api/cart', { token: user.token, headers: { 'X-User-ID': user.id } })).json.user_id).toBe(user.id)
  })
})

describe('POST /api/cart/items', () => {
  it('adds a line, then adds to it, listing lines in the order they were added', async () => {
    const user = await newUser()
    const [mug, pot] = [await newProduct(), await newProduct()]
    expect((await add(user.token, mug, 2)).json.items).toEqual([{ product_id: mug, quantity: 2 }])
    await add(user.token, pot, 1)
    const res = await add(user.token, mug, 3)
    expect(res.status).toBe(200)
    expect(res.json).toMatchObject({ user_id: user.id, items: [{ product_id: mug, quantity: 5 }, { product_id: pot, quantity: 1 }] })
  })

  it('answers 409 when the sum would pass 999, and changes nothing', async () => {
    const user = await newUser()
    const mug = await newProduct()
    await add(user.token, mug, 990)
    const before = await stamp(user.id)
    const res = await add(user.token, mug, 10)
    expect(res.status).toBe(409)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.json.detail).toMatch(/990.*999/)
    expect(await stamp(user.id)).toBe(before)
    expect((await add(user.token, mug, 9)).json.items).toEqual([{ product_id: mug, quantity: 999 }])
  })

  it.each([
    [{ quantity: 0 }, 'quantity'],
    [{ quantity: 1000 }, 'quantity'],
    [{ quantity: 1.5 }, 'quantity'],
    [{ quantity: '2' }, 'quantity'],
    [{ quantity: -1 }, 'quantity'],
    [{ quantity: null }, 'quantity'],
    [{ quantity: undefined }, 'quantity'],
    [{ product_id: 'not-a-uuid' }, 'product_id'],
    [{ product_id: "1' OR '1'='1" }, 'product_id'],
    [{ product_id: undefined }, 'product_id'],
    [{ price_cents: 1 }, 'price_cents'],
  ])('answers 400 problem+json naming the field for %j', async (change, field) => {
    const user = await newUser()
    const res = await call(app, 'POST', '/api/cart/items', { token: user.token, body: { product_id: await newProduct(), quantity: 1, ...change } })
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.json.errors.map((e: { path: string }) => e.path)).toContain(field)
    expect((await cartOf(user.token)).items).toEqual([])
  })

  it('says "is required" for a missing field and "is not a known field" only for an extra one', async () => {
    const user = await newUser()
    const mug = await newProduct()
    const res = await call(app, 'POST', '/api/cart/items', { token: user.token, body: { product_id: mug } })
    expect(res.status).toBe(400)
    expect(res.json.errors).toEqual([{ path: 'quantity', message: 'is required' }])
    const none = await call(app, 'POST', '/api/cart/items', { token: user.token, body: {} })
    expect(none.json.errors).toEqual([
      { path: 'product_id', message: 'is required' },
      { path: 'quantity', message: 'is required' },
    ])
    const extra = await call(app, 'POST', '/api/cart/items', { token: user.token, body: { product_id: mug, quantity: 1, note: 'gift' } })
    expect(extra.json.errors).toEqual([{ path: 'note', message: 'is not a known field' }])
    const put = await call(app, 'PUT', `/api/cart/items/${mug}`, { token: user.token, body: {} })
    expect(put.json.errors).toEqual([{ path: 'quantity', message: 'is required' }])
  })

  it('keeps one line for one product, whatever the case of its id', async () => {
    const user = await newUser()
    const mug = await newProduct()
    expect((await add(user.token, mug.toUpperCase(), 2)).status).toBe(200)
    expect((await add(user.token, mug, 1)).json.items).toEqual([{ product_id: mug, quantity: 3 }])
    const put = await call(app, 'PUT', `/api/cart/items/${mug.toUpperCase()}`, { token: user.token, body: { quantity: 5 } })
    expect(put.json.items).toEqual([{ product_id: mug, quantity: 5 }])
    expect((await call(app, 'DELETE', `/api/cart/items/${mug.toUpperCase()}`, { token: user.token })).json.items).toEqual([])
  })

  it('answers 422 for a product that does not exist', async () => {
    const user = await newUser()
    const res = await add(user.token, randomUUID(), 1)
    expect(res.status).toBe(422)
    expect(res.json.detail).toMatch(/no such product/)
    expect((await cartOf(user.token)).items).toEqual([])
  })

  it('answers 503 when the product function does not answer', async () => {
    // A port this test keeps, whose every connection is dropped: a port closed again could be
    // taken meanwhile by another test's server, which would answer.
    const server = createServer((socket) => socket.destroy())
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const offline = cartApp({ pool, ...appDeps(), verify: keys.verify, products: createProductClient({ baseUrl: `http://127.0.0.1:${port}` }) })
    const user = await newUser()
    const res = await call(offline, 'POST', '/api/cart/items', { token: user.token, body: { product_id: randomUUID(), quantity: 1 } }).finally(() => server.close())
    expect(res.status).toBe(503)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect((await cartOf(user.token)).items).toEqual([])
  })
})

describe('PUT /api/cart/items/:productId', () => {
  it('sets a line, creating it', async () => {
    const user = await newUser()
    const mug = await newProduct()
    const created = await call(app, 'PUT', `/api/cart/items/${mug}`, { token: user.token, body: { quantity: 4 } })
    expect(created.status).toBe(200)
    expect(created.json.items).toEqual([{ product_id: mug, quantity: 4 }])
    const set = await call(app, 'PUT', `/api/cart/items/${mug}`, { token: user.token, body: { quantity: 999 } })
    expect(set.json.items).toEqual([{ product_id: mug, quantity: 999 }])
  })

  it('answers 422 for a product that does not exist, 400 for a bad quantity or id', async () => {
    const user = await newUser()
    const mug = await newProduct()
    expect((await call(app, 'PUT', `/api/cart/items/${randomUUID()}`, { token: user.token, body: { quantity: 1 } })).status).toBe(422)
    for (const body of [{ quantity: 0 }, { quantity: 1000 }, { quantity: 1.5 }, { quantity: '2' }, { quantity: -3 }, {}, { quantity: 1, product_id: mug }]) {
      expect((await call(app, 'PUT', `/api/cart/items/${mug}`, { token: user.token, body })).status).toBe(400)
    }
    expect((await call(app, 'PUT', '/api/cart/items/not-a-uuid', { token: user.token, body: { quantity: 1 } })).status).toBe(400)
    expect((await cartOf(user.token)).items).toEqual([])
  })
})

describe('DELETE /api/cart/items/:productId', () => {
  it('removes a line, and answers 404 for a product not in the cart', async () => {
    const user = await newUser()
    const [mug, pot] = [await newProduct(), await newProduct()]
    await add(user.token, mug, 1)
    await add(user.token, pot, 2)
    const res = await call(app, 'DELETE', `/api/cart/items/${mug}`, { token: user.token })
    expect(res.status).toBe(200)
    expect(res.json.items).toEqual([{ product_id: pot, quantity: 2 }])
    const again = await call(app, 'DELETE', `/api/cart/items/${mug}`, { token: user.token })
    expect(again.status).toBe(404)
    expect(again.headers.get('Content-Type')).toBe('application/problem+json')
  })

  it.each([['not-a-uuid'], ["1' OR '1'='1"], ["x'; DROP TABLE cart.carts; --"], ['1 OR 1=1']])('answers 400 for the path %j', async (id) => {
    const user = await newUser()
    const res = await call(app, 'DELETE', `/api/cart/items/${encodeURIComponent(id)}`, { token: user.token })
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
  })
})

describe("another user's cart", () => {
  it('is never touched: B deleting or setting A\'s line works on B\'s own cart only', async () => {
    const [a, b] = [await newUser(), await newUser()]
    const mug = await newProduct()
    await add(a.token, mug, 3)
    expect((await call(app, 'DELETE', `/api/cart/items/${mug}`, { token: b.token })).status).toBe(404)
    const put = await call(app, 'PUT', `/api/cart/items/${mug}`, { token: b.token, body: { quantity: 7 } })
    expect(put.json).toMatchObject({ user_id: b.id, items: [{ product_id: mug, quantity: 7 }] })
    expect((await call(app, 'DELETE', '/api/cart', { token: b.token })).status).toBe(204)
    expect(await cartOf(a.token)).toMatchObject({ user_id: a.id, items: [{ product_id: mug, quantity: 3 }] })
    expect((await cartOf(b.token)).items).toEqual([])
  })
})

describe('DELETE /api/cart', () => {
  it('empties the cart, which stays the same cart', async () => {
    const user = await newUser()
    await add(user.token, await newProduct(), 1)
    await add(user.token, await newProduct(), 2)
    const { id } = await cartOf(user.token)
    const res = await call(app, 'DELETE', '/api/cart', { token: user.token })
    expect(res.status).toBe(204)
    expect(res.text).toBe('')
    expect(await cartOf(user.token)).toMatchObject({ id, items: [] })
  })

  it('bumps updated_at on every change, and not on a refused one', async () => {
    const user = await newUser()
    const mug = await newProduct()
    await cartOf(user.token)
    const stamps = [await stamp(user.id)]
    const changes = [
      () => add(user.token, mug, 1),
      () => call(app, 'PUT', `/api/cart/items/${mug}`, { token: user.token, body: { quantity: 5 } }),
      () => call(app, 'DELETE', `/api/cart/items/${mug}`, { token: user.token }),
      () => call(app, 'DELETE', '/api/cart', { token: user.token }),
    ]
    for (const change of changes) {
      expect((await change()).status).toBeLessThan(300)
      stamps.push(await stamp(user.id))
    }
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]).toBeGreaterThan(stamps[i - 1]!)
    expect((await call(app, 'DELETE', `/api/cart/items/${mug}`, { token: user.token })).status).toBe(404)
    expect(await stamp(user.id)).toBe(stamps.at(-1))
  })
})

describe('POST /events/order.created', () => {
  const orderCreated = (data: unknown, id: string = randomUUID()) =>
    new CloudEvent({ type: 'order.created', source: '/shop/order', id, datacontenttype: 'application/json', data })
  const post = ({ headers, body }: Message) =>
    app.request('/events/order.created', { method: 'POST', headers: headers as Record<string, string>, body: body as string })
  const deliver = (event: CloudEvent<unknown>) => post(HTTP.binary(event))

  const received = async (outcome: string) => {
    const text = await (await app.request('/metrics')).text()
    const line = text.split('\n').find((l) => l.startsWith('events_received_total{') && l.includes('type="order.created"') && l.includes(`outcome="${outcome}"`))
    return line ? Number(line.split(' ').at(-1)) : 0
  }

  // A cart of mug 5, pot 2, cup 1; an order of mug 1+2 (two lines), pot 2, and a product not in the cart.
  const cartAndOrder = async () => {
    const user = await newUser()
    const [mug, pot, cup] = [await newProduct(), await newProduct(), await newProduct()]
    await add(user.token, mug, 5)
    await add(user.token, pot, 2)
    await add(user.token, cup, 1)
    const data = {
      order_id: randomUUID(),
      user_id: user.id,
      items: [
        { product_id: mug, quantity: 1, unit_price_cents: 1250 },
        { product_id: pot, quantity: 2, unit_price_cents: 1250 },
        { product_id: randomUUID(), quantity: 4, unit_price_cents: 100 },
        { product_id: mug, quantity: 2, unit_price_cents: 1250 },
      ],
      total_cents: 6650,
      created_at: new Date().toISOString(),
    }
    const after = [{ product_id: mug, quantity: 2 }, { product_id: cup, quantity: 1 }]
    return { user, data, after }
  }

  it('takes the ordered quantities out of the cart once when the event arrives 3 times', async () => {
    const { user, data, after } = await cartAndOrder()
    const [handled, duplicate] = [await received('handled'), await received('duplicate')]
    for (let i = 0; i < 3; i++) {
      const res = await deliver(orderCreated(data))
      expect(res.status).toBe(204)
      expect(await res.text()).toBe('')
      expect((await cartOf(user.token)).items).toEqual(after)
    }
    expect(await received('handled')).toBe(handled + 1)
    expect(await received('duplicate')).toBe(duplicate + 2)
  })

  it('takes them out once when the event arrives 3 times at once', async () => {
    const { user, data, after } = await cartAndOrder()
    const answers = await Promise.all([1, 2, 3].map(() => deliver(orderCreated(data))))
    expect(answers.map((r) => r.status)).toEqual([204, 204, 204])
    expect((await cartOf(user.token)).items).toEqual(after)
  })

  it('takes structured-mode events too', async () => {
    const { user, data, after } = await cartAndOrder()
    expect((await post(HTTP.structured(orderCreated(data)))).status).toBe(204)
    expect((await cartOf(user.token)).items).toEqual(after)
  })

  it('answers 204 for a user without a cart, and makes none', async () => {
    const userId = randomUUID()
    const res = await deliver(orderCreated({ order_id: randomUUID(), user_id: userId, items: [{ product_id: randomUUID(), quantity: 1 }] }))
    expect(res.status).toBe(204)
    expect(await stamp(userId)).toBeUndefined()
  })

  it('rejects malformed events with 400/422, counts them, and changes nothing', async () => {
    const { user, data } = await cartAndOrder()
    const before = await cartOf(user.token)
    const rejected = await received('rejected')
    const withData = (change: Record<string, unknown>) => orderCreated({ ...data, ...change })
    const line = data.items[0]!
    const events: [Message, number][] = [
      [HTTP.binary(withData({ order_id: undefined })), 422],
      [HTTP.binary(withData({ user_id: undefined })), 422],
      [HTTP.binary(withData({ items: undefined })), 422],
      [HTTP.binary(withData({ items: [] })), 422],
      [HTTP.binary(withData({ order_id: 'not-a-uuid' })), 422],
      [HTTP.binary(withData({ user_id: 42 })), 422],
      [HTTP.binary(withData({ items: 'mug' })), 422],
      [HTTP.binary(withData({ items: [{ ...line, quantity: '2' }] })), 422],
      [HTTP.binary(withData({ items: [{ ...line, quantity: 0 }] })), 422],
      [HTTP.binary(withData({ items: [{ ...line, quantity: 1.5 }] })), 422],
      [HTTP.binary(withData({ items: [{ quantity: 1 }] })), 422],
      [HTTP.binary(new CloudEvent({ type: 'order.cancelled', source: '/shop/order', datacontenttype: 'application/json', data })), 400],
      [{ headers: { 'content-type': 'application/json' }, body: JSON.stringify(data) }, 400],
      [{ headers: { 'content-type': 'text/plain' }, body: 'hello' }, 400],
      [{ headers: { 'content-type': 'application/cloudevents+json' }, body: '{"specversion": "1.0", "data":' }, 400],
    ]
    for (const [message, status] of events) {
      const res = await post(message)
      expect(res.status, JSON.stringify(message.headers)).toBe(status)
      expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    }
    expect(await received('rejected')).toBe(rejected + events.length)
    expect(await cartOf(user.token)).toEqual(before)
    expect((await pool.query('SELECT 1 FROM cart.orders WHERE order_id = $1', [data.order_id])).rowCount).toBe(0)
    // The one valid event still does its work afterwards.
    expect((await deliver(orderCreated(data))).status).toBe(204)
    expect((await cartOf(user.token)).items).not.toEqual(before.items)
  })
})
