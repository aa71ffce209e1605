/**
 * Helpers for tests that drive a function's app in-process against the test database.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, inject } from 'vitest'
import { createTokenSigner, createTokenVerifier, generateSigningKey, type Role } from '../shared/auth.ts'
import { createPool } from '../shared/db.ts'
import { createLogger } from '../shared/log.ts'
import { createMetrics } from '../shared/metrics.ts'

export const ISSUER = 'shop-auth'
export const AUDIENCE = 'shop'

/** Logs only what would matter when a test fails. */
export const quietLog = createLogger({ name: 'test', level: 'silent' })

/** A pool on the test database, ended after the file's tests. */
export function testPool(max = 5) {
  const pool = createPool({
    connectionString: inject('databaseUrl'),
    applicationName: 'test',
    log: quietLog,
    max,
    namedStatements: inject('realPostgres'),
  })
  afterAll(() => pool.end())
  return pool
}

/** The dependencies `createApp` takes, fresh for each app. */
export const appDeps = () => ({ log: quietLog, metrics: createMetrics({ defaults: false }) })

/** A signing key for the file, and what the functions need to verify its tokens. */
export async function testKeys() {
  const { privateJwk, publicJwk } = await generateSigningKey()
  const jwks = { keys: [publicJwk] } as { keys: [typeof publicJwk & { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string }] }
  const signer = await createTokenSigner({ privateJwk, issuer: ISSUER, audience: AUDIENCE })
  const verify = createTokenVerifier({ jwks, issuer: ISSUER, audience: AUDIENCE })
  const tokenFor = (user: { id?: string; email?: string; role?: Role } = {}) =>
    signer.sign({ id: user.id ?? randomUUID(), email: user.email ?? uniqueEmail(), role: user.role ?? 'customer' })
  return { privateJwk, publicJwk, jwks, signer, verify, tokenFor }
}

export const uniqueEmail = (prefix = 'user') => `${prefix}-${randomUUID().slice(0, 12)}@example.test`

type CallOptions = { body?: unknown; token?: string; headers?: Record<string, string> }

/** A JSON request to an in-process app: `call(app, 'POST', '/api/x', { body, token })`. */
export async function call(app: { request: (path: string, init: RequestInit) => Response | Promise<Response> }, method: string, path: string, { body, token, headers = {} }: CallOptions = {}) {
  const res = await app.request(path, {
    method,
    headers: {
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  })
  const text = await res.text()
  const json = text && /json/.test(res.headers.get('Content-Type') ?? '') ? JSON.parse(text) : undefined
  return { status: res.status, headers: res.headers, json, text }
}
