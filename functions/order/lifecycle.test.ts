import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { OutgoingEvent, Publisher } from '../../shared/events.ts'
import { createMetrics } from '../../shared/metrics.ts'
import { createProductClient } from '../../shared/product-client.ts'
import { catalogFixture, type CatalogFixture } from '../../test/product-fixture.ts'
import { appDeps, call, fetchVia, metricValue, postEvent, quietLog, testPool } from '../../test/support.ts'
import { cartApp } from '../cart/app.ts'
import { paymentApp } from '../payment/app.ts'
import { orderApp } from './app.ts'

const pool = testPool(10)
let { keys, catalog, admin } = {} as CatalogFixture
beforeAll(async () => void ({ keys, catalog, admin } = await catalogFixture(pool)))

// Named apart from the other order tests' outbox tables, which those tests drop when they end.
const tables: string[] = []
afterAll(async () => {
  for (const table of tables) await pool.query(`DROP TABLE IF EXISTS ${table}`)
})

const products = () => createProductClient({ baseUrl: 'http://product', fetch: fetchVia(catalog) })
const newProduct = async () =>
  (await call(catalog, 'POST', '/api/products', { token: admin, body: { name: `Item ${randomUUID().slice(0, 6)}`, price_cents: 500, stock: 100 } })).json.id as string
type OrderApp = ReturnType<typeof orderApp>
type Options = { publish?: Publisher; reannounceAfterS?: number; expireAfterS?: number }

/**
 * An order app with a broker that records, and an outbox table of its own: its sweep sees only
 * the orders placed through it. `more()` is another instance on the same table (another pod).
 */
async function setup(options: Options = {}) {
  const outboxTable = `orders.sweep_outbox_${randomUUID().replaceAll('-', '').slice(0, 10)}`
  await pool.query(`CREATE TABLE ${outboxTable} (LIKE orders.outbox INCLUDING ALL)`)
  tables.push(outboxTable)
  const sent: OutgoingEvent[] = []
  const recorder: Publisher = async (e) => {
    sent.push(e)
  }
  const more = () => orderApp({ pool, log: quietLog, metrics: createMetrics({ defaults: false }), verify: keys.verify, products: products(), publish: options.publish ?? recorder, outboxTable, ...options })
  const app = more()
  const userId = randomUUID()
  const token = await keys.tokenFor({ id: userId })
  const place = async (quantity = 2, productId?: string) => {
    const product_id = productId ?? (await newProduct())
    const res = await call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id, quantity }] } })
    expect(res.status).toBe(201)
    return res.json as { id: string; user_id: string; items: { product_id: string; quantity: number; unit_price_cents: number }[] }
  }
  const order = async (id: string) => (await call(app, 'GET', `/api/orders/${id}`, { token })).json
  const cancel = (id: string) => call(app, 'POST', `/api/orders/${id}/cancel`, { token })
  const flush = (on: OrderApp = app) => call(on, 'POST', '/internal/outbox/flush')
  const inOutbox = async (type: string, orderId: string) =>
    (await pool.query(`SELECT id, data, sent_at FROM ${outboxTable} WHERE type = $1 AND data->>'order_id' = $2 ORDER BY created_at`, [type, orderId])).rows
  const ofOrder = (type: string, orderId: string) => sent.filter((e) => e.type === type && (e.data as { order_id: string }).order_id === orderId)
  return { app, more, sent, userId, token, outboxTable, place, order, cancel, flush, inOutbox, ofOrder }
}

const paymentStatus = (order: { id: string; user_id: string }, status: 'succeeded' | 'failed' | 'refunded', payment_id = randomUUID()) => ({
  type: 'payment.status',
  source: '/shop/payment',
  id: randomUUID(),
  data: { payment_id, order_id: order.id, user_id: order.user_id, status, amount_cents: 1000, processed_at: new Date().toISOString() },
})
const report = (app: OrderApp, event: ReturnType<typeof paymentStatus>) => postEvent(app, '/events/payment.status', event)

describe('POST /api/orders/:id/cancel', () => {
  it('cancels a pending order and announces order.cancelled with its lines through the outbox, once', async () => {
    const { app, place, cancel, sent, ofOrder, inOutbox } = await setup()
    const placed = await place(3)
    const res = await cancel(placed.id)
    expect(res.status).toBe(200)
    expect(res.json).toMatchObject({ id: placed.id, status: 'cancelled' })
    expect(ofOrder('order.cancelled', placed.id)).toEqual([
      {
        id: expect.any(String),
        type: 'order.cancelled',
        source: '/shop/order',
        data: { order_id: placed.id, user_id: placed.user_id, items: [{ product_id: placed.items[0]!.product_id, quantity: 3, unit_price_cents: 500 }], reason: 'cancelled' },
      },
    ])
    expect((await inOutbox('order.cancelled', placed.id)).map((r) => r.sent_at)).toEqual([expect.any(Date)])
    expect((await cancel(placed.id)).status).toBe(409)
    expect(sent.filter((e) => e.type === 'order.cancelled')).toHaveLength(1)
    expect(await metricValue(app, 'orders_total{status="cancelled"}')).toBe(1)
  })

  it.each([
    ['paid', 'succeeded'],
    ['payment_failed', 'failed'],
  ] as const)('answers 409 for a %s order and announces nothing', async (status, outcome) => {
    const { app, place, cancel, order, ofOrder } = await setup()
    const placed = await place()
    expect((await report(app, paymentStatus(placed, outcome))).status).toBe(204)
    const res = await cancel(placed.id)
    expect(res.status).toBe(409)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.json.detail).toContain(status)
    expect((await order(placed.id)).status).toBe(status)
    expect(ofOrder('order.cancelled', placed.id)).toEqual([])
  })

  it('cancels once when three cancels arrive at once: one 200, two 409', async () => {
    const { place, cancel, ofOrder } = await setup()
    const placed = await place()
    const answers = await Promise.all([1, 2, 3].map(() => cancel(placed.id)))
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409])
    expect(ofOrder('order.cancelled', placed.id)).toHaveLength(1)
  })

  it('answers 200 when the broker refuses, and leaves order.cancelled for the sweep', async () => {
    let refuse = false
    const sent: OutgoingEvent[] = []
    const { place, cancel, flush, inOutbox } = await setup({
      publish: async (e) => {
        if (refuse) throw new Error('broker answered 500')
        sent.push(e)
      },
    })
    const placed = await place()
    refuse = true
    expect((await cancel(placed.id)).status).toBe(200)
    expect((await inOutbox('order.cancelled', placed.id)).map((r) => r.sent_at)).toEqual([null])
    refuse = false
    expect((await flush()).json).toMatchObject({ sent: 1, pending: 0 })
    expect(sent.map((e) => e.type)).toEqual(['order.created', 'order.cancelled'])
  })

  it('decides a cancel racing the payment’s outcome one way: paid and nothing announced, or cancelled with the payment kept', async () => {
    const { app, place, cancel, order, ofOrder } = await setup()
    const placed = await place()
    const ok = paymentStatus(placed, 'succeeded')
    const [cancelled, reported] = await Promise.all([cancel(placed.id), report(app, ok)])
    expect(reported.status).toBe(204)
    const final = await order(placed.id)
    if (cancelled.status === 200) {
      expect(final).toMatchObject({ status: 'cancelled', payment_id: ok.data.payment_id, payment_status: 'succeeded' })
      expect(ofOrder('order.cancelled', placed.id)).toHaveLength(1)
    } else {
      expect(cancelled.status).toBe(409)
      expect(final).toMatchObject({ status: 'paid', payment_status: 'succeeded' })
      expect(ofOrder('order.cancelled', placed.id)).toEqual([])
    }
  })
})

describe('payment.status for a cancelled order', () => {
  it('shows the refund, and keeps showing it when a late success or failure arrives after it', async () => {
    const { app, place, cancel, order } = await setup()
    const placed = await place()
    await cancel(placed.id)
    const payment_id = randomUUID()
    expect((await report(app, paymentStatus(placed, 'refunded', payment_id))).status).toBe(204)
    expect(await order(placed.id)).toMatchObject({ status: 'cancelled', payment_id, payment_status: 'refunded' })
    for (const late of ['succeeded', 'failed', 'refunded'] as const) expect((await report(app, paymentStatus(placed, late, payment_id))).status).toBe(204)
    expect(await order(placed.id)).toMatchObject({ status: 'cancelled', payment_id, payment_status: 'refunded' })
  })

  it('shows the success, then the refund that follows it, on a cancelled order that stays cancelled', async () => {
    const { app, place, cancel, order } = await setup()
    const placed = await place()
    await cancel(placed.id)
    const payment_id = randomUUID()
    await report(app, paymentStatus(placed, 'succeeded', payment_id))
    expect(await order(placed.id)).toMatchObject({ status: 'cancelled', payment_status: 'succeeded' })
    // Three copies of the refund at once: one changes the order.
    const refund = paymentStatus(placed, 'refunded', payment_id)
    expect((await Promise.all([1, 2, 3].map(() => report(app, refund)))).map((a) => a.status)).toEqual([204, 204, 204])
    expect(await order(placed.id)).toMatchObject({ status: 'cancelled', payment_status: 'refunded' })
    expect(await metricValue(app, 'events_received_total{type="payment.status",outcome="handled"}')).toBe(2)
    expect(await metricValue(app, 'events_received_total{type="payment.status",outcome="duplicate"}')).toBe(2)
  })

  it('never moves a pending order on a refund', async () => {
    const { app, place, order } = await setup()
    const placed = await place()
    expect((await report(app, paymentStatus(placed, 'refunded'))).status).toBe(204)
    expect(await order(placed.id)).toMatchObject({ status: 'pending', payment_status: null })
  })
})

describe('the sweep (POST /internal/outbox/flush)', () => {
  // Moves an order's announcements, or its placing, into the past instead of waiting.
  const age = (table: string, orderId: string, seconds: number) =>
    pool.query(`UPDATE ${table} SET created_at = created_at - make_interval(secs => $2) WHERE data->>'order_id' = $1`, [orderId, seconds])
  const placedAgo = (orderId: string, seconds: number) =>
    pool.query('UPDATE orders.orders SET created_at = created_at - make_interval(secs => $2) WHERE id = $1', [orderId, seconds])

  it('announces a pending order again, with the same data, once its last announcement is ORDER_REANNOUNCE_AFTER_S old', async () => {
    const { place, flush, outboxTable, ofOrder } = await setup()
    const placed = await place()
    await flush()
    expect(ofOrder('order.created', placed.id)).toHaveLength(1)
    await age(outboxTable, placed.id, 30)
    await flush()
    expect(ofOrder('order.created', placed.id)).toHaveLength(1)
    await age(outboxTable, placed.id, 31)
    expect((await flush()).json).toMatchObject({ sent: 1, failed: 0, pending: 0 })
    const [first, again] = ofOrder('order.created', placed.id)
    expect(again).toMatchObject({ type: 'order.created', source: '/shop/order', data: first!.data })
    expect(again!.id).not.toBe(first!.id)
    // The new announcement is the last one now: nothing more until it is as old.
    await flush()
    expect(ofOrder('order.created', placed.id)).toHaveLength(2)
    await age(outboxTable, placed.id, 61)
    await flush()
    expect(ofOrder('order.created', placed.id)).toHaveLength(3)
  })

  it('announces again neither a paid order nor one cancelled', async () => {
    const { app, place, cancel, flush, outboxTable, ofOrder } = await setup()
    const [paid, cancelled] = [await place(), await place()]
    await report(app, paymentStatus(paid, 'succeeded'))
    await cancel(cancelled.id)
    for (const o of [paid, cancelled]) await age(outboxTable, o.id, 3600)
    await flush()
    for (const o of [paid, cancelled]) expect(ofOrder('order.created', o.id)).toHaveLength(1)
  })

  it('expires an order still pending ORDER_EXPIRE_AFTER_S after it was placed: expired, and order.cancelled with reason expired, once', async () => {
    const { app, place, flush, order, cancel, inOutbox, ofOrder } = await setup()
    const placed = await place(4)
    await placedAgo(placed.id, 600)
    await flush()
    expect((await order(placed.id)).status).toBe('pending')
    await placedAgo(placed.id, 301)
    await flush()
    await flush()
    expect((await order(placed.id)).status).toBe('expired')
    expect((await inOutbox('order.cancelled', placed.id)).map((r) => r.data)).toEqual([
      { order_id: placed.id, user_id: placed.user_id, items: [{ product_id: placed.items[0]!.product_id, quantity: 4, unit_price_cents: 500 }], reason: 'expired' },
    ])
    expect(ofOrder('order.cancelled', placed.id)).toHaveLength(1)
    expect(await metricValue(app, 'orders_total{status="expired"}')).toBe(1)
    // Expired, it is not announced again, and cannot be cancelled.
    expect(ofOrder('order.created', placed.id)).toHaveLength(1)
    const res = await cancel(placed.id)
    expect(res.status).toBe(409)
    expect(res.json.detail).toContain('expired')
  })

  it('expires once when three instances sweep at once', async () => {
    const { more, place, flush, order, inOutbox } = await setup()
    const placed = await place()
    await placedAgo(placed.id, 3600)
    const answers = await Promise.all([more(), more(), more()].map((instance) => flush(instance)))
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200])
    expect((await order(placed.id)).status).toBe('expired')
    expect(await inOutbox('order.cancelled', placed.id)).toHaveLength(1)
  })

  it('takes its thresholds from the app’s deps', async () => {
    const { place, flush, order, outboxTable, ofOrder } = await setup({ reannounceAfterS: 600, expireAfterS: 7200 })
    const placed = await place()
    await age(outboxTable, placed.id, 120)
    await placedAgo(placed.id, 1000)
    await flush()
    expect((await order(placed.id)).status).toBe('pending')
    expect(ofOrder('order.created', placed.id)).toHaveLength(1)
    await age(outboxTable, placed.id, 600)
    await flush()
    expect(ofOrder('order.created', placed.id)).toHaveLength(2)
    await placedAgo(placed.id, 7000)
    await flush()
    expect((await order(placed.id)).status).toBe('expired')
  })

  it('decides an expiry racing the payment’s outcome one way: paid and nothing announced, or expired with the payment kept', async () => {
    const { app, place, flush, order, inOutbox } = await setup()
    const placed = await place()
    await placedAgo(placed.id, 3600)
    const ok = paymentStatus(placed, 'succeeded')
    const [, reported] = await Promise.all([flush(), report(app, ok)])
    expect(reported.status).toBe(204)
    const final = await order(placed.id)
    const cancelled = await inOutbox('order.cancelled', placed.id)
    if (final.status === 'expired') {
      expect(final).toMatchObject({ payment_id: ok.data.payment_id, payment_status: 'succeeded' })
      expect(cancelled).toHaveLength(1)
    } else {
      expect(final).toMatchObject({ status: 'paid', payment_status: 'succeeded' })
      expect(cancelled).toEqual([])
    }
  })

  it('leaves other instances’ orders alone: it sweeps only the orders of its own outbox', async () => {
    const mine = await setup()
    const theirs = await setup()
    const placed = await theirs.place()
    await placedAgo(placed.id, 3600)
    await mine.flush()
    expect((await theirs.order(placed.id)).status).toBe('pending')
    await theirs.flush()
    expect((await theirs.order(placed.id)).status).toBe('expired')
  })
})

/**
 * Order, payment and cart in-process, with a relay standing in for the brokers: each event goes
 * to its subscribers in the background, and `settled(type?)` waits until every delivery (of that
 * type) has answered.
 */
async function shop({ payOnOrderCreated = true, tellOrder = true } = {}) {
  type Route = readonly [{ request: OrderApp['request'] }, string]
  const routes: Record<string, Route[]> = {}
  const inFlight = new Map<Promise<void>, string>()
  const answers: number[] = []
  const published: OutgoingEvent[] = []
  const publish: Publisher = async (event) => {
    published.push(event)
    for (const [app, path] of routes[event.type] ?? []) {
      const delivery = postEvent(app, path, { ...event, id: event.id ?? randomUUID() }).then((a) => {
        answers.push(a.status)
        inFlight.delete(delivery)
      })
      inFlight.set(delivery, event.type)
    }
  }
  const settled = async (type?: string) => {
    const pending = () => [...inFlight].filter(([, t]) => !type || t === type).map(([p]) => p)
    while (pending().length) await Promise.all(pending())
  }
  let entered!: () => void
  let release!: () => void
  const held = new Promise<void>((r) => (entered = r))
  const released = new Promise<void>((r) => (release = r))
  const s = await setup({ publish })
  const payment = paymentApp({
    pool,
    ...appDeps(),
    verify: keys.verify,
    publish,
    successRate: 1,
    delayMs: 2_000,
    // The payment's delay, held until the test releases it.
    wait: async () => {
      entered()
      await released
    },
  })
  const cart = cartApp({ pool, ...appDeps(), verify: keys.verify, products: products() })
  routes['order.created'] = [[cart, '/events/order.created'], ...(payOnOrderCreated ? ([[payment, '/events/order.created']] as const) : [])]
  routes['order.cancelled'] = [[payment, '/events/order.cancelled'], [cart, '/events/order.cancelled']]
  routes['payment.status'] = [...(tellOrder ? ([[s.app, '/events/payment.status']] as const) : []), [cart, '/events/payment.status']]
  const fillCart = async (product_id: string, quantity: number) => {
    expect((await call(cart, 'POST', '/api/cart/items', { token: s.token, body: { product_id, quantity } })).status).toBe(200)
  }
  const cartLines = async () => (await call(cart, 'GET', '/api/cart', { token: s.token })).json.items
  const paymentOf = async (orderId: string) => (await pool.query('SELECT status FROM payment.payments WHERE order_id = $1', [orderId])).rows[0]?.status
  const statuses = (orderId: string) => published.filter((e) => e.type === 'payment.status' && (e.data as { order_id: string }).order_id === orderId).map((e) => (e.data as { status: string }).status)
  return { ...s, payment, held, release, settled, answers, published, fillCart, cartLines, paymentOf, statuses }
}

describe('a cancel, through payment and cart', () => {
  it('cancelled during the payment’s delay: the payment ends cancelled, no payment.status follows, the lines are back in the cart', async () => {
    const s = await shop()
    const lamp = await newProduct()
    await s.fillCart(lamp, 5)
    const placed = await s.place(2, lamp)
    await s.held
    expect((await s.cancel(placed.id)).status).toBe(200)
    // order.cancelled has reached payment (and cart) while order.created is held in the delay.
    await s.settled('order.cancelled')
    s.release()
    await s.settled()
    expect(s.answers.every((status) => status === 204)).toBe(true)
    expect(await s.paymentOf(placed.id)).toBe('cancelled')
    expect(s.statuses(placed.id)).toEqual([])
    expect(await s.order(placed.id)).toMatchObject({ status: 'cancelled', payment_status: null })
    expect(await s.cartLines()).toEqual([{ product_id: lamp, quantity: 5 }])
  })

  it('answers 409 to a cancel of a paid order, and the payment stays succeeded', async () => {
    const s = await shop()
    const placed = await s.place()
    s.release()
    await s.settled()
    expect((await s.order(placed.id)).status).toBe('paid')
    expect((await s.cancel(placed.id)).status).toBe(409)
    await s.settled()
    expect(await s.paymentOf(placed.id)).toBe('succeeded')
    expect(s.statuses(placed.id)).toEqual(['succeeded'])
  })

  it('cancelled after the charge, before its payment.status reached the order: refunded, published, and shown on the order', async () => {
    const s = await shop({ tellOrder: false })
    const placed = await s.place()
    s.release()
    await s.settled()
    expect(await s.paymentOf(placed.id)).toBe('succeeded')
    expect((await s.cancel(placed.id)).status).toBe(200)
    await s.settled()
    expect(await s.paymentOf(placed.id)).toBe('refunded')
    expect(s.statuses(placed.id)).toEqual(['succeeded', 'refunded'])
    // Now the order hears of both, in the order they were published.
    for (const e of s.published.filter((e) => e.type === 'payment.status')) expect((await postEvent(s.app, '/events/payment.status', { ...e, id: e.id! })).status).toBe(204)
    expect(await s.order(placed.id)).toMatchObject({ status: 'cancelled', payment_status: 'refunded' })
    expect(s.answers.every((status) => status === 204)).toBe(true)
  })

  it('cancelled before order.created reached payment: the payment is cancelled, and order.created later charges nothing', async () => {
    const s = await shop({ payOnOrderCreated: false })
    const placed = await s.place()
    expect((await s.cancel(placed.id)).status).toBe(200)
    await s.settled()
    expect(await s.paymentOf(placed.id)).toBe('cancelled')
    const created = s.published.find((e) => e.type === 'order.created')!
    for (let i = 0; i < 3; i++) expect((await postEvent(s.payment, '/events/order.created', { ...created, id: created.id! })).status).toBe(204)
    await s.settled()
    expect(await s.paymentOf(placed.id)).toBe('cancelled')
    expect(s.statuses(placed.id)).toEqual([])
  })
})
