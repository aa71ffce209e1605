/**
 * Ctrl-C on the whole shop (`stop()`), with a request in flight: the ingress takes no new
 * connection but finishes that request, whose client gets its answer, and the functions stop in
 * the order that keeps their callees up: product, which cart and order call, last. The request
 * is held where the test can see it: the product function waits on a row lock the test holds.
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { uniqueEmail, testClient } from '../../test/support.ts'
import { startShop, type Shop } from './runner.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** Polls `check` until it answers something truthy (returned), or throws after `timeoutMs`. */
async function waitUntil<T>(what: string, check: () => T | Promise<T>, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const result = await check()
    if (result) return result
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function send(base: string, method: string, path: string, body?: unknown, token?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  const text = await res.text()
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined }
}

describe('stopping the shop with a request in flight', () => {
  const lines: string[] = []
  let dataDir: string
  let shop: Shop | undefined
  const db = testClient(inject('databaseUrl'))
  afterAll(async () => {
    await db.end().catch(() => {})
    await shop?.stop()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  }, 60_000)

  it('answers the order in flight, refuses new connections meanwhile, and stops product after its callers', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'shop-drain-'))
    const adminPassword = `admin-${randomUUID()}`
    shop = await startShop({
      root,
      ingressPort: 0,
      functionPortBase: 0,
      dataDir,
      databaseUrl: inject('databaseUrl'),
      demoCatalog: false,
      adminEmail: uniqueEmail('admin'),
      adminPassword,
      functionEnv: { BCRYPT_COST: '4', LOG_LEVEL: 'warn', PAYMENT_DELAY_MS: '20' },
      output: (source, line) => lines.push(`${source} ${line}`),
    })
    const base = shop.ingressUrl
    const admin = (await send(base, 'POST', '/api/auth/login', { email: shop.admin.email, password: adminPassword })).json!.token as string
    const product = (await send(base, 'POST', '/api/products', { name: `Held ${randomUUID().slice(0, 6)}`, price_cents: 500, stock: 10 }, admin)).json!
    const email = uniqueEmail('drain')
    expect((await send(base, 'POST', '/api/auth/register', { email, password: 'correct horse battery', name: 'Drain' })).status).toBe(201)
    const token = (await send(base, 'POST', '/api/auth/login', { email, password: 'correct horse battery' })).json!.token as string

    await db.connect()
    await db.query('BEGIN')
    let holding = true
    try {
      // The product's row, locked: the reservation the order asks for waits on it.
      await db.query('SELECT 1 FROM product.products WHERE id = $1 FOR UPDATE', [product.id])
      const me = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
      const answer = send(base, 'POST', '/api/orders', { items: [{ product_id: product.id, quantity: 2 }] }, token, { 'Idempotency-Key': randomUUID() })
      const watcher = testClient(inject('databaseUrl'))
      await watcher.connect()
      try {
        await waitUntil('the order’s reservation to wait on the lock', async () => {
          const { rows } = await watcher.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [me])
          return rows[0]!.n > 0
        })
      } finally {
        await watcher.end()
      }

      const stopping = shop.stop()
      await waitUntil('the ingress to refuse new connections', () =>
        fetch(`${base}/api/products`).then(
          async (r) => (await r.body?.cancel(), false),
          () => true,
        ),
      )
      await db.query('COMMIT')
      holding = false

      const placed = await answer
      expect(placed.status).toBe(201)
      expect(placed.json).toMatchObject({ status: 'pending', items: [{ product_id: product.id, quantity: 2 }] })
      await stopping
      const stored = await db.query('SELECT status FROM orders.orders WHERE id = $1', [placed.json!.id])
      expect(stored.rows).toHaveLength(1)
    } finally {
      if (holding) await db.query('ROLLBACK').catch(() => {})
    }

    const order = lines.filter((l) => /^shop stopping /.test(l))
    expect(order).toEqual(['shop stopping payment, dead-letter, web', 'shop stopping auth, cart, order', 'shop stopping product'])
    expect(shop.restarts()).toEqual({ auth: 0, product: 0, cart: 0, order: 0, payment: 0, 'dead-letter': 0, web: 0 })
  }, 180_000)
})
