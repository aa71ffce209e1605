import { randomInt, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
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
/** A client address of its own for each test, so that no test counts another's failed logins. */
const randomAddress = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`
let client = randomAddress()
beforeEach(() => {
  client = randomAddress()
})
/** A login as the ingress forwards it: `from` the client address, in X-Forwarded-For (default: this test's). */
const login = (email: string, password: string, from = client, target: { request: typeof app.request } = app) =>
  call(target, 'POST', '/api/auth/login', { body: { email, password }, headers: { 'X-Forwarded-For': from } })

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

  it('says "is required" for each missing field', async () => {
    const res = await call(app, 'POST', '/api/auth/register', { body: {} })
    expect(res.status).toBe(400)
    expect(res.json.errors).toEqual([
      { path: 'email', message: 'is required' },
      { path: 'password', message: 'is required' },
      { path: 'name', message: 'is required' },
    ])
  })

  it.each([
    [{ email: 'ada\u0000@example.test' }, 'email', 'must not contain the NUL character (U+0000)'],
    [{ password: 'correct\u0000horse' }, 'password', 'must not contain the NUL character (U+0000)'],
    [{ name: 'Ada \udc00' }, 'name', 'must be valid Unicode text (it has an unpaired surrogate)'],
    [{ password: 'correct horse \ud83d' }, 'password', 'must be valid Unicode text (it has an unpaired surrogate)'],
  ])('answers 400 for text PostgreSQL or bcrypt cannot take as it is: %j', async (body, path, message) => {
    const res = await register(body)
    expect(res.status).toBe(400)
    expect(res.json.errors).toEqual([{ path, message }])
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

  it('locks out the right password too while locked, from that client only, and other emails not at all', async () => {
    const email = uniqueEmail()
    const other = uniqueEmail()
    await register({ email })
    await register({ email: other })
    for (let i = 0; i < 10; i++) await login(email, 'wrong password')
    const locked = await login(email, 'correct horse')
    expect(locked.status).toBe(429)
    expect(locked.headers.get('Content-Type')).toBe('application/problem+json')
    expect(locked.json.detail).toMatch(/for this email from this address/)
    expect((await login(other, 'correct horse')).status).toBe(200)
    // The owner, from anywhere else, is not locked out by someone guessing.
    expect((await login(email, 'correct horse', randomAddress())).status).toBe(200)
    expect((await login(email, 'correct horse')).status).toBe(429)
  })

  it('takes the client address from the first X-Forwarded-For entry, the one the ingress wrote', async () => {
    const email = uniqueEmail()
    await register({ email })
    // Entries after the first are the hops behind the ingress: changing them changes nothing.
    for (let i = 0; i < 10; i++) await login(email, 'wrong password', `${client}, 10.255.0.${i}`)
    expect((await login(email, 'correct horse', `${client}, 10.255.1.1`)).status).toBe(429)
    expect((await login(email, 'correct horse', client)).status).toBe(429)
  })

  it('counts an IPv6 client by its /64 network', async () => {
    const email = uniqueEmail()
    await register({ email })
    const net = `2001:db8:${randomInt(65536).toString(16)}:${randomInt(65536).toString(16)}`
    for (let i = 0; i < 10; i++) await login(email, 'wrong password', `${net}::${(i + 1).toString(16)}`)
    expect((await login(email, 'correct horse', `${net}:0:0:0:ffff`)).status).toBe(429)
    expect((await login(email, 'correct horse', `2001:db8:ffff:${randomInt(65536).toString(16)}::1`)).status).toBe(200)
  })

  it('forgets failures after a success', async () => {
    const email = uniqueEmail()
    await register({ email })
    for (let i = 0; i < 9; i++) await login(email, 'wrong password')
    expect((await login(email, 'correct horse')).status).toBe(200)
    for (let i = 0; i < 9; i++) await login(email, 'wrong password')
    expect((await login(email, 'correct horse')).status).toBe(200)
  })

  it.each([
    [{ email: 'a@b.co' }, [{ path: 'password', message: 'is required' }]],
    [{}, [{ path: 'email', message: 'is required' }, { path: 'password', message: 'is required' }]],
    [{ email: 'a@b.co', password: 'x'.repeat(73) }, [{ path: 'password', message: 'must be at most 72 bytes in UTF-8' }]],
    [{ email: 'a@b.co', password: '' }, [{ path: 'password', message: 'must not be empty' }]],
    [{ email: 'a@b.co', password: 8 }, [{ path: 'password', message: 'must be a string' }]],
    [{ email: 'a@b.co', password: 'long enough', extra: 1 }, [{ path: 'extra', message: 'is not a known field' }]],
    [{ email: 'a\u0000@b.co', password: 'long enough' }, [{ path: 'email', message: 'must not contain the NUL character (U+0000)' }]],
  ])('answers 400 for %j, naming the field', async (body, errors) => {
    const res = await call(app, 'POST', '/api/auth/login', { body })
    expect(res.status).toBe(400)
    expect(res.json.errors).toEqual(errors)
  })

  it.each([
    ['shorter than a new password may be', 'short'],
    ['longer than a new password may be (65 characters, within 72 bytes)', 'x'.repeat(65)],
    ['with a NUL', 'correct\u0000horse'],
    ['with a lone surrogate', 'correct horse\ud800'],
  ])('answers a wrong password %s like any wrong password: 401', async (_, password) => {
    const email = uniqueEmail()
    await register({ email })
    const res = await login(email, password)
    expect(res.status).toBe(401)
    expect(res.json.detail).toBe('wrong email or password')
  })
})

describe('POST /api/auth/login from one client across many emails (password spraying)', () => {
  const limits = { maxFailures: 3, windowSeconds: 60, lockSeconds: 60, clientMaxFailures: 5, clientWindowSeconds: 60, clientLockSeconds: 120 }
  let strict: ReturnType<typeof authApp>
  beforeAll(() => {
    strict = authApp({ pool, ...appDeps(), hasher, signer: keys.signer, verify: keys.verify, jwks: keys.jwks as never, loginLimits: limits })
  })

  it('answers 429 with Retry-After to that address, for any email and the right password too, and not to others', async () => {
    const email = uniqueEmail()
    await register({ email })
    for (let i = 0; i < 5; i++) expect((await login(uniqueEmail(), 'Winter2024!', client, strict)).status).toBe(401)
    const blocked = await login(email, 'correct horse', client, strict)
    expect(blocked.status).toBe(429)
    expect(blocked.headers.get('Content-Type')).toBe('application/problem+json')
    expect(blocked.json.detail).toMatch(/from this address/)
    const retryAfter = Number(blocked.headers.get('Retry-After'))
    expect(retryAfter).toBeGreaterThan(60)
    expect(retryAfter).toBeLessThanOrEqual(120)
    expect((await login(email, 'correct horse', randomAddress(), strict)).status).toBe(200)
  })

  it('keeps counting the address after a success: a sprayer cannot reset it with an account of its own', async () => {
    const own = uniqueEmail()
    await register({ email: own })
    for (let i = 0; i < 4; i++) {
      expect((await login(uniqueEmail(), 'Winter2024!', client, strict)).status).toBe(401)
      expect((await login(own, 'correct horse', client, strict)).status).toBe(200)
    }
    expect((await login(uniqueEmail(), 'Winter2024!', client, strict)).status).toBe(401)
    expect((await login(own, 'correct horse', client, strict)).status).toBe(429)
  })
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
