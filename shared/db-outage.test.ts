/**
 * The database out of reach, as the functions see it. While PostgreSQL cannot be reached every
 * route and every event route answers 503 problem+json with `Retry-After` (never a 500), and once
 * it is back the same app serves again: no new app, no new pool, no restart. A backend terminated
 * in the middle of a transaction fails that request with 503, a retry succeeds, and nothing ends
 * the process (vitest fails the run on an uncaught exception). PostgreSQL is played by a TCP proxy
 * this file owns in front of the test database; only its own connections are ever terminated.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import * as v from 'valibot'
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest'
import { cartApp } from '../functions/cart/app.ts'
import { productApp } from '../functions/product/app.ts'
import { startDatabaseProxy, type ProxyMode } from '../test/db-proxy.ts'
import { call, fetchVia, postEvent, testKeys, testPool } from '../test/support.ts'
import { createPool, isDatabaseUnavailable, withTransaction, type Pool } from './db.ts'
import { onEvent } from './events.ts'
import { createApp } from './http.ts'
import { createLogger } from './log.ts'
import { createMetrics } from './metrics.ts'
import { createProductClient } from './product-client.ts'

/** The test's own connections, to look at and terminate the shop's backends. */
const admin = testPool(2)
let keys: Awaited<ReturnType<typeof testKeys>>
let adminToken: string

beforeAll(async () => {
  keys = await testKeys()
  adminToken = await keys.tokenFor({ role: 'admin' })
})

/** A patient wait for a condition, never for a time. */
const waitFor = <T>(check: () => T | Promise<T>, timeout = 30_000) => vi.waitFor(check, { timeout, interval: 50 })

type LogLine = { msg: string; level: string; err?: { code?: string; message?: string } }
type Answer = { status: number; headers: Headers; text: string }

/**
 * The product and cart functions in-process, each on a pool of its own through one proxy in front
 * of the test database (cart asks product through its app), with a log the test reads. Connection
 * waits and statements are bounded tighter than the defaults, so an outage shows within a second.
 */
async function startShop(label: string, { max = 5 } = {}) {
  const proxy = await startDatabaseProxy(inject('databaseUrl'))
  const lines: LogLine[] = []
  const log = createLogger({ name: label, level: 'warn', write: (line) => lines.push(JSON.parse(line) as LogLine) })
  const names = { product: `outage-${label}-product-${randomUUID().slice(0, 8)}`, cart: `outage-${label}-cart-${randomUUID().slice(0, 8)}` }
  const pool = (applicationName: string) =>
    createPool({ connectionString: proxy.url, applicationName, log, max, connectionTimeoutMs: 500, statementTimeoutMs: 1_000 })
  const pools = { product: pool(names.product), cart: pool(names.cart) }
  const product = productApp({ pool: pools.product, log, metrics: createMetrics({ defaults: false }), verify: keys.verify, expirySweepIntervalMs: 0 })
  const products = createProductClient({ baseUrl: 'http://product', fetch: fetchVia(product) })
  const cart = cartApp({ pool: pools.cart, log, metrics: createMetrics({ defaults: false }), verify: keys.verify, products })
  const stop = async () => {
    await proxy.setMode('forward')
    await Promise.all([pools.product.end(), pools.cart.end()])
    await proxy.close()
  }
  const created = await call(product, 'POST', '/api/products', { token: adminToken, body: { name: `Kettle ${label}`, price_cents: 1250, stock: 1_000_000 } })
  expect(created.status).toBe(201)
  return { proxy, lines, names, pools, product, cart, stop, productId: created.json.id as string }
}

type Shop = Awaited<ReturnType<typeof startShop>>
type Route = { name: string; ok: number; send: () => Promise<Answer> }

/** Every route of both functions that needs the database, and the status each answers when it is up. */
function routesOf({ product, cart, productId }: Shop): Route[] {
  const asAdmin = (method: string, path: string, body?: unknown) => () => call(product, method, path, { token: adminToken, ...(body ? { body } : {}) })
  const asNewUser = (method: string, path: string, body?: unknown) => async () =>
    call(cart, method, path, { token: await keys.tokenFor({ id: randomUUID() }), ...(body ? { body } : {}) })
  const event = (app: Parameters<typeof postEvent>[0], type: string, data: () => unknown) => () =>
    postEvent(app, `/events/${type}`, { type, source: '/shop/test', data: data() })
  const order = () => ({ order_id: randomUUID(), user_id: randomUUID() })
  return [
    { name: 'product GET /healthz', ok: 200, send: () => call(product, 'GET', '/healthz') },
    { name: 'GET /api/products', ok: 200, send: () => call(product, 'GET', '/api/products?limit=5') },
    { name: 'GET /api/products/:id', ok: 200, send: () => call(product, 'GET', `/api/products/${productId}`) },
    { name: 'POST /api/products', ok: 201, send: asAdmin('POST', '/api/products', { name: 'Spare kettle', price_cents: 990 }) },
    { name: 'PUT /api/products/:id', ok: 200, send: asAdmin('PUT', `/api/products/${productId}`, { name: 'Kettle', description: '', price_cents: 1250, stock: 1_000_000 }) },
    { name: 'PATCH /api/products/:id', ok: 200, send: asAdmin('PATCH', `/api/products/${productId}`, { price_cents: 1250 }) },
    { name: 'DELETE /api/products/:id', ok: 404, send: asAdmin('DELETE', `/api/products/${randomUUID()}`) },
    { name: 'POST /api/products/:id/stock', ok: 200, send: asAdmin('POST', `/api/products/${productId}/stock`, { delta: 1 }) },
    {
      name: 'POST /internal/reservations',
      ok: 201,
      send: () => call(product, 'POST', '/internal/reservations', { body: { ...order(), items: [{ product_id: productId, quantity: 1 }] } }),
    },
    { name: 'POST /internal/reservations/expire', ok: 200, send: () => call(product, 'POST', '/internal/reservations/expire') },
    { name: 'product /events/order.cancelled', ok: 204, send: event(product, 'order.cancelled', () => ({ ...order(), reason: 'cancelled' })) },
    { name: 'product /events/payment.status', ok: 204, send: event(product, 'payment.status', () => ({ ...order(), status: 'failed' })) },
    { name: 'cart GET /healthz', ok: 200, send: () => call(cart, 'GET', '/healthz') },
    { name: 'GET /api/cart', ok: 200, send: asNewUser('GET', '/api/cart') },
    { name: 'DELETE /api/cart', ok: 204, send: asNewUser('DELETE', '/api/cart') },
    { name: 'POST /api/cart/items', ok: 200, send: asNewUser('POST', '/api/cart/items', { product_id: productId, quantity: 1 }) },
    { name: 'PUT /api/cart/items/:productId', ok: 200, send: asNewUser('PUT', `/api/cart/items/${productId}`, { quantity: 2 }) },
    { name: 'DELETE /api/cart/items/:productId', ok: 404, send: asNewUser('DELETE', `/api/cart/items/${productId}`) },
    {
      name: 'cart /events/order.created',
      ok: 204,
      send: event(cart, 'order.created', () => ({ ...order(), items: [{ product_id: productId, quantity: 1, unit_price_cents: 1250 }] })),
    },
    { name: 'cart /events/order.cancelled', ok: 204, send: event(cart, 'order.cancelled', () => ({ ...order(), reason: 'cancelled' })) },
    { name: 'cart /events/payment.status', ok: 204, send: event(cart, 'payment.status', () => ({ ...order(), status: 'failed' })) },
  ]
}

/** What a 503 must be: problem+json that says 503, with a `Retry-After` of whole seconds. */
function expectRetryLater(route: string, answer: Answer) {
  expect({ route, status: answer.status }).toEqual({ route, status: 503 })
  expect(answer.headers.get('Content-Type')).toBe('application/problem+json')
  expect(answer.headers.get('Retry-After')).toMatch(/^[1-9]\d*$/)
  expect(JSON.parse(answer.text)).toMatchObject({ status: 503, title: 'Service Unavailable' })
}

const unavailableLines = (lines: LogLine[]) =>
  lines.filter((l) => l.msg === 'database unavailable' || l.msg.startsWith('event deferred: the database cannot be reached'))

describe('PostgreSQL unreachable for 20 s under load', () => {
  let shop: Shop
  beforeAll(async () => {
    shop = await startShop('load')
  })
  afterAll(() => shop?.stop())

  it('answers 503 with Retry-After on every route, never a 500, then serves again with the same app', async () => {
    const routes = routesOf(shop)
    // Where the outage is when a request starts and ends: 0 before, 1..3 its modes, 4 after.
    let phase = 0
    const answers: { route: string; ok: number; from: number; to: number; answer: Answer }[] = []
    let loading = true
    const worker = async () => {
      while (loading) {
        const route = routes[Math.floor(Math.random() * routes.length)]!
        const from = phase
        const answer = await route.send()
        answers.push({ route: route.name, ok: route.ok, from, to: phase, answer })
      }
    }
    const workers = Array.from({ length: 16 }, worker)

    // Up: every route answers as it should (which also checks the routes themselves).
    await waitFor(() => expect(new Set(answers.filter((a) => a.answer.status === a.ok).map((a) => a.route))).toEqual(new Set(routes.map((r) => r.name))))

    // Down for 20 s, three ways a database goes away; every route is asked once more in each.
    const outage: [ProxyMode, number][] = [['refuse', 7_000], ['reset', 6_000], ['blackhole', 7_000]]
    for (const [mode, ms] of outage) {
      await shop.proxy.setMode(mode)
      phase++
      const swept = await Promise.all(routes.map(async (r) => [r.name, await r.send()] as const))
      for (const [name, answer] of swept) expectRetryLater(name, answer)
      await sleep(ms)
    }

    // Back: the same apps serve again once their pools have made new connections.
    await shop.proxy.setMode('forward')
    phase++
    await waitFor(async () => {
      for (const r of routes) expect({ route: r.name, status: (await r.send()).status }).toEqual({ route: r.name, status: r.ok })
    })
    loading = false
    await Promise.all(workers)

    // Nothing but the right answer or 503, and every 503 says when to come back.
    const wrong = answers.filter((a) => a.answer.status !== a.ok && a.answer.status !== 503)
    expect(wrong.map((a) => `${a.route}: ${a.answer.status} ${a.answer.text.slice(0, 200)}`)).toEqual([])
    for (const a of answers.filter((a) => a.answer.status === 503)) expectRetryLater(a.route, a.answer)
    // Started and finished while the database was away: 503, whatever the route.
    const during = answers.filter((a) => a.from >= 1 && a.to <= 3)
    expect(during.filter((a) => a.answer.status !== 503).map((a) => `${a.route}: ${a.answer.status}`)).toEqual([])
    expect(new Set(during.map((a) => a.route))).toEqual(new Set(routes.map((r) => r.name)))

    // The three ways were told apart as one: refused, reset, and waits that timed out.
    const seen = new Set(unavailableLines(shop.lines).map((l) => l.err?.code ?? l.err?.message))
    expect(seen).toContain('ECONNREFUSED')
    expect(seen).toContain('ECONNRESET')
    expect([...seen].some((s) => /timeout/.test(s ?? ''))).toBe(true)
    expect(shop.lines.filter((l) => l.msg === 'unhandled error')).toEqual([])
  }, 120_000)
})

describe('pg_terminate_backend on every connection of the shop, in the middle of transactions', () => {
  let shop: Shop
  beforeAll(async () => {
    // Room for every transaction at once: none waits for a connection.
    shop = await startShop('terminate', { max: 10 })
  })
  afterAll(() => shop?.stop())

  const terminateAll = () =>
    admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ANY($1) AND datname = current_database()', [
      Object.values(shop.names),
    ])

  it('answers those requests 503 with Retry-After, keeps the process, and a retry succeeds and counts once', async () => {
    const users = await Promise.all([1, 2, 3, 4].map(async () => {
      const id = randomUUID()
      return { id, token: await keys.tokenFor({ id }) }
    }))
    const orders = [1, 2].map(() => ({
      order_id: randomUUID(),
      user_id: randomUUID(),
      items: [{ product_id: shop.productId, quantity: 1, unit_price_cents: 1250 }],
    }))
    const add = (user: { token: string }) => call(shop.cart, 'POST', '/api/cart/items', { token: user.token, body: { product_id: shop.productId, quantity: 3 } })
    const created = (data: unknown, id: string) => postEvent(shop.cart, '/events/order.created', { type: 'order.created', id, data })
    const eventIds = orders.map(() => randomUUID())

    // Each transaction is held between its first statements and the cart line (or the order's lines).
    shop.proxy.pauseOn('INSERT INTO cart.cart_items', 'UPDATE cart.orders SET user_id')
    const pending = [...users.map(add), ...orders.map((o, i) => created(o, eventIds[i]!))]
    await waitFor(() => expect(shop.proxy.paused()).toBe(6))
    const { rows } = await admin.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE application_name = $1', [shop.names.cart])
    expect(rows.filter((r) => r.state === 'idle in transaction')).toHaveLength(6)

    await terminateAll()
    const answers = await Promise.all(pending)
    answers.forEach((answer, i) => expectRetryLater(`request ${i}`, answer))
    shop.proxy.resume()

    // The same requests again: the first attempts rolled back, so each line holds 3, not 6.
    for (const user of users) {
      await waitFor(async () => expect((await add(user)).status).toBe(200))
      expect((await call(shop.cart, 'GET', '/api/cart', { token: user.token })).json.items).toEqual([{ product_id: shop.productId, quantity: 3 }])
    }
    for (const [i, o] of orders.entries()) await waitFor(async () => expect((await created(o, eventIds[i]!)).status).toBe(204))
    expect(shop.lines.filter((l) => l.msg === 'unhandled error')).toEqual([])
  })

  it('survives it three times in a row under load, answering only success or 503', async () => {
    const routes = routesOf(shop).filter((r) => !r.name.includes('healthz'))
    const answers: { route: string; ok: number; answer: Answer }[] = []
    let loading = true
    const workers = Array.from({ length: 12 }, async () => {
      while (loading) {
        const route = routes[Math.floor(Math.random() * routes.length)]!
        answers.push({ route: route.name, ok: route.ok, answer: await route.send() })
      }
    })
    for (let round = 0; round < 3; round++) {
      // Some answers in between, so that connections are out and transactions under way.
      const before = answers.length
      await waitFor(() => expect(answers.length).toBeGreaterThan(before + 30))
      await terminateAll()
    }
    const after = answers.length
    await waitFor(() => expect(answers.slice(after).filter((a) => a.answer.status === a.ok).length).toBeGreaterThan(routes.length))
    loading = false
    await Promise.all(workers)
    const wrong = answers.filter((a) => a.answer.status !== a.ok && a.answer.status !== 503)
    expect(wrong.map((a) => `${a.route}: ${a.answer.status} ${a.answer.text.slice(0, 200)}`)).toEqual([])
    for (const a of answers.filter((a) => a.answer.status === 503)) expectRetryLater(a.route, a.answer)
  }, 60_000)
})

describe('withTransaction', () => {
  let pool: Pool
  const name = `outage-tx-${randomUUID().slice(0, 8)}`
  beforeAll(() => {
    pool = createPool({ connectionString: inject('databaseUrl'), applicationName: name, log: createLogger({ name, level: 'silent' }), max: 2 })
  })
  afterAll(() => pool.end())

  it('rejects as "database unavailable" when its backend is terminated between two statements, and the pool serves the next one', async () => {
    const err = await withTransaction(pool, async (tx) => {
      const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      // The socket, not the client: a client whose 'error' nobody hears throws before its 'end'.
      const closed = new Promise<void>((resolve) => tx.connection.stream.once('close', () => resolve()))
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid])
      // Gone with no statement in flight: pg emits 'error' on the client, which only withTransaction hears.
      await closed
      await tx.query('SELECT 1')
    }).catch((e: unknown) => e)
    expect(isDatabaseUnavailable(err)).toBe(true)
    expect((await withTransaction(pool, (tx) => tx.query<{ one: number }>('SELECT 1 AS one'))).rows[0]!.one).toBe(1)
  })

  it('rejects as "database unavailable" when its backend is terminated during a statement', async () => {
    const err = await withTransaction(pool, async (tx) => {
      const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      const sleeping = tx.query('SELECT pg_sleep(30)')
      // It rejects as soon as the backend is gone, which may be before `await sleeping` below is
      // reached (while the terminate's own answer is on its way): handled from now on.
      sleeping.catch(() => {})
      await waitFor(async () => {
        const { rows: [row] } = await admin.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE pid = $1', [rows[0]!.pid])
        expect(row?.state).toBe('active')
      })
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid])
      await sleeping
    }).catch((e: unknown) => e)
    expect(isDatabaseUnavailable(err)).toBe(true)
    expect((err as { code?: string }).code).toBe('57P01')
    expect((await withTransaction(pool, (tx) => tx.query<{ one: number }>('SELECT 1 AS one'))).rows[0]!.one).toBe(1)
  })
})

describe('isDatabaseUnavailable', () => {
  const coded = (code: string) => Object.assign(new Error(`failed with ${code}`), { code })

  it.each([
    ['connection refused', coded('ECONNREFUSED')],
    ['connection reset', coded('ECONNRESET')],
    ['a write to a closed connection', coded('EPIPE')],
    ['a connect that timed out', coded('ETIMEDOUT')],
    ['57P01 admin_shutdown (pg_terminate_backend)', coded('57P01')],
    ['57P02 crash_shutdown', coded('57P02')],
    ['57P03 cannot_connect_now', coded('57P03')],
    ['08006 connection_failure', coded('08006')],
    ['08001 sqlclient_unable_to_establish_sqlconnection', coded('08001')],
    ['53300 too_many_connections', coded('53300')],
    ['pg: the socket closed under the client', new Error('Connection terminated unexpectedly')],
    ['pg-pool: no free client in time', new Error('timeout exceeded when trying to connect')],
    ['pg-pool: no new connection in time', new Error('Connection terminated due to connection timeout', { cause: new Error('Connection terminated unexpectedly') })],
    ['pg: no answer within query_timeout', new Error('Query read timeout')],
    ['a wrapped cause', new Error('migration failed', { cause: coded('ECONNREFUSED') })],
    ['a connect to every address of a host', new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')])],
  ])('is true for %s', (_, err) => {
    expect(isDatabaseUnavailable(err)).toBe(true)
  })

  it.each([
    ['23505 unique_violation', coded('23505')],
    ['22P02 invalid_text_representation', coded('22P02')],
    ['57014 query_canceled (a statement over statement_timeout: the server answered)', coded('57014')],
    ['a bug', new TypeError('cannot read properties of undefined')],
    ['nothing', undefined],
    ['a string', 'ECONNREFUSED'],
  ])('is false for %s', (_, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false)
  })
})

describe('rendering', () => {
  const log = createLogger({ name: 'render', level: 'silent' })
  const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })

  it('answers a route whose database is unreachable 503 problem+json with Retry-After: 2', async () => {
    const app = createApp({ log, metrics: createMetrics({ defaults: false }) })
    app.get('/thing', () => {
      throw refused()
    })
    const res = await call(app, 'GET', '/thing')
    expectRetryLater('/thing', res)
    expect(res.headers.get('Retry-After')).toBe('2')
    expect(res.text).not.toContain('ECONNREFUSED')
  })

  it('answers an event whose database is unreachable 503 with Retry-After, so the broker retries it', async () => {
    const metrics = createMetrics({ defaults: false })
    const app = createApp({ log, metrics })
    app.post('/events/thing.happened', onEvent({ type: 'thing.happened', schema: v.looseObject({}), log, metrics, handle: async () => Promise.reject(refused()) }))
    const res = await postEvent(app, '/events/thing.happened', { type: 'thing.happened', data: {} })
    expectRetryLater('/events/thing.happened', res)
  })

  it('says 503 with Retry-After on /healthz while the database is unreachable', async () => {
    const proxy = await startDatabaseProxy(inject('databaseUrl'))
    const pool = createPool({ connectionString: proxy.url, applicationName: 'outage-healthz', log, max: 1, connectionTimeoutMs: 500 })
    try {
      const app = createApp({ log, metrics: createMetrics({ defaults: false }), pool })
      expect((await call(app, 'GET', '/healthz')).status).toBe(200)
      await proxy.setMode('refuse')
      expectRetryLater('/healthz', await call(app, 'GET', '/healthz'))
      await proxy.setMode('forward')
      await waitFor(async () => expect((await call(app, 'GET', '/healthz')).status).toBe(200))
    } finally {
      await pool.end()
      await proxy.close()
    }
  })
})
