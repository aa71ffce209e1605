/**
 * The order function's outbox through its routes: what a client is answered when publishing goes
 * wrong after commit, and how the events a broker outage left get out without more traffic.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { OutgoingEvent, Publisher } from '../../shared/events.ts'
import { createProductClient } from '../../shared/product-client.ts'
import { refuseOutboxMarks } from '../../test/outbox-faults.ts'
import { catalogFixture, type CatalogFixture } from '../../test/product-fixture.ts'
import { appDeps, call, fetchVia, metricValue, testPool } from '../../test/support.ts'
import { orderApp } from './app.ts'

const pool = testPool()
let { keys, catalog, admin } = {} as CatalogFixture
beforeAll(async () => void ({ keys, catalog, admin } = await catalogFixture(pool)))

// This file's outbox tables and what hangs on them, dropped when it ends.
const cleanups: string[] = []
afterAll(async () => {
  for (const statement of cleanups.reverse()) await pool.query(statement)
})

/** An order app on an outbox table of its own, with `publish` as its broker. */
async function setup(publish: Publisher) {
  const outboxTable = `orders.outbox_${randomUUID().replaceAll('-', '').slice(0, 10)}`
  await pool.query(`CREATE TABLE ${outboxTable} (LIKE orders.outbox INCLUDING ALL)`)
  cleanups.push(`DROP TABLE IF EXISTS ${outboxTable}`)
  const products = createProductClient({ baseUrl: 'http://product', fetch: fetchVia(catalog) })
  const app = orderApp({ pool, ...appDeps(), verify: keys.verify, products, publish, outboxTable })
  const token = await keys.tokenFor({ id: randomUUID() })
  const place = async () => {
    const product = await call(catalog, 'POST', '/api/products', { token: admin, body: { name: `Item ${randomUUID().slice(0, 6)}`, price_cents: 500, stock: 10 } })
    return call(app, 'POST', '/api/orders', { token, body: { items: [{ product_id: product.json.id, quantity: 1 }] } })
  }
  const outbox = async () =>
    (await pool.query<{ id: string; order_id: string; sent: boolean }>(`SELECT id, data->>'order_id' AS order_id, sent_at IS NOT NULL AS sent FROM ${outboxTable} ORDER BY created_at`)).rows
  return { app, place, outbox, outboxTable }
}

/** Makes PostgreSQL refuse the first `times` marks of a row as sent on `table`. */
async function refuseMarks(table: string, times: number) {
  const { cleanup } = await refuseOutboxMarks(pool, table, times)
  cleanups.push(...cleanup)
}

const waitFor = <T>(check: () => Promise<T>) => expect.poll(check, { timeout: 20_000, interval: 50 })

describe('POST /api/orders and the outbox', () => {
  it('answers 201 when the broker took order.created but the outbox row cannot be marked sent; the outbox sends it again, same id, until marked', async () => {
    const sent: OutgoingEvent[] = []
    const { app, place, outbox, outboxTable } = await setup(async (e) => void sent.push(e))
    await refuseMarks(outboxTable, 1)

    const res = await place()
    expect(res.status).toBe(201)
    expect(res.json).toMatchObject({ status: 'pending' })
    const [row, ...more] = await outbox()
    expect(more).toEqual([])
    expect(row).toMatchObject({ order_id: res.json.id })
    // Out when the client got its answer, though not marked.
    expect(sent.map((e) => e.id)).toContain(row!.id)
    expect(await metricValue(app, 'outbox_mark_sent_failures_total')).toBe(1)

    // No call from here on: the outbox sends it again by itself, and this time the mark holds.
    await waitFor(async () => (await outbox()).map((r) => r.sent)).toEqual([true])
    expect(sent.map((e) => e.id)).toEqual([row!.id, row!.id])
    expect(sent[1]).toEqual(sent[0])
  })

  it('gets out by itself every order.created a broker outage left, once the broker is back: no new order, no flush', async () => {
    let down = true
    const accepted: OutgoingEvent[] = []
    const { place, outbox } = await setup(async (e) => {
      if (down) throw new Error('connect ECONNREFUSED')
      accepted.push(e)
    })
    const orders: string[] = []
    for (let i = 0; i < 5; i++) {
      const res = await place()
      expect(res.status).toBe(201)
      orders.push(res.json.id)
    }
    expect((await outbox()).filter((r) => !r.sent)).toHaveLength(5)

    down = false
    await waitFor(async () => (await outbox()).filter((r) => !r.sent)).toEqual([])
    expect(accepted.map((e) => (e.data as { order_id: string }).order_id)).toEqual(orders)
    expect(accepted.map((e) => e.id)).toEqual((await outbox()).map((r) => r.id))
  })
})
