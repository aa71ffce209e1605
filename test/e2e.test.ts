/**
 * End to end: the real local runner (bundles as processes, the local ingress, the local broker
 * on free ports) and a client that goes through the ingress only, like a shopper would.
 * Runs with the in-memory broker, and with RabbitMQ too when AMQP_URL is set, through the NGINX
 * Ingress routes; and once more, with one shopper, through the Gateway API routes.
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { deleteTopology } from '../eventing/local/delete-topology.ts'
import type { IngressChoice } from '../knative/local/ingress.ts'
import { startShop, type Shop } from '../knative/local/runner.ts'
import { checkResponse } from './contract.ts'
import { uniqueEmail } from './support.ts'

const root = new URL('..', import.meta.url).pathname
const modes = ['memory', ...(process.env.AMQP_URL ? ['rabbitmq'] : [])] as const
// Each broker mode through the default ingress choice; the other choice once, with the memory broker.
const stacks: [(typeof modes)[number], IngressChoice][] = [...modes.map((mode): [(typeof modes)[number], IngressChoice] => [mode, 'nginx']), ['memory', 'gateway']]

/** Collects the stack's log lines; E2E_VERBOSE=1 shows them as they come. */
const logs: string[] = []
const output = (source: string, line: string) => {
  logs.push(`${source} ${line}`)
  if (process.env.E2E_VERBOSE) process.stdout.write(`${source.padEnd(11)} ${line}\n`)
}

type Client = ReturnType<typeof client>
function client(base: string, token?: string) {
  const send = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })
    const text = await res.text()
    // Through the ingress, every answer is what the API document says (test/contract.ts).
    checkResponse(method, path, { status: res.status, headers: res.headers, text })
    return { status: res.status, json: text ? JSON.parse(text) : undefined }
  }
  return { send, as: (t: string) => client(base, t) }
}

async function until<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (done(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(value)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** One shopper, start to finish: register, log in, browse, fill a cart, order, wait for the outcome. */
async function shop(api: Client, productIds: string[]) {
  const email = uniqueEmail('shopper')
  expect((await api.send('POST', '/api/auth/register', { email, password: 'correct horse battery', name: 'Shopper' })).status).toBe(201)
  const login = await api.send('POST', '/api/auth/login', { email, password: 'correct horse battery' })
  expect(login.status).toBe(200)
  const me = api.as(login.json.token)

  const listed = await me.send('GET', '/api/products?limit=100')
  expect(listed.status).toBe(200)
  const [a, b] = [...productIds].sort(() => Math.random() - 0.5)
  expect((await me.send('POST', '/api/cart/items', { product_id: a, quantity: 2 })).status).toBe(200)
  expect((await me.send('POST', '/api/cart/items', { product_id: b, quantity: 1 })).status).toBe(200)
  const cart = await me.send('GET', '/api/cart')
  expect(cart.json.items).toHaveLength(2)

  const placed = await me.send('POST', '/api/orders', { items: cart.json.items }, { 'Idempotency-Key': randomUUID() })
  expect(placed.status).toBe(201)
  const order = await until(
    'the order to be paid or failed',
    async () => (await me.send('GET', `/api/orders/${placed.json.id}`)).json,
    (o) => o.status !== 'pending',
  )
  const payment = await me.send('GET', `/api/payments/${order.id}`)
  expect(payment.status).toBe(200)
  expect(payment.json.status).toBe(order.status === 'paid' ? 'succeeded' : 'failed')
  expect(order.payment_id).toBe(payment.json.id)
  // Paid, the ordered lines leave the cart; failed, they come back to it (in any order).
  const lines = (items: { product_id: string; quantity: number }[]) => JSON.stringify(items.map((l) => `${l.product_id}×${l.quantity}`).sort())
  const ordered = lines(cart.json.items)
  await until(
    order.status === 'paid' ? 'the cart to be emptied' : 'the lines to be back in the cart',
    async () => (await me.send('GET', '/api/cart')).json.items,
    (items) => (order.status === 'paid' ? items.length === 0 : lines(items) === ordered),
  )
  return order.status as string
}

describe.each(stacks)('the shop on one machine, broker %s, ingress %s', (mode, ingress) => {
  let running: Shop
  let api: Client
  const productIds: string[] = []
  const brokerNamespace = `e2e${randomUUID().slice(0, 8)}`

  beforeAll(async () => {
    const adminPassword = `admin-${randomUUID()}`
    running = await startShop({
      root,
      ingressPort: 0,
      ingress,
      functionPortBase: 0,
      dataDir: await mkdtemp(join(tmpdir(), 'shop-e2e-')),
      databaseUrl: inject('databaseUrl'),
      amqpUrl: mode === 'rabbitmq' ? process.env.AMQP_URL : undefined,
      brokerNamespace,
      demoCatalog: false,
      adminEmail: uniqueEmail('admin'),
      adminPassword,
      functionEnv: { PAYMENT_DELAY_MS: '20', BCRYPT_COST: '4', LOG_LEVEL: 'warn' },
      output,
    })
    api = client(running.ingressUrl)
    const admin = await api.send('POST', '/api/auth/login', { email: running.admin.email, password: adminPassword })
    expect(admin.status).toBe(200)
    for (const [name, price_cents] of [['Kettle', 4500], ['Grinder', 12900], ['Beans', 1450]] as const) {
      const res = await api.as(admin.json.token).send('POST', '/api/products', { name: `${name} ${randomUUID().slice(0, 4)}`, price_cents, stock: 100 })
      productIds.push(res.json.id)
    }
  }, 120_000)

  afterAll(async () => {
    await running?.stop()
    if (mode === 'rabbitmq') await deleteTopology(process.env.AMQP_URL!, `${root}eventing`, brokerNamespace)
  }, 30_000)

  it('serves a shopper from register to a paid or failed order, through the ingress only', async () => {
    expect(['paid', 'payment_failed']).toContain(await shop(api, productIds))
  }, 60_000)

  // The load is the broker's and the functions', the same through either ingress choice: once is enough.
  if (ingress === 'nginx') {
    it('serves 50 shoppers at once, each order final with one payment', async () => {
      const outcomes = await Promise.all(Array.from({ length: 50 }, () => shop(api, productIds)))
      expect(outcomes.every((s) => s === 'paid' || s === 'payment_failed')).toBe(true)
    }, 120_000)
  }

  it('carries one request id from the client through the ingress to the function, and on the ingress’s own errors', async () => {
    const id = `e2e-${randomUUID()}`
    const served = await fetch(`${running.ingressUrl}/api/products?limit=1`, { headers: { 'X-Request-Id': id } })
    expect(served.status).toBe(200)
    expect(served.headers.get('X-Request-Id')).toBe(id)
    // Answered by the ingress itself (no route), or by a function routed at `/`: the same id either way.
    const unrouted = await fetch(`${running.ingressUrl}/nope`, { headers: { 'X-Request-Id': id } })
    expect(unrouted.status).toBe(404)
    expect(unrouted.headers.get('X-Request-Id')).toBe(id)
    if (unrouted.headers.get('Content-Type') === 'application/problem+json') expect(await unrouted.json()).toMatchObject({ status: 404, instance: '/nope', request_id: id })
  })

  it('answers problem+json 404 for what no Ingress routes, and never exposes internal routes', async () => {
    for (const path of ['/nope', '/events/order.created', '/internal/outbox/flush', '/metrics', '/api/carts']) {
      const res = await fetch(`${running.ingressUrl}${path}`, { method: 'POST' })
      expect(res.status, path).toBe(404)
      expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    }
  })
})

describe('npm start’s data directory', () => {
  it('keeps data, keys and the admin password across a restart, on the embedded database', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'shop-restart-'))
    const options = {
      root,
      ingressPort: 0,
      functionPortBase: 0,
      dataDir,
      brokerNamespace: `e2e${randomUUID().slice(0, 8)}`,
      demoCatalog: true,
      adminEmail: 'admin@shop.local',
      functionEnv: { BCRYPT_COST: '4', LOG_LEVEL: 'warn' },
      output,
    }
    const first = await startShop(options)
    let token: string
    try {
      const api = client(first.ingressUrl)
      expect((await api.send('GET', '/api/products')).json.total).toBeGreaterThan(0)
      await api.send('POST', '/api/auth/register', { email: 'kept@example.test', password: 'correct horse battery', name: 'Kept' })
      token = (await api.send('POST', '/api/auth/login', { email: 'kept@example.test', password: 'correct horse battery' })).json.token
    } finally {
      await first.stop()
    }
    const second = await startShop(options)
    try {
      expect(second.admin.password).toBe(first.admin.password)
      const api = client(second.ingressUrl)
      // The same signing key: a token from before the restart still works.
      expect((await api.as(token).send('GET', '/api/auth/me')).json.email).toBe('kept@example.test')
      expect((await api.send('POST', '/api/auth/login', first.admin)).status).toBe(200)
      // The demo catalog is loaded once, not again on every start.
      expect((await api.send('GET', '/api/products')).json.total).toBe(8)
    } finally {
      await second.stop()
    }
  }, 120_000)
})
