/**
 * `npm run redrive` against a dead-letter function that listens on a port, on a database of its
 * own: a redrive without filters takes every waiting dead letter, and other test files' must not
 * be among them.
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import { CloudEvent, HTTP } from 'cloudevents'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { startSubscriber, type Subscriber } from '../../eventing/local/recording-subscriber.ts'
import { deadLetterApp } from '../../functions/dead-letter/app.ts'
import { createPool, type Pool } from '../../shared/db.ts'
import { createMetrics } from '../../shared/metrics.ts'
import { quietLog } from '../../test/support.ts'
import { createTestDatabase, type TestDatabase } from '../../test/test-database.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const [orders, payments] = ['order.created', 'payment.status']

let database: TestDatabase
let pool: Pool
let broker: Subscriber
let server: Server
let url: string
let app: ReturnType<typeof deadLetterApp>

beforeAll(async () => {
  database = await createTestDatabase(inject('databaseUrl'))
  pool = createPool({ connectionString: database.url, applicationName: 'test', log: quietLog })
  broker = await startSubscriber(() => 202)
  // payment.status has no Broker here: its dead letter cannot be redriven, and says why.
  app = deadLetterApp({ pool, log: quietLog, metrics: createMetrics({ defaults: false }), brokerUrls: { [orders]: `${broker.url}/` } })
  server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server))
  })
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()))
  await broker?.close()
  await pool?.end()
  await database?.drop()
})

async function store(type: string) {
  const event = new CloudEvent({ id: randomUUID(), source: '/shop/test', type, datacontenttype: 'application/json', data: { n: 1 }, knativeerrorcode: '503' })
  const { headers, body } = HTTP.binary(event)
  const res = await app.request('/', { method: 'POST', headers: headers as Record<string, string>, body: body as string })
  expect(res.status).toBe(204)
  return event.id
}

/** Runs a command of the repository; answers its exit code and output, whatever the code. */
function run(file: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(file, args, { cwd: root, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}
const redrive = (args: string[], env?: Record<string, string>) => run(process.execPath, ['--import', 'tsx', 'knative/local/redrive.ts', ...args], env)

// Each test spawns node with tsx a few times, which takes seconds on a busy machine.
describe('npm run redrive', { timeout: 60_000 }, () => {
  it('redrives every waiting dead letter, prints each, and exits 1 while some keep waiting', async () => {
    const a = await store(orders)
    const b = await store(orders)
    const c = await store(payments)
    const { code, stdout } = await run('npm', ['run', '--silent', 'redrive', '--', '--url', url])
    expect(stdout.trim().split('\n')).toEqual([
      `redriven  ${orders}  ${a}  (/shop/test) -> ${broker.url}/`,
      `redriven  ${orders}  ${b}  (/shop/test) -> ${broker.url}/`,
      `failed    ${payments}  ${c}  (/shop/test): no broker for type ${payments}: BROKER_URLS does not name it`,
      '2 redriven, 1 failed (they keep waiting: run it again once their broker is back)',
    ])
    expect(code).toBe(1)
    expect(broker.received.map((r) => r.headers['ce-id'])).toEqual([a, b])
  })

  it('takes the filters, finds the function where npm start runs it, and exits 0 when nothing failed', async () => {
    const d = await store(orders)
    const e = await store(orders)
    const port = (server.address() as AddressInfo).port
    // npm start gives dead-letter FUNCTION_PORT_BASE + 5.
    const env = { FUNCTION_PORT_BASE: String(port - 5) }
    const one = await redrive(['--type', orders, '--id', e], env)
    expect(one).toMatchObject({ code: 0, stdout: `redriven  ${orders}  ${e}  (/shop/test) -> ${broker.url}/\n1 redriven, 0 failed\n` })
    const rest = await redrive(['--type', orders, '--limit', '5'], env)
    expect(rest).toMatchObject({ code: 0, stdout: `redriven  ${orders}  ${d}  (/shop/test) -> ${broker.url}/\n1 redriven, 0 failed\n` })
    expect(await redrive(['--type', orders], env)).toMatchObject({ code: 0, stdout: 'nothing to redrive\n' })
    expect(broker.received.slice(-2).map((r) => r.headers['ce-id'])).toEqual([e, d])
  })

  it('exits 2, saying why, for bad options, a refused request, or no function there', async () => {
    expect(await redrive(['--limit', 'many'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--limit must be a whole number') })
    expect(await redrive(['--url', url, '--limit', '0'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/answered 400: .*limit must be at least 1/) })
    const gone = await startSubscriber()
    await gone.close()
    expect(await redrive(['--url', gone.url])).toMatchObject({ code: 2, stderr: expect.stringContaining('did not answer') })
  })
})
