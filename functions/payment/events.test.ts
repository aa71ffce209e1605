import { randomUUID } from 'node:crypto'
import { createServer } from 'node:net'
import { CloudEvent, HTTP } from 'cloudevents'
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import { seededRandom } from '../../bench/load/random.ts'
import { createPool, type Pool } from '../../shared/db.ts'
import type { OutgoingEvent, Publisher } from '../../shared/events.ts'
import { appDeps, quietLog, testKeys, testPool } from '../../test/support.ts'
import { paymentApp } from './app.ts'
import type { PaymentRow } from './events.ts'

const pool = testPool(10)
let keys: Awaited<ReturnType<typeof testKeys>>

beforeAll(async () => {
  keys = await testKeys()
})

type Options = { pool?: Pool; publish?: Publisher; successRate?: number; delayMs?: number; random?: () => number; wait?: (ms: number) => Promise<void> }

/** An app whose publisher records what it sends. */
function makeApp(options: Options = {}) {
  const sent: OutgoingEvent[] = []
  const deps = appDeps()
  const app = paymentApp({
    pool,
    ...deps,
    verify: keys.verify,
    publish: async (e) => {
      sent.push(e)
    },
    successRate: 0.8,
    delayMs: 0,
    ...options,
  })
  const metricsText = async () => (await app.request('/metrics')).text()
  return { app, sent, metricsText }
}

type App = ReturnType<typeof makeApp>['app']

const orderCreated = (data: Record<string, unknown> = {}) => ({
  order_id: randomUUID(),
  user_id: randomUUID(),
  items: [{ product_id: randomUUID(), quantity: 2, unit_price_cents: 625 }],
  total_cents: 1250,
  created_at: new Date().toISOString(),
  ...data,
})

/** Delivers a CloudEvent in binary mode, the way the broker does. */
async function deliver(app: App, data: unknown, { id = randomUUID(), type = 'order.created', datacontenttype = 'application/json', path = '/events/order.created' } = {}) {
  const { headers, body } = HTTP.binary(new CloudEvent({ type, source: '/shop/order', id, datacontenttype, data }))
  const res = await app.request(path, {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)])),
    body: String(body),
  })
  return res.status
}

const paymentsOf = async (orderId: string) =>
  (await pool.query<PaymentRow>('SELECT * FROM payment.payments WHERE order_id = $1', [orderId])).rows

// A payment delay no other timer in this process has: the ones `holdDelays` holds.
const HELD_MS = 3_600_000

/**
 * Holds every timer of `HELD_MS` until `release()`, so that a payment's delay ends when the test
 * says, never when the clock does. Every other timer (pg's, vitest's) runs as usual.
 */
function holdDelays() {
  const realSetTimeout = globalThis.setTimeout
  const held: (() => void)[] = []
  const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    if (ms !== HELD_MS) return realSetTimeout(fn, ms, ...args)
    held.push(() => fn(...args))
    return undefined // the payment's delay never uses its handle
  }) as typeof setTimeout)
  onTestFinished(() => spy.mockRestore())
  return {
    held,
    release() {
      for (const run of held.splice(0)) run()
    },
  }
}

/** `vi.waitFor` with room for a loaded machine: a wait for a condition, never for a time. */
const waitFor = <T>(check: () => T) => vi.waitFor(check, { timeout: 10_000, interval: 10 })

/** A random() that alternates between success and failure, so that any re-roll would show. */
const flipFlop = () => {
  let i = 0
  return () => (i++ % 2 === 0 ? 0 : 0.99)
}

describe('POST /events/order.created', () => {
  it('stores one payment and publishes its outcome as payment.status, with the payment id as event id', async () => {
    const { app, sent, metricsText } = makeApp({ random: () => 0.1 })
    const data = orderCreated()
    expect(await deliver(app, data)).toBe(204)
    const [row, ...more] = await paymentsOf(data.order_id)
    expect(more).toEqual([])
    expect(row).toMatchObject({ user_id: data.user_id, amount_cents: 1250, status: 'succeeded', outcome: 'succeeded', reason: null })
    expect(sent).toEqual([
      {
        type: 'payment.status',
        source: '/shop/payment',
        id: row!.id,
        time: row!.processed_at!.toISOString(),
        data: {
          payment_id: row!.id,
          order_id: data.order_id,
          user_id: data.user_id,
          status: 'succeeded',
          amount_cents: 1250,
          processed_at: row!.processed_at!.toISOString(),
        },
      },
    ])
    const text = await metricsText()
    expect(text).toContain('events_received_total{type="order.created",outcome="handled"} 1')
    expect(text).toContain('payments_total{status="succeeded"} 1')
  })

  it('publishes a failure with its reason', async () => {
    const { app, sent } = makeApp({ random: () => 0.9 })
    const data = orderCreated()
    expect(await deliver(app, data)).toBe(204)
    expect((await paymentsOf(data.order_id))[0]).toMatchObject({ status: 'failed', reason: 'card declined' })
    expect(sent[0]!.data).toMatchObject({ status: 'failed', reason: 'card declined' })
  })

  it('makes one payment of the same event delivered three times, publishing the stored outcome each time', async () => {
    const { app, sent, metricsText } = makeApp({ random: flipFlop() })
    const data = orderCreated()
    const id = randomUUID()
    for (let i = 0; i < 3; i++) expect(await deliver(app, data, { id })).toBe(204)
    const rows = await paymentsOf(data.order_id)
    expect(rows).toHaveLength(1)
    expect(sent).toHaveLength(3)
    expect(sent.map((e) => e.id)).toEqual([rows[0]!.id, rows[0]!.id, rows[0]!.id])
    expect(sent.map((e) => e.data)).toEqual([sent[0]!.data, sent[0]!.data, sent[0]!.data])
    expect(sent[0]!.data).toMatchObject({ status: rows[0]!.outcome })
    const text = await metricsText()
    expect(text).toContain('events_received_total{type="order.created",outcome="handled"} 1')
    expect(text).toContain('events_received_total{type="order.created",outcome="duplicate"} 2')
  })

  it('makes one payment of the same event delivered three times at once, and counts it once', async () => {
    const delay = holdDelays()
    const { app, sent, metricsText } = makeApp({ random: flipFlop(), delayMs: HELD_MS })
    const data = orderCreated()
    const id = randomUUID()
    const deliveries = Promise.all([1, 2, 3].map(() => deliver(app, data, { id })))
    // One stores the payment, two find it; all three find it pending and wait out the delay...
    await waitFor(() => expect(delay.held).toHaveLength(3))
    // ...which ends for all at once: they race to the guarded UPDATE that settles it.
    delay.release()
    expect(await deliveries).toEqual([204, 204, 204])
    const rows = await paymentsOf(data.order_id)
    expect(rows).toHaveLength(1)
    expect(sent).toHaveLength(3)
    for (const e of sent) expect(e).toMatchObject({ id: rows[0]!.id, data: { status: rows[0]!.outcome } })
    const text = await metricsText()
    expect(text).toContain('events_received_total{type="order.created",outcome="handled"} 1')
    expect(text).toContain('events_received_total{type="order.created",outcome="duplicate"} 2')
    expect(text).toMatch(new RegExp(`payments_total\\{status="${rows[0]!.outcome}"\\} 1\\n`))
    expect(text).not.toMatch(/payments_total\{[^}]*\} [2-9]/)
  })

  it.each([
    [1, ['succeeded']],
    [0, ['failed']],
  ])('with success rate %d only ever gives %j', async (successRate, expected) => {
    const { app, sent } = makeApp({ successRate })
    for (let i = 0; i < 20; i++) expect(await deliver(app, orderCreated())).toBe(204)
    expect([...new Set(sent.map((e) => (e.data as { status: string }).status))]).toEqual(expected)
  })

  it('succeeds for about 80% of 1000 orders at the default rate, drawing once per order', async () => {
    // Seeded, so every run draws the same 1000 numbers. However the deliveries interleave, each
    // order takes one draw, so exactly the draws under the rate succeed.
    const seed = 20_240_501
    const underRate = Array.from({ length: 1000 }, seededRandom(seed)).filter((x) => x < 0.8).length
    expect(underRate / 1000).toBeGreaterThanOrEqual(0.75)
    expect(underRate / 1000).toBeLessThanOrEqual(0.85)
    const { app, sent } = makeApp({ successRate: 0.8, random: seededRandom(seed) })
    const orders = Array.from({ length: 1000 }, () => orderCreated())
    for (let i = 0; i < orders.length; i += 50) {
      const statuses = await Promise.all(orders.slice(i, i + 50).map((data) => deliver(app, data)))
      expect(statuses.every((s) => s === 204)).toBe(true)
    }
    const { rows } = await pool.query<{ status: string; n: number }>(
      'SELECT status, count(*)::int AS n FROM payment.payments WHERE order_id = ANY($1::uuid[]) GROUP BY status',
      [orders.map((o) => o.order_id)],
    )
    const { succeeded = 0, failed = 0 } = Object.fromEntries(rows.map((r) => [r.status, r.n]))
    expect(succeeded + failed).toBe(1000)
    expect(succeeded).toBe(underRate)
    expect(sent.filter((e) => (e.data as { status: string }).status === 'succeeded')).toHaveLength(succeeded)
  })

  it('holds a delivery for the delay without blocking other requests', async () => {
    const delay = holdDelays()
    const { app } = makeApp({ delayMs: HELD_MS })
    const [a, b] = [orderCreated(), orderCreated()]
    let answered = 0
    const deliveries = [a, b].map((data) => deliver(app, data).finally(() => answered++))
    await waitFor(() => expect(delay.held).toHaveLength(2))
    // Both deliveries wait out their delay, their payments stored and pending; the app still answers.
    expect((await app.request('/healthz')).status).toBe(200)
    expect(answered).toBe(0)
    expect((await paymentsOf(a.order_id))[0]!.status).toBe('pending')
    delay.release()
    expect(await Promise.all(deliveries)).toEqual([204, 204])
    expect((await paymentsOf(a.order_id))[0]!.status).not.toBe('pending')
  })

  it('answers 503 when publishing fails, keeps the outcome, and publishes that same outcome on redelivery', async () => {
    const broken = makeApp({
      random: () => 0,
      publish: async () => {
        throw new Error('the broker answered 503')
      },
    })
    const data = orderCreated()
    const id = randomUUID()
    expect(await deliver(broken.app, data, { id })).toBe(503)
    const [stored] = await paymentsOf(data.order_id)
    expect(stored).toMatchObject({ outcome: 'succeeded', status: 'succeeded' })
    expect(await broken.metricsText()).toContain('events_received_total{type="order.created",outcome="failed"} 1')

    // The retry lands on an instance that would roll a failure: the stored success wins.
    const working = makeApp({ random: () => 0.99 })
    expect(await deliver(working.app, data, { id })).toBe(204)
    expect(working.sent).toHaveLength(1)
    expect(working.sent[0]).toMatchObject({ id: stored!.id, data: { status: 'succeeded', processed_at: stored!.processed_at!.toISOString() } })
    expect(await paymentsOf(data.order_id)).toEqual([stored])
    expect(await working.metricsText()).not.toMatch(/payments_total\{/)
  })

  it('answers 503 while the database is unreachable, and 204 when the event is retried', async () => {
    // A port this test owns that accepts connections and never answers: a hung database.
    const sink = createServer(() => {})
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r))
    const address = sink.address()
    const port = typeof address === 'object' && address ? address.port : 0
    const dead = createPool({ connectionString: `postgres://postgres@127.0.0.1:${port}/x`, applicationName: 'test', log: quietLog, connectionTimeoutMs: 300 })
    const data = orderCreated()
    const id = randomUUID()
    try {
      const down = makeApp({ pool: dead })
      expect(await deliver(down.app, data, { id })).toBe(503)
      expect(down.sent).toEqual([])
      expect(await down.metricsText()).toContain('events_received_total{type="order.created",outcome="failed"} 1')
    } finally {
      await dead.end()
      sink.close()
    }
    expect(await paymentsOf(data.order_id)).toEqual([])
    const up = makeApp()
    expect(await deliver(up.app, data, { id })).toBe(204)
    expect(await paymentsOf(data.order_id)).toHaveLength(1)
    expect(up.sent).toHaveLength(1)
  })

  const orderId = randomUUID()
  it.each([
    ['order_id is missing', { ...orderCreated(), order_id: undefined }, {}, 422],
    ['order_id is not a UUID', orderCreated({ order_id: 'order-1' }), {}, 422],
    ['user_id is missing', orderCreated({ order_id: orderId, user_id: undefined }), {}, 422],
    ['total_cents is a string', orderCreated({ order_id: orderId, total_cents: '1250' }), {}, 422],
    ['total_cents is negative', orderCreated({ order_id: orderId, total_cents: -1 }), {}, 422],
    ['total_cents is a fraction', orderCreated({ order_id: orderId, total_cents: 12.5 }), {}, 422],
    ['data is not JSON', 'order please', { datacontenttype: 'text/plain' }, 400],
    ['the type is another', orderCreated({ order_id: orderId }), { type: 'order.cancelled' }, 400],
  ])('rejects an event whose %s, stores nothing and counts it', async (_, data, attributes, status) => {
    const { app, sent, metricsText } = makeApp()
    expect(await deliver(app, data, attributes)).toBe(status)
    expect(sent).toEqual([])
    expect(await paymentsOf(orderId)).toEqual([])
    expect(await metricsText()).toContain('events_received_total{type="order.created",outcome="rejected"} 1')
  })

  it.each([
    ['without ce-source', { 'ce-source': undefined }],
    ['with ce-specversion 9.9', { 'ce-specversion': '9.9' }],
    ['without ce-type', { 'ce-type': undefined }],
    ['without a JSON Content-Type', { 'Content-Type': 'text/plain' }],
  ])('rejects an order.created %s with 400 before reading its data: no payment is made', async (_, change) => {
    const { app, sent, metricsText } = makeApp()
    const data = orderCreated()
    const headers = Object.entries({
      'ce-specversion': '1.0',
      'ce-id': randomUUID(),
      'ce-source': '/shop/order',
      'ce-type': 'order.created',
      'Content-Type': 'application/json',
      ...change,
    }).filter((e): e is [string, string] => e[1] !== undefined)
    const res = await app.request('/events/order.created', { method: 'POST', headers: Object.fromEntries(headers), body: JSON.stringify(data) })
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(sent).toEqual([])
    expect(await paymentsOf(data.order_id)).toEqual([])
    expect(await metricsText()).toContain('events_received_total{type="order.created",outcome="rejected"} 1')
  })

  it('rejects a structured order.created without an id (the SDK would make one up): no payment is made', async () => {
    const { app, sent } = makeApp()
    const data = orderCreated()
    const body = JSON.stringify({ specversion: '1.0', source: '/shop/order', type: 'order.created', data })
    const res = await app.request('/events/order.created', { method: 'POST', headers: { 'Content-Type': 'application/cloudevents+json' }, body })
    expect(res.status).toBe(400)
    expect(sent).toEqual([])
    expect(await paymentsOf(data.order_id)).toEqual([])
  })

  it('rejects a request that is not a CloudEvent and counts it', async () => {
    const { app, sent, metricsText } = makeApp()
    const data = orderCreated()
    const res = await app.request('/events/order.created', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(data) })
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(sent).toEqual([])
    expect(await paymentsOf(data.order_id)).toEqual([])
    expect(await metricsText()).toContain('events_received_total{type="order.created",outcome="rejected"} 1')
  })
})

describe('POST /events/order.cancelled', () => {
  const cancelled = (order: { order_id: string; user_id: string }, reason: 'cancelled' | 'expired' = 'cancelled') => ({
    order_id: order.order_id,
    user_id: order.user_id,
    items: [{ product_id: randomUUID(), quantity: 2, unit_price_cents: 625 }],
    reason,
  })
  const cancel = (app: App, data: unknown, id = randomUUID()) => deliver(app, data, { id, type: 'order.cancelled', path: '/events/order.cancelled' })
  const statuses = (sent: OutgoingEvent[]) => sent.map((e) => (e.data as { status: string }).status)

  /** A delay the test ends: `held` resolves once a delivery waits in it, `release()` ends it. */
  const gate = () => {
    let entered!: () => void
    let release!: () => void
    const held = new Promise<void>((r) => (entered = r))
    const released = new Promise<void>((r) => (release = r))
    return {
      held,
      release,
      wait: async () => {
        entered()
        await released
      },
    }
  }

  it('refunds an order whose ids the cancel writes in upper case: one order, one user, however spelled', async () => {
    const { app, sent } = makeApp({ random: () => 0 })
    const data = orderCreated()
    expect(await deliver(app, data)).toBe(204)
    const upper = { order_id: data.order_id.toUpperCase(), user_id: data.user_id.toUpperCase() }
    expect(await cancel(app, cancelled(upper))).toBe(204)
    expect((await paymentsOf(data.order_id))[0]).toMatchObject({ status: 'refunded' })
    expect(statuses(sent)).toEqual(['succeeded', 'refunded'])
  })

  it('cancels a payment held in its delay: it is never charged and nothing is published', async () => {
    const g = gate()
    const { app, sent, metricsText } = makeApp({ random: () => 0, wait: g.wait })
    const data = orderCreated()
    const paying = deliver(app, data)
    await g.held
    expect(await cancel(app, cancelled(data))).toBe(204)
    g.release()
    expect(await paying).toBe(204)
    expect((await paymentsOf(data.order_id))[0]).toMatchObject({ status: 'cancelled', outcome: 'succeeded', reason: 'order cancelled' })
    expect(sent).toEqual([])
    const text = await metricsText()
    expect(text).toContain('payments_total{status="cancelled"} 1')
    expect(text).not.toContain('payments_total{status="succeeded"}')
  })

  it('refunds a charged payment once when the cancel arrives three times at once, publishing the same refunded event', async () => {
    const { app, sent, metricsText } = makeApp({ random: () => 0 })
    const data = orderCreated()
    expect(await deliver(app, data)).toBe(204)
    const id = randomUUID()
    expect(await Promise.all([1, 2, 3].map(() => cancel(app, cancelled(data), id)))).toEqual([204, 204, 204])
    const [row] = await paymentsOf(data.order_id)
    expect(row).toMatchObject({ status: 'refunded', outcome: 'succeeded', reason: 'order cancelled', refund_id: expect.any(String) })
    expect(statuses(sent)).toEqual(['succeeded', 'refunded', 'refunded', 'refunded'])
    for (const e of sent.slice(1)) {
      expect(e).toEqual({
        type: 'payment.status',
        source: '/shop/payment',
        id: row!.refund_id,
        time: row!.refunded_at!.toISOString(),
        data: {
          payment_id: row!.id,
          order_id: data.order_id,
          user_id: data.user_id,
          status: 'refunded',
          amount_cents: 1250,
          reason: 'order cancelled',
          processed_at: row!.refunded_at!.toISOString(),
        },
      })
    }
    expect(row!.refund_id).not.toBe(row!.id)
    const text = await metricsText()
    expect(text).toContain('payments_total{status="refunded"} 1')
    expect(text).toContain('events_received_total{type="order.cancelled",outcome="handled"} 1')
    expect(text).toContain('events_received_total{type="order.cancelled",outcome="duplicate"} 2')
  })

  it('records a cancel that comes before order.created, so that order.created never charges', async () => {
    const { app, sent, metricsText } = makeApp({ random: () => 0 })
    const data = orderCreated()
    expect(await cancel(app, cancelled(data, 'expired'))).toBe(204)
    for (let i = 0; i < 3; i++) expect(await deliver(app, data)).toBe(204)
    const rows = await paymentsOf(data.order_id)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ status: 'cancelled', outcome: null, amount_cents: 1250, reason: 'order expired' })
    expect(sent).toEqual([])
    expect(await metricsText()).not.toContain('payments_total{status="succeeded"}')
  })

  it('never leaves a charge standing when the cancel and order.created arrive at once, whichever wins', async () => {
    const { app, sent } = makeApp({ random: () => 0 })
    const data = orderCreated()
    expect(await Promise.all([deliver(app, data), cancel(app, cancelled(data))])).toEqual([204, 204])
    const [row] = await paymentsOf(data.order_id)
    expect(['cancelled', 'refunded']).toContain(row!.status)
    // Cancelled first or in the delay: nothing published. Charged first: the refund is published.
    if (row!.status === 'cancelled') expect(sent).toEqual([])
    else expect(statuses(sent).sort()).toEqual(['refunded', 'succeeded'])
  })

  it('leaves a failed payment failed and publishes nothing more', async () => {
    const { app, sent } = makeApp({ random: () => 0.99 })
    const data = orderCreated()
    expect(await deliver(app, data)).toBe(204)
    expect(await cancel(app, cancelled(data))).toBe(204)
    expect((await paymentsOf(data.order_id))[0]).toMatchObject({ status: 'failed', reason: 'card declined' })
    expect(statuses(sent)).toEqual(['failed'])
  })

  it('shows the user a refunded payment', async () => {
    const { app } = makeApp({ random: () => 0 })
    const data = orderCreated()
    await deliver(app, data)
    await cancel(app, cancelled(data))
    const token = await keys.tokenFor({ id: data.user_id })
    const res = await app.request(`/api/payments/${data.order_id}`, { headers: { Authorization: `Bearer ${token}` } })
    expect(await res.json()).toMatchObject({ status: 'refunded', refunded_at: expect.any(String), processed_at: expect.any(String) })
  })

  it.each([
    ['reason is missing', (d: Record<string, unknown>) => ({ ...d, reason: undefined }), 422],
    ['reason is another', (d: Record<string, unknown>) => ({ ...d, reason: 'changed mind' }), 422],
    ['items is not a list', (d: Record<string, unknown>) => ({ ...d, items: 'all' }), 422],
    ['a line has no price', (d: Record<string, unknown>) => ({ ...d, items: [{ quantity: 1 }] }), 422],
    ['order_id is not a UUID', (d: Record<string, unknown>) => ({ ...d, order_id: 'order-1' }), 422],
  ])('rejects an event whose %s, changes nothing and counts it', async (_, change, status) => {
    const { app, sent, metricsText } = makeApp({ random: () => 0 })
    const data = orderCreated()
    await deliver(app, data)
    expect(await cancel(app, change(cancelled(data)))).toBe(status)
    expect((await paymentsOf(data.order_id))[0]?.status).toBe('succeeded')
    expect(statuses(sent)).toEqual(['succeeded'])
    expect(await metricsText()).toContain('events_received_total{type="order.cancelled",outcome="rejected"} 1')
  })

  it('rejects a cancel naming another user, and refunds nothing', async () => {
    const { app, sent } = makeApp({ random: () => 0 })
    const data = orderCreated()
    await deliver(app, data)
    expect(await cancel(app, cancelled({ ...data, user_id: randomUUID() }))).toBe(422)
    expect((await paymentsOf(data.order_id))[0]?.status).toBe('succeeded')
    expect(statuses(sent)).toEqual(['succeeded'])
  })

  it('answers 503 when the refund cannot be published, and publishes the same refund on redelivery', async () => {
    let refuse = true
    const sent: OutgoingEvent[] = []
    const { app } = makeApp({
      random: () => 0,
      publish: async (e) => {
        if (refuse && (e.data as { status: string }).status === 'refunded') throw new Error('the broker answered 503')
        sent.push(e)
      },
    })
    const data = orderCreated()
    await deliver(app, data)
    const id = randomUUID()
    expect(await cancel(app, cancelled(data), id)).toBe(503)
    refuse = false
    expect(await cancel(app, cancelled(data), id)).toBe(204)
    const [row] = await paymentsOf(data.order_id)
    expect(row!.status).toBe('refunded')
    expect(sent.map((e) => [e.id, (e.data as { status: string }).status])).toEqual([
      [row!.id, 'succeeded'],
      [row!.refund_id, 'refunded'],
    ])
  })
})
