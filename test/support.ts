/**
 * Helpers for tests that drive a function's app in-process against the test database.
 */
import { randomUUID } from 'node:crypto'
import { CloudEvent, HTTP } from 'cloudevents'
import pg from 'pg'
import { afterAll, inject } from 'vitest'
import { createTokenSigner, createTokenVerifier, generateSigningKey, type Role } from '../shared/auth.ts'
import { createPool } from '../shared/db.ts'
import { createLogger } from '../shared/log.ts'
import { createMetrics } from '../shared/metrics.ts'
import { checkEventAnswer, checkResponse } from './contract.ts'

export const ISSUER = 'shop-auth'
export const AUDIENCE = 'shop'

/** Logs only what would matter when a test fails. */
export const quietLog = createLogger({ name: 'test', level: (process.env.TEST_LOG_LEVEL as 'error') ?? 'silent' })

/** A pool on the test database, ended after the file's tests. */
export function testPool(max = 5) {
  const pool = createPool({
    connectionString: inject('databaseUrl'),
    applicationName: 'test',
    log: quietLog,
    max,
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

/**
 * A JSON request to an in-process app: `call(app, 'POST', '/api/x', { body, token })`. Every
 * answer is checked against the API document first (test/contract.ts): a route that answers
 * otherwise than its description says fails the test that called it.
 */
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
  checkResponse(method, path, { status: res.status, headers: res.headers, text })
  const json = text && /json/.test(res.headers.get('Content-Type') ?? '') ? JSON.parse(text) : undefined
  return { status: res.status, headers: res.headers, json, text }
}

type RequestApp = { request: (input: string, init?: RequestInit) => Response | Promise<Response> }

/** A `fetch` that hands requests to an in-process app, for clients that take one. */
export const fetchVia = (app: RequestApp): typeof fetch =>
  (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url)
    return app.request(url.pathname + url.search, init)
  }) as typeof fetch

type EventOptions = { type: string; data: unknown; id?: string; source?: string; mode?: 'binary' | 'structured' }

/** Delivers one CloudEvent to an app the way the broker does (binary mode unless asked); the answer is checked as an event route's (test/contract.ts). */
export async function postEvent(app: RequestApp, path: string, { type, data, id = randomUUID(), source = '/test', mode = 'binary' }: EventOptions) {
  const event = new CloudEvent({ type, source, id, datacontenttype: 'application/json', data })
  const { headers, body } = mode === 'binary' ? HTTP.binary(event) : HTTP.structured(event)
  const res = await app.request(path, { method: 'POST', headers: headers as Record<string, string>, body: body as string })
  const answer = { status: res.status, headers: res.headers, text: await res.text() }
  checkEventAnswer(path, answer)
  return answer
}

/** The value of one sample in an app's /metrics text (0 when absent). */
export async function metricValue(app: RequestApp, sample: string): Promise<number> {
  const text = await (await app.request('/metrics')).text()
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '))
  return line ? Number(line.slice(sample.length + 1)) : 0
}

/**
 * A single pg client on `url` (not connected yet), for tests that need one session: a lock held,
 * a transaction left open. Its connection can be cut under it (a backend terminated, a server
 * stopped); pg then emits 'error', which unheard would end the test worker and be reported
 * against no test. Here it is heard, and the client's next statement rejects with it.
 */
export function testClient(url: string): pg.Client {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  return client
}
