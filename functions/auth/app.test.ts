import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appDeps, call, testKeys, testPool, uniqueEmail } from '../../test/support.ts'
import { ensureAdmin } from './admin.ts'
import { authApp } from './app.ts'
import { createPasswordHasher } from './password.ts'

const pool = testPool()
// The real bcrypt worker at bcrypt's lowest cost: the same code path, fast enough for tests.
const real = createPasswordHasher({ cost: 4 })
const verified: string[] = []
const hasher = { ...real, verify: (pw: string, hash: string) => (verified.push(hash), real.verify(pw, hash)) }
let keys: Awaited<ReturnType<typeof testKeys>>
let app: ReturnType<typeof authApp>

beforeAll(async () => {
  keys = await testKeys()
  app = authApp({ pool, ...appDeps(), hasher, signer: keys.signer, verify: keys.verify, jwks: keys.jwks as never })
})
afterAll(() => real.close())

const register = async (body: Record<string, unknown> = {}) =>
  call(app, 'POST', '/api/auth/register', { body: { email: uniqueEmail(), password: 'correct horse', name: 'Ada', ...body } })
const login = (email: string, password: string) => call(app, 'POST', '/api/auth/login', { body: { email, password } })

describe('POST /api/auth/register', () => {
  it('creates a customer and answers 201 with the user, never the hash', async () => {
    const email = uniqueEmail()
    const res = await register({ email: `  ${email.toUpperCase()} ` })
    expect(res.status).toBe(201)
    expect(res.json).toMatchObject({ email, name: 'Ada', role: 'customer' })
    expect(Object.keys(res.json).sort()).toEqual(['created_at', 'email', 'id', 'name', 'role'])
    const { rows } = await pool.query('SELECT password_hash FROM auth.users WHERE email = $1', [email])
    expect(rows[0].password_hash).toMatch(/^\$2[aby]\$04\$/)
  })

  it('answers 409 for a taken email, whatever its case', async () => {
    const email = uniqueEmail()
    expect((await register({ email })).status).toBe(201)
    const again = await register({ email: email.toUpperCase() })
    expect(again.status).toBe(409)
    expect(again.headers.get('Content-Type')).toBe('application/problem+json')
  })

  it.each([
    [{ role: 'admin' }, 'role'],
    [{ password: 'short' }, 'password'],
    [{ password: 'x'.repeat(65) }, 'password'],
    [{ password: 'é'.repeat(37) }, 'password'],
    [{ password: 12345678 }, 'password'],
    [{ email: 'not-an-email' }, 'email'],
    [{ email: "a@b.c' OR 1=1 --" }, 'email'],
    [{ name: '' }, 'name'],
    [{ name: 'x'.repeat(101) }, 'name'],
    [{ name: 'a\u0000b' }, 'name'],
  ])('answers 400 naming the field for %j', async (body, field) => {
    const res = await register(body)
    expect(res.status).toBe(400)
    expect(res.json.errors.map((e: { path: string }) => e.path)).toContain(field)
  })

  it('refuses a 73-byte password rather than truncating it', async () => {
    const password = 'é'.repeat(36) + 'a' // 73 bytes in 37 characters
    const res = await register({ password })
    expect(res.status).toBe(400)
    expect(res.json.errors[0].message).toMatch(/72 bytes/)
  })

  it('accepts a 72-byte password of multi-byte characters', async () => {
    expect((await register({ password: 'ü'.repeat(36) })).status).toBe(201)
  })
})

describe('POST /api/auth/login', () => {
  it('answers a token, its type and lifetime, and the user', async () => {
    const email = uniqueEmail()
    await register({ email })
    const res = await login(email.toUpperCase(), 'correct horse')
    expect(res.status).toBe(200)
    expect(res.json).toMatchObject({ token_type: 'Bearer', expires_in: 86400, user: { email, role: 'customer' } })
    const user = await keys.verify(res.json.token)
    expect(user).toMatchObject({ id: res.json.user.id, email, role: 'customer' })
    expect(user.exp - Date.now() / 1000).toBeGreaterThan(86_000)
  })

  it('answers an unknown email exactly as a wrong password, after a real bcrypt compare', async () => {
    const email = uniqueEmail()
    await register({ email })
    verified.length = 0
    const wrong = await login(email, 'wrong password')
    const unknown = await login(uniqueEmail(), 'wrong password')
    expect(wrong.status).toBe(401)
    expect(unknown.status).toBe(401)
    const strip = (j: Record<string, unknown>) => ({ ...j, request_id: undefined })
    expect(strip(unknown.json)).toEqual(strip(wrong.json))
    expect(verified).toHaveLength(2)
    expect(verified.every((h) => /^\$2[aby]\$04\$.{53}$/.test(h))).toBe(true)
  })

  it('answers 429 with Retry-After after 10 failures a minute, for known and unknown emails alike', async () => {
    const known = uniqueEmail()
    await register({ email: known })
    for (const email of [known, uniqueEmail()]) {
      for (let i = 0; i < 10; i++) expect((await login(email, 'wrong password')).status).toBe(401)
      const locked = await login(email, 'wrong password')
      expect(locked.status).toBe(429)
      expect(Number(locked.headers.get('Retry-After'))).toBeGreaterThan(0)
    }
  })

  it('locks out the right password too while locked, and other emails not at all', async () => {
    const email = uniqueEmail()
    const other = uniqueEmail()
    await register({ email })
    await register({ email: other })
    for (let i = 0; i < 10; i++) await login(email, 'wrong password')
    expect((await login(email, 'correct horse')).status).toBe(429)
    expect((await login(other, 'correct horse')).status).toBe(200)
  })

  it('forgets failures after a success', async () => {
    const email = uniqueEmail()
    await register({ email })
    for (let i = 0; i < 9; i++) await login(email, 'wrong password')
    expect((await login(email, 'correct horse')).status).toBe(200)
    for (let i = 0; i < 9; i++) await login(email, 'wrong password')
    expect((await login(email, 'correct horse')).status).toBe(200)
  })

  it.each([[{ email: 'a@b.co' }], [{ email: 'a@b.co', password: 'x'.repeat(73) }], [{ email: 'a@b.co', password: 'long enough', extra: 1 }]])(
    'answers 400 for %j',
    async (body) => {
      expect((await call(app, 'POST', '/api/auth/login', { body })).status).toBe(400)
    },
  )
})

describe('GET /api/auth/validate and /api/auth/me', () => {
  it('validates a token of an existing user and sets X-User-ID', async () => {
    const email = uniqueEmail()
    await register({ email })
    const { token, user } = (await login(email, 'correct horse')).json
    const res = await call(app, 'GET', '/api/auth/validate', { token })
    expect(res.status).toBe(200)
    expect(res.headers.get('X-User-ID')).toBe(user.id)
    expect(res.json).toMatchObject({ valid: true, user_id: user.id, email, role: 'customer' })
    expect(typeof res.json.exp).toBe('number')
    expect((await call(app, 'GET', '/api/auth/me', { token })).json).toEqual(user)
  })

  it('answers 401 for a token whose user no longer exists', async () => {
    const token = await keys.tokenFor({ id: randomUUID() })
    expect((await call(app, 'GET', '/api/auth/validate', { token })).status).toBe(401)
    expect((await call(app, 'GET', '/api/auth/me', { token })).status).toBe(401)
  })

  it('answers 401 without a token', async () => {
    expect((await call(app, 'GET', '/api/auth/validate')).status).toBe(401)
  })
})

describe('GET /api/auth/jwks.json', () => {
  it('serves the public keys and nothing private', async () => {
    const res = await call(app, 'GET', '/api/auth/jwks.json')
    expect(res.json.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: keys.privateJwk.kid })
    expect(res.text).not.toContain('"d"')
  })
})

describe('ensureAdmin', () => {
  it('creates the admin, keeps it, and takes a new password', async () => {
    const email = uniqueEmail('admin')
    expect(await ensureAdmin({ pool, hasher, email, password: 'first password' })).toBe('created')
    expect(await ensureAdmin({ pool, hasher, email, password: 'first password' })).toBe('kept')
    expect(await ensureAdmin({ pool, hasher, email, password: 'second password' })).toBe('updated')
    const res = await login(email, 'second password')
    expect(res.json.user.role).toBe('admin')
  })

  it('promotes an existing customer account of that email', async () => {
    const email = uniqueEmail('admin')
    await register({ email })
    expect(await ensureAdmin({ pool, hasher, email, password: 'admin password' })).toBe('updated')
    expect((await login(email, 'admin password')).json.user.role).toBe('admin')
  })
})
