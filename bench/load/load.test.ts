/**
 * The load generator for real, briefly: the local runner (bundles as processes, ingress,
 * broker) on free ports against the test database, 5 shoppers for 3 s through the ingress. The
 * test database is shared with other test files that buy their own products meanwhile: the
 * shoppers buy only products made for this run, whose stock nothing else moves.
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { deleteTopology } from '../../eventing/local/delete-topology.ts'
import { startShop, type Shop } from '../../knative/local/runner.ts'
import { uniqueEmail } from '../../test/support.ts'
import { runLoad } from './run.ts'
import { formatSummary } from './summary.ts'

const root = new URL('../..', import.meta.url).pathname
const amqpUrl = process.env.AMQP_URL

const logs: string[] = []
const output = (source: string, line: string) => {
  logs.push(`${source} ${line}`)
  if (process.env.E2E_VERBOSE) process.stdout.write(`${source.padEnd(11)} ${line}\n`)
}

describe(`npm run load against the local stack, broker ${amqpUrl ? 'rabbitmq' : 'memory'}`, () => {
  let shop: Shop
  const adminPassword = `admin-${randomUUID()}`
  const brokerNamespace = `load${randomUUID().slice(0, 8)}`
  let dataDir: string

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'shop-load-test-'))
    shop = await startShop({
      root,
      ingressPort: 0,
      functionPortBase: 0,
      dataDir,
      databaseUrl: inject('databaseUrl'),
      amqpUrl,
      brokerNamespace,
      demoCatalog: false,
      adminEmail: uniqueEmail('admin'),
      adminPassword,
      functionEnv: { PAYMENT_DELAY_MS: '20', BCRYPT_COST: '4', LOG_LEVEL: 'warn' },
      output,
    })
  }, 120_000)

  afterAll(async () => {
    await shop?.stop()
    if (amqpUrl) await deleteTopology(amqpUrl, `${root}eventing`, brokerNamespace)
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  }, 30_000)

  it('keeps every invariant with 5 shoppers for 3 s', async () => {
    const lines: string[] = []
    const post = (path: string, body: unknown, token?: string) =>
      fetch(`${shop.ingressUrl}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      }).then((r) => r.json() as Promise<{ id: string; token: string }>)
    const { token } = await post('/api/auth/login', shop.admin)
    const productIds: string[] = []
    for (const name of ['Kettle', 'Grinder', 'Beans', 'Filters']) productIds.push((await post('/api/products', { name: `Load ${name} ${randomUUID().slice(0, 6)}`, price_cents: 990, stock: 500 }, token)).id)
    const summary = await runLoad({
      target: shop.ingressUrl,
      users: 5,
      durationMs: 3_000,
      settleMs: 30_000,
      productIds,
      progress: (render) => ({ start: () => lines.push(render()), log: () => {}, stop: () => lines.push(render()) }),
    })
    const failed = summary.invariants.filter((i) => !i.pass)
    expect(failed, formatSummary(summary)).toEqual([])
    expect(summary.passed).toBe(true)

    // How far each shopper gets in 3 s depends on the machine; signing up comes first, always.
    expect(summary.load.requests).toBeGreaterThanOrEqual(10)
    const routes = summary.load.routes.map((r) => r.route)
    for (const route of ['POST /api/auth/register', 'POST /api/auth/login']) expect(routes).toContain(route)
    expect(routes.every((r) => !/[0-9a-f]{8}-/.test(r)), 'routes are templates, not raw paths').toBe(true)
    expect(summary.load.elapsed_s).toBeGreaterThanOrEqual(3)
    expect(summary.load.latency_ms.p50).toBeGreaterThan(0)
    expect(summary.load.latency_ms.p99).toBeGreaterThanOrEqual(summary.load.latency_ms.p50)
    expect(summary.users).toBe(5)
    expect(summary.invariants.find((i) => i.name === 'every shopper signed up')!.count).toBe(5)
    // Orders that were placed all became final (the invariant), and the totals agree.
    const final = Object.entries(summary.orders.by_status).filter(([s]) => s !== 'pending').reduce((n, [, c]) => n + c, 0)
    expect(final).toBe(summary.orders.placed)
    expect(lines[0]).toMatch(/^load +0s +\d+ req\/s +0 errors +0 orders placed +0 final$/)

    // The text and the JSON say the same.
    const text = formatSummary(summary)
    expect(text).toContain('PASS  every order final')
    expect(text).toContain('PASS  stock is what it was less the units sold')
    expect(text).toMatch(/PASS: 10 of 10 invariants hold\n$/)
    expect(JSON.parse(JSON.stringify(summary))).toEqual(summary)
  }, 120_000)
})
