/**
 * The built bundles, run as processes the way Knative runs them: configuration errors, a
 * request served, and SIGTERM finishing what is in flight before exiting 0.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { beforeAll, describe, expect, inject, it, onTestFinished, vi } from 'vitest'
import { buildIfStale } from '../knative/local/runner.ts'
import { EXIT_CONFIG } from '../shared/config.ts'
import { uniqueEmail } from './support.ts'

const root = new URL('..', import.meta.url).pathname

// Only when the sources are newer, as npm start does: an unconditional build deletes each bundle
// before writing it again, under the feet of any other test starting the local stack meanwhile.
beforeAll(async () => {
  await buildIfStale(root, () => {})
}, 60_000)

function start(name: string, env: Record<string, string>) {
  const child = spawn('node', [`dist/${name}/index.mjs`], {
    cwd: root,
    env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const port = new Promise<number>((resolve, reject) => {
    child.stdout.on('data', () => {
      const m = /"msg":"listening","port":(\d+)/.exec(output)
      if (m) resolve(Number(m[1]))
    })
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${output}`)))
  })
  port.catch(() => {}) // a test that expects an exit does not wait for a port
  return { child, port, output: () => output, exited: once(child, 'exit') as Promise<[number | null]> }
}

const dbEnv = () => ({ DATABASE_URL: inject('databaseUrl') })

/** `vi.waitFor` with room for a loaded machine: a wait for a condition, never for a time. */
const waitFor = <T>(check: () => T) => vi.waitFor(check, { timeout: 10_000, interval: 10 })

/**
 * A TCP proxy this test owns in front of the test database. `hold()` keeps what clients send
 * from reaching the database (answers already on their way still come back) until `release()`:
 * a request that needs the database is then in flight for exactly as long as the test says.
 * `held()` is what is waiting, so the test can tell when a given query is.
 */
async function startHoldingProxy(database: string) {
  const target = new URL(database)
  const sockets = new Set<Socket>()
  const waiting: { upstream: Socket; chunk: Buffer }[] = []
  let holding = false
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname)
    for (const [socket, other] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => (sockets.delete(socket), other.destroy()))
    }
    client.on('data', (chunk: Buffer) => (holding ? waiting.push({ upstream, chunk }) : upstream.write(chunk)))
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = new URL(database)
  url.hostname = '127.0.0.1'
  url.port = String((server.address() as AddressInfo).port)
  return {
    url: url.href,
    hold: () => void (holding = true),
    held: () => Buffer.concat(waiting.map((w) => w.chunk)),
    release() {
      holding = false
      for (const { upstream, chunk } of waiting.splice(0)) upstream.write(chunk)
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
      }),
  }
}

describe('a bundle', () => {
  it('stops at start with a message naming a bad variable, and exit code 78 (EX_CONFIG: starting it again cannot help)', async () => {
    const fn = start('product', { ...dbEnv(), JWT_PUBLIC_KEYS: '{"keys": []}', MIGRATE: 'later' })
    const [code] = await fn.exited
    expect(code).toBe(EXIT_CONFIG)
    expect(fn.output()).toMatch(/product: invalid configuration:/)
    expect(fn.output()).toMatch(/MIGRATE: must be one of auto, only, off/)
    expect(fn.output()).toMatch(/JWT_PUBLIC_KEYS\.keys: needs at least one key/)
    expect(fn.output()).not.toMatch(/at .*\.mjs:\d+/)
  })

  it.each([['1.5'], ['abc']])('stops payment at start for PAYMENT_SUCCESS_RATE=%s', async (rate) => {
    const jwks = JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'x', kid: 'k' }] })
    const fn = start('payment', { ...dbEnv(), JWT_PUBLIC_KEYS: jwks, PAYMENT_SUCCESS_RATE: rate })
    const [code] = await fn.exited
    expect(code).toBe(EXIT_CONFIG)
    expect(fn.output()).toContain(`PAYMENT_SUCCESS_RATE: must be a number from 0 to 1 (got "${rate}")`)
  })

  it('serves, then on SIGTERM finishes the request in flight and exits 0', async () => {
    const database = await startHoldingProxy(inject('databaseUrl'))
    const fn = start('auth', { ...dbEnv(), DATABASE_URL: database.url, BCRYPT_COST: '4' })
    onTestFinished(async () => {
      if (fn.child.exitCode === null) fn.child.kill('SIGKILL')
      await database.close()
    })
    const base = `http://127.0.0.1:${await fn.port}`
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    const email = uniqueEmail()
    const body = JSON.stringify({ email, password: 'long enough', name: 'Ada' })
    // The register request stays in flight until the test lets its INSERT (which carries the
    // email) through to the database.
    database.hold()
    const pending = fetch(`${base}/api/auth/register`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })
    await waitFor(() => expect(database.held().includes(email)).toBe(true))
    fn.child.kill('SIGTERM')
    await waitFor(() => expect(fn.output()).toMatch(/"msg":"stopping: finishing requests in flight"/))
    expect(fn.child.exitCode).toBe(null)
    database.release()
    const res = await pending
    expect(res.status).toBe(201)
    expect(await res.json()).toMatchObject({ email })
    const [code] = await fn.exited
    expect(code).toBe(0)
    expect(fn.output()).toMatch(/"msg":"stopped"/)
    expect(fn.output()).toMatch(/JWT_PRIVATE_KEY is not set/)
  })

  it('with MIGRATE=only migrates and exits 0 without serving', async () => {
    const fn = start('product', { ...dbEnv(), MIGRATE: 'only', JWT_PUBLIC_KEYS: JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'x', kid: 'k' }] }) })
    const [code] = await fn.exited
    expect(code).toBe(0)
    expect(fn.output()).toMatch(/migrations done/)
    expect(fn.output()).not.toMatch(/listening/)
  })

  it('says in one line, without a stack, that the database it names does not exist', async () => {
    const url = new URL(inject('databaseUrl'))
    url.pathname = `/shop_missing_${Date.now().toString(36)}`
    const jwks = JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'x', kid: 'k' }] })
    const fn = start('product', { DATABASE_URL: url.href, JWT_PUBLIC_KEYS: jwks })
    const [code] = await fn.exited
    expect(code).toBe(1)
    expect(fn.output().trim().split('\n').filter((l) => !l.startsWith('{'))).toEqual([
      `product: failed to start: the database: database "${url.pathname.slice(1)}" does not exist (3D000)`,
    ])
  })

  it('refuses to start auth in production without a private key', async () => {
    const fn = start('auth', { ...dbEnv(), NODE_ENV: 'production' })
    const [code] = await fn.exited
    expect(code).toBe(EXIT_CONFIG)
    expect(fn.output()).toMatch(/JWT_PRIVATE_KEY: is required in production/)
  })
})
