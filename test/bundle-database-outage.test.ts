/**
 * A built bundle, run as a process the way Knative runs it, through the database going away: its
 * backends terminated in the middle of transactions, then the database refusing connections. The
 * process must live through both (no exit, no restart), answer 503 with `Retry-After` meanwhile,
 * and serve again after. PostgreSQL is played by a TCP proxy this file owns; only the backends of
 * connections through it are terminated.
 */
import { randomUUID } from 'node:crypto'
import { CloudEvent, HTTP } from 'cloudevents'
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest'
import { startChild, type Child } from '../knative/local/child.ts'
import { buildIfStale } from '../knative/local/runner.ts'
import { startDatabaseProxy, type DatabaseProxy } from './db-proxy.ts'
import { testKeys, testPool } from './support.ts'

const root = new URL('..', import.meta.url).pathname
const admin = testPool(2)

/** A wait for a condition, with room for a loaded machine; never a wait for a time. */
const waitFor = <T>(check: () => T | Promise<T>) => vi.waitFor(check, { timeout: 20_000, interval: 50 })

let proxy: DatabaseProxy
let cart: Child
let output = ''
let base: string

// Only when the sources are newer, as npm start does (see bundles.test.ts).
beforeAll(async () => {
  await buildIfStale(root, () => {})
  proxy = await startDatabaseProxy(inject('databaseUrl'))
  const { jwks } = await testKeys()
  cart = startChild({
    command: process.execPath,
    args: ['dist/cart/index.mjs'],
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      DATABASE_URL: proxy.url,
      JWT_PUBLIC_KEYS: JSON.stringify(jwks),
      // The event routes under test never ask the product function.
      PRODUCT_URL: 'http://127.0.0.1:9',
    },
  })
  for (const stream of [cart.process.stdout!, cart.process.stderr!]) stream.on('data', (chunk: Buffer) => (output += chunk))
  const port = await waitFor(() => {
    expect(cart.done, output).toBe(false)
    const m = /"msg":"listening","port":(\d+)/.exec(output)
    expect(m, 'the cart bundle to listen').not.toBeNull()
    return Number(m![1])
  })
  base = `http://127.0.0.1:${port}`
}, 90_000)

afterAll(async () => {
  await cart?.kill()
  await proxy?.close()
})

/** Posts an `order.created` to the bundle as the broker does (binary mode). */
async function orderCreated(order: { order_id: string; user_id: string }, id: string) {
  const event = new CloudEvent({ type: 'order.created', source: '/shop/order', id, datacontenttype: 'application/json', data: { ...order, items: [{ product_id: randomUUID(), quantity: 1 }] } })
  const { headers, body } = HTTP.binary(event)
  const res = await fetch(`${base}/events/order.created`, { method: 'POST', headers: headers as Record<string, string>, body: body as string })
  return { status: res.status, retryAfter: res.headers.get('Retry-After'), type: res.headers.get('Content-Type'), text: await res.text() }
}

const expectRetryLater = (answer: { status: number; retryAfter: string | null; type: string | null }) =>
  expect({ status: answer.status, type: answer.type, retryAfter: /^[1-9]\d*$/.test(answer.retryAfter ?? '') }).toEqual({
    status: 503,
    type: 'application/problem+json',
    retryAfter: true,
  })

describe('the cart bundle', () => {
  it('lives through pg_terminate_backend of its connections in the middle of transactions: 503s, then the retries succeed', async () => {
    const orders = [1, 2, 3].map(() => ({ order: { order_id: randomUUID(), user_id: randomUUID() }, id: randomUUID() }))
    // Each consumer's transaction stops between locking its order and recording its lines.
    proxy.pauseOn('UPDATE cart.orders SET user_id')
    const pending = orders.map(({ order, id }) => orderCreated(order, id))
    await waitFor(() => expect(proxy.paused()).toBe(3))
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY($1) AND datname = current_database()', [proxy.serverSidePorts()])
    for (const answer of await Promise.all(pending)) expectRetryLater(answer)
    proxy.resume()

    // The broker delivers them again: handled now, by the same process.
    for (const { order, id } of orders) await waitFor(async () => expect((await orderCreated(order, id)).status).toBe(204))
    expect(cart.done, output).toBe(false)
  })

  it('answers 503 with Retry-After while the database refuses connections, and serves again when it is back', async () => {
    await proxy.setMode('refuse')
    const order = { order_id: randomUUID(), user_id: randomUUID() }
    const id = randomUUID()
    expectRetryLater(await orderCreated(order, id))
    const health = await fetch(`${base}/healthz`)
    await health.body?.cancel()
    expect({ status: health.status, retryAfter: health.headers.get('Retry-After') }).toEqual({ status: 503, retryAfter: '2' })

    await proxy.setMode('forward')
    await waitFor(async () => expect((await orderCreated(order, id)).status).toBe(204))
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    expect(cart.done).toBe(false)
  })

  it('still stops cleanly on SIGTERM afterwards (exit 0)', async () => {
    await cart.stop()
    expect(await cart.exited).toEqual({ code: 0, signal: null })
  })
})
