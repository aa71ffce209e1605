/**
 * The built bundles, run as processes the way Knative runs them: configuration errors, a
 * request served, and SIGTERM finishing what is in flight before exiting 0.
 */
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { uniqueEmail } from './support.ts'

const root = new URL('..', import.meta.url).pathname

beforeAll(async () => {
  await promisify(execFile)('node', ['build.mjs'], { cwd: root })
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

const dbEnv = () => ({
  DATABASE_URL: inject('databaseUrl'),
  DATABASE_NAMED_STATEMENTS: inject('realPostgres') ? 'on' : 'off',
})

describe('a bundle', () => {
  it('stops at start with a message naming a bad variable', async () => {
    const fn = start('product', { ...dbEnv(), JWT_PUBLIC_KEYS: '{"keys": []}', MIGRATE: 'later' })
    const [code] = await fn.exited
    expect(code).toBe(1)
    expect(fn.output()).toMatch(/product: invalid configuration:/)
    expect(fn.output()).toMatch(/MIGRATE: must be one of auto, only, off/)
    expect(fn.output()).toMatch(/JWT_PUBLIC_KEYS\.keys: needs at least one key/)
    expect(fn.output()).not.toMatch(/at .*\.mjs:\d+/)
  })

  it.each([['1.5'], ['abc']])('stops payment at start for PAYMENT_SUCCESS_RATE=%s', async (rate) => {
    const jwks = JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'x', kid: 'k' }] })
    const fn = start('payment', { ...dbEnv(), JWT_PUBLIC_KEYS: jwks, PAYMENT_SUCCESS_RATE: rate })
    const [code] = await fn.exited
    expect(code).toBe(1)
    expect(fn.output()).toContain(`PAYMENT_SUCCESS_RATE: must be a number from 0 to 1 (got "${rate}")`)
  })

  it('serves, then on SIGTERM finishes the request in flight and exits 0', async () => {
    const fn = start('auth', { ...dbEnv(), BCRYPT_COST: '10' })
    const base = `http://127.0.0.1:${await fn.port}`
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    const email = uniqueEmail()
    const body = JSON.stringify({ email, password: 'long enough', name: 'Ada' })
    // Registering hashes at cost 10 (~100 ms): SIGTERM lands while it is in flight.
    const pending = fetch(`${base}/api/auth/register`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })
    await new Promise((r) => setTimeout(r, 30))
    fn.child.kill('SIGTERM')
    expect((await pending).status).toBe(201)
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

  it('refuses to start auth in production without a private key', async () => {
    const fn = start('auth', { ...dbEnv(), NODE_ENV: 'production' })
    const [code] = await fn.exited
    expect(code).toBe(1)
    expect(fn.output()).toMatch(/JWT_PRIVATE_KEY: is required in production/)
  })
})
