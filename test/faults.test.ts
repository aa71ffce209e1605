/**
 * Faults under load, on the real local runner (bundles as processes, ingress, broker): the payment
 * function killed outright three times while orders come in, which the runner restarts as the
 * kubelet would; and the payment function frozen (SIGSTOP) for longer than its Trigger retries, so
 * that its deliveries dead-letter, then thawed, when the order sweep's re-announcements finish the
 * job. Each shop has a database and a broker namespace of its own: another test's order sweep must
 * not announce these orders to its own payment function. On RabbitMQ when AMQP_URL is set,
 * otherwise on the in-memory broker (the retries, the restarts and the sweep live in the runner
 * and the functions either way). E2E_VERBOSE=1 shows the stack's log lines.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { parseAllDocuments, stringify } from 'yaml'
import { deleteTopology } from '../eventing/local/delete-topology.ts'
import { dropDatabase, withDatabase } from '../knative/local/databases.ts'
import { startShop, type Shop } from '../knative/local/runner.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const amqpUrl = process.env.AMQP_URL
const mode = amqpUrl ? 'rabbitmq' : 'memory'
const REANNOUNCE_AFTER_S = 5
const STOCK = 1_000

type Line = { source: string; line: string }

// Undone after each test, last first, whatever happened in it.
const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const undo of cleanups.splice(0).reverse()) await undo().catch((err: unknown) => console.warn(`faults cleanup: ${String(err)}`))
}, 120_000)

/**
 * `eventing/` with every Broker's and Trigger's delivery shortened to `delivery` (dead-letter sink
 * kept): a retry budget of seconds, so a test can outlast it. Answers the temp dir.
 */
async function shortDeliveries(delivery: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shop-faults-eventing-'))
  const source = join(root, 'eventing')
  for (const file of (await readdir(source)).filter((f) => f.endsWith('.yaml'))) {
    const docs = parseAllDocuments(await readFile(join(source, file), 'utf8')).map((d) => d.toJS() as { kind?: string; spec?: { delivery?: object } } | null)
    for (const doc of docs) {
      if ((doc?.kind === 'Trigger' || doc?.kind === 'Broker') && doc.spec?.delivery) doc.spec.delivery = { ...doc.spec.delivery, ...delivery }
    }
    await writeFile(join(dir, file), docs.map((d) => stringify(d)).join('---\n'))
  }
  return dir
}

/** A shop of its own (database, broker namespace, data dir), a pool on its database, and an admin token. */
async function startFaultShop({ functionEnv, manifestsDir }: { functionEnv: Record<string, string>; manifestsDir?: string }) {
  const serverUrl = inject('databaseUrl')
  const name = `shop_faults_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`
  const databaseUrl = withDatabase(serverUrl, name)
  const namespace = `faults${randomBytes(4).toString('hex')}`
  const dataDir = await mkdtemp(join(tmpdir(), 'shop-faults-'))
  const eventing = manifestsDir ?? join(root, 'eventing')
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }))
  if (manifestsDir) cleanups.push(() => rm(manifestsDir, { recursive: true, force: true }))
  cleanups.push(() => dropDatabase(serverUrl, name))
  if (amqpUrl) cleanups.push(() => deleteTopology(amqpUrl, eventing, namespace))

  const lines: Line[] = []
  const adminPassword = `admin-${randomUUID()}`
  const shop = await startShop({
    root,
    ingressPort: 0,
    functionPortBase: 0,
    dataDir,
    databaseUrl,
    ...(amqpUrl ? { amqpUrl } : {}),
    brokerNamespace: namespace,
    manifestsDir: eventing,
    demoCatalog: false,
    adminEmail: 'admin@faults.test',
    adminPassword,
    functionEnv: { BCRYPT_COST: '4', LOG_LEVEL: 'warn', PAYMENT_DELAY_MS: '100', ORDER_REANNOUNCE_AFTER_S: String(REANNOUNCE_AFTER_S), ...functionEnv },
    // The sweep close to its threshold; the reservation expiry is not what these tests are about.
    pingSchedules: { 'order-outbox-flush': '@every 1s', 'product-reservations-expire': '@every 15s' },
    output: (source, line) => {
      lines.push({ source, line })
      if (process.env.E2E_VERBOSE) process.stdout.write(`${source.padEnd(11)} ${line}\n`)
    },
  })
  cleanups.push(() => shop.stop())
  const db = new pg.Pool({ connectionString: databaseUrl, max: 2 })
  // An idle connection cut under the pool emits 'error' on it: heard, not a crash of the test worker.
  db.on('error', () => {})
  cleanups.push(() => db.end())
  const admin = await call(shop.ingressUrl, 'POST', '/api/auth/login', { body: { email: shop.admin.email, password: adminPassword } })
  expect(admin.status).toBe(200)
  return { shop, db, lines, adminToken: admin.json.token as string }
}

async function call(base: string, method: string, path: string, { body, token, headers = {} }: { body?: unknown; token?: string; headers?: Record<string, string> } = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  const text = await res.text()
  return { status: res.status, json: text ? JSON.parse(text) : undefined }
}

/** Polls `check` until it answers something truthy (returned), or throws after `timeoutMs` with what `last` says. */
async function waitUntil<T>(what: string, check: () => T | Promise<T>, timeoutMs: number, last: () => unknown = () => ''): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const result = await check()
    if (result) return result
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms: ${JSON.stringify(await last())}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** A product with `STOCK` units, and `n` signed-in shoppers. */
async function stockAndShoppers(base: string, adminToken: string, n: number) {
  const product = await call(base, 'POST', '/api/products', { token: adminToken, body: { name: `Faulty ${randomUUID().slice(0, 6)}`, price_cents: 700, stock: STOCK } })
  expect(product.status).toBe(201)
  const tokens = await Promise.all(
    Array.from({ length: n }, async () => {
      const email = `faults-${randomUUID().slice(0, 12)}@example.test`
      expect((await call(base, 'POST', '/api/auth/register', { body: { email, password: 'correct horse battery', name: 'Shopper' } })).status).toBe(201)
      const login = await call(base, 'POST', '/api/auth/login', { body: { email, password: 'correct horse battery' } })
      expect(login.status).toBe(200)
      return login.json.token as string
    }),
  )
  return { productId: product.json.id as string, tokens }
}

/**
 * Places `count` orders of 1 to 3 units, `concurrency` at a time, shoppers taking turns; `before(i)`
 * may hold order i back. Answers the ids; every answer must be 201 (payment is not on this path).
 */
async function placeOrders(base: string, productId: string, tokens: string[], count: number, concurrency: number, before: (i: number) => Promise<void> = async () => {}) {
  const ids: string[] = []
  const wrong: string[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        await before(i)
        const placed = await call(base, 'POST', '/api/orders', {
          token: tokens[i % tokens.length]!,
          body: { items: [{ product_id: productId, quantity: (i % 3) + 1 }] },
          headers: { 'Idempotency-Key': randomUUID() },
        })
        if (placed.status === 201) ids.push(placed.json.id as string)
        else wrong.push(`${placed.status} ${JSON.stringify(placed.json)}`)
      }
    }),
  )
  expect(wrong).toEqual([])
  return ids
}

/** Orders still pending among `ids`. */
const pendingOf = async (db: pg.Pool, ids: string[]) =>
  (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders.orders WHERE id = ANY($1::uuid[]) AND status = 'pending'`, [ids])).rows[0]!.n

/**
 * What the database says once every order is final: each order with exactly one payment in the
 * matching status, its reservation confirmed (paid) or released (failed), and the product's stock
 * at STOCK less the units of the paid orders (waited for: product hears of a failure on its own).
 */
async function expectSettled(db: pg.Pool, ids: string[], productId: string) {
  const { rows: orders } = await db.query<{ id: string; status: string; payment_id: string | null; units: number }>(
    `SELECT o.id, o.status, o.payment_id, (SELECT sum(quantity)::int FROM orders.order_items i WHERE i.order_id = o.id) AS units
       FROM orders.orders o WHERE o.id = ANY($1::uuid[])`,
    [ids],
  )
  expect(orders).toHaveLength(ids.length)
  const { rows: payments } = await db.query<{ id: string; order_id: string; status: string }>('SELECT id, order_id, status FROM payment.payments WHERE order_id = ANY($1::uuid[])', [ids])
  const byOrder = new Map<string, { id: string; status: string }[]>()
  for (const p of payments) byOrder.set(p.order_id, [...(byOrder.get(p.order_id) ?? []), p])
  const wrong = orders.flatMap((o) => {
    const mine = byOrder.get(o.id) ?? []
    const want = { paid: 'succeeded', payment_failed: 'failed' }[o.status]
    if (!want) return [`${o.id}: ${o.status}`]
    if (mine.length !== 1) return [`${o.id}: ${mine.length} payments`]
    if (mine[0]!.status !== want || mine[0]!.id !== o.payment_id) return [`${o.id}: order ${o.status} (${o.payment_id}), payment ${mine[0]!.status} (${mine[0]!.id})`]
    return []
  })
  expect(wrong).toEqual([])

  const sold = orders.filter((o) => o.status === 'paid').reduce((n, o) => n + o.units, 0)
  // Product hears of each order and each failed payment on its own Triggers: it may be a moment behind.
  const product = async () => {
    const stock = (await db.query<{ stock: number }>('SELECT stock FROM product.products WHERE id = $1', [productId])).rows[0]!.stock
    const { rows } = await db.query<{ reservation: string; order: string; n: number }>(
      `SELECT r.status AS reservation, o.status AS order, count(*)::int AS n FROM product.reservations r JOIN orders.orders o ON o.id = r.order_id
        WHERE r.order_id = ANY($1::uuid[]) GROUP BY 1, 2 ORDER BY 1, 2`,
      [ids],
    )
    return { stock, expected: STOCK - sold, reservations: rows }
  }
  const agrees = ({ stock, expected, reservations }: Awaited<ReturnType<typeof product>>) =>
    stock === expected &&
    reservations.reduce((n, r) => n + r.n, 0) === ids.length &&
    reservations.every((r) => (r.order === 'paid' ? r.reservation === 'confirmed' : r.reservation === 'released'))
  await waitUntil('the stock and the reservations to follow the orders', async () => agrees(await product()), 60_000, product)
  return { paid: orders.filter((o) => o.status === 'paid').length, failed: orders.filter((o) => o.status === 'payment_failed').length, sold }
}

describe(`faults on the local shop, broker ${mode}`, () => {
  it('payment killed (SIGKILL) three times during 200 orders: restarted each time, every order final, one payment each, stock right', async () => {
    const { shop, db, lines, adminToken } = await startFaultShop({ functionEnv: {} })
    const base = shop.ingressUrl
    const { productId, tokens } = await stockAndShoppers(base, adminToken, 5)

    // Kill k comes once THRESHOLDS[k] orders are placed and a payment process runs (the one
    // restarted after the last kill); orders past it by more than a few wait for it, so that the
    // kills fall among the orders, not after them.
    const THRESHOLDS = [40, 90, 140]
    const killed: number[] = []
    let placed = 0
    const killer = (async () => {
      for (const threshold of THRESHOLDS) {
        const pid = await waitUntil(
          `order ${threshold} and a payment process to kill`,
          () => {
            const now = shop.pid('payment')
            return placed >= threshold && now !== undefined && !killed.includes(now) ? now : undefined
          },
          90_000,
        )
        process.kill(pid, 'SIGKILL')
        killed.push(pid)
      }
    })()
    const ids = await placeOrders(base, productId, tokens, 200, 10, async (i) => {
      const due = THRESHOLDS.filter((t) => i >= t + 20).length
      await waitUntil(`kill ${due} before order ${i}`, () => killed.length >= due, 90_000)
      placed += 1
    })
    await killer
    expect(ids).toHaveLength(200)

    await waitUntil('every order to be final', async () => (await pendingOf(db, ids)) === 0, 150_000, async () => ({ pending: await pendingOf(db, ids) }))
    const outcome = await expectSettled(db, ids, productId)
    expect(outcome.paid + outcome.failed).toBe(200)

    expect(shop.restarts()).toMatchObject({ payment: 3, order: 0, product: 0, cart: 0 })
    const restarts = lines.filter((l) => l.source === 'shop' && l.line.startsWith('payment exited')).map((l) => l.line)
    expect(restarts).toHaveLength(3)
    expect(restarts[0]).toMatch(/^payment exited with code none \(signal SIGKILL\); restarting in 1s \(restart #1\)$/)
    expect(restarts[2]).toMatch(/\(restart #3\)$/)
  }, 300_000)

  it('payment stopped (SIGSTOP) past its retry budget, then resumed: every order final within the re-announce time plus a minute', async () => {
    // Three tries of 2 s at most with 0.4 s and 0.8 s between: about 7 s to a dead letter.
    const manifestsDir = await shortDeliveries({ retry: 2, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S', timeout: 'PT2S' })
    const { shop, db, lines, adminToken } = await startFaultShop({ functionEnv: {}, manifestsDir })
    const base = shop.ingressUrl
    const { productId, tokens } = await stockAndShoppers(base, adminToken, 4)

    const pid = shop.pid('payment')!
    process.kill(pid, 'SIGSTOP')
    let frozen = true
    try {
      const ids = await placeOrders(base, productId, tokens, 20, 5)
      // Every order's first order.created, given up on by payment's Trigger: the retry budget is spent.
      const { rows: first } = await db.query<{ id: string }>(
        `SELECT DISTINCT ON (data->>'order_id') id FROM orders.outbox WHERE type = 'order.created' AND (data->>'order_id')::uuid = ANY($1::uuid[])
          ORDER BY data->>'order_id', created_at`,
        [ids],
      )
      expect(first).toHaveLength(ids.length)
      const deadLettered = () =>
        new Set(
          lines
            .filter((l) => l.source === 'broker' && l.line.includes('"event dead-lettered"'))
            .map((l) => JSON.parse(l.line) as { trigger?: string; id?: string })
            .filter((l) => l.trigger === 'payment-on-order-created')
            .map((l) => l.id),
        )
      await waitUntil('payment’s deliveries of every order to be dead-lettered', () => first.every((e) => deadLettered().has(e.id)), 120_000, () => ({
        deadLettered: first.filter((e) => deadLettered().has(e.id)).length,
        of: first.length,
      }))
      // Frozen, it charged nothing; the orders wait.
      expect(await pendingOf(db, ids)).toBe(ids.length)
      expect((await db.query('SELECT 1 FROM payment.payments WHERE order_id = ANY($1::uuid[])', [ids])).rowCount).toBe(0)

      process.kill(pid, 'SIGCONT')
      frozen = false
      await waitUntil('every order to be final', async () => (await pendingOf(db, ids)) === 0, (REANNOUNCE_AFTER_S + 60) * 1000, async () => ({ pending: await pendingOf(db, ids) }))
      const outcome = await expectSettled(db, ids, productId)
      expect(outcome.paid + outcome.failed).toBe(ids.length)
      // Frozen is not exited: the same process went on.
      expect(shop.pid('payment')).toBe(pid)
      expect(shop.restarts().payment).toBe(0)
    } finally {
      if (frozen) process.kill(pid, 'SIGCONT')
    }
  }, 300_000)
})
