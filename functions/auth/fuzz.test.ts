/**
 * The auth function's routes, fuzzed from the API document (test/fuzz.ts) against the real app and
 * database: never a 5xx, always as documented.
 */
import { randomInt } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe } from 'vitest'
import { fuzzOperations } from '../../test/fuzz.ts'
import { appDeps, call, testKeys, testPool, uniqueEmail } from '../../test/support.ts'
import { authApp } from './app.ts'
import { createPasswordHasher } from './password.ts'

const pool = testPool()
const hasher = createPasswordHasher({ cost: 4 })
afterAll(() => hasher.close())
let app: ReturnType<typeof authApp>
let customer: string
let admin: string
const email = uniqueEmail('fuzz')

// Every request as the ingress forwards it, from a client address of this file's own: its failed
// logins count against that address only, never against another test file's.
const client = `198.18.${randomInt(256)}.${randomInt(1, 255)}`
const forwarded = {
  request: (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers)
    headers.set('X-Forwarded-For', [client, headers.get('X-Forwarded-For')].filter(Boolean).join(', '))
    return app.request(path, { ...init, headers })
  },
}

beforeAll(async () => {
  const keys = await testKeys()
  app = authApp({ pool, ...appDeps(), hasher, signer: keys.signer, verify: keys.verify, jwks: keys.jwks as never })
  await call(app, 'POST', '/api/auth/register', { body: { email, password: 'correct horse', name: 'Fuzz' } })
  const login = await call(forwarded, 'POST', '/api/auth/login', { body: { email, password: 'correct horse' } })
  customer = login.json.token
  admin = await keys.tokenFor({ role: 'admin' })
})

describe('the auth API, fuzzed', () => {
  fuzzOperations({
    app: () => forwarded,
    tag: 'auth',
    identities: () => ({ customer, admin }),
    // The account's own email and password (a login that works), or a new email (a register that does).
    values: () => ({
      email: fc.oneof(fc.constant(email), fc.uuid().map((u) => `fuzz-${u}@example.test`)),
      password: fc.oneof(fc.constant('correct horse'), fc.string({ minLength: 8, maxLength: 64 })),
    }),
  })
})
