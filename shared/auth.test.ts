import { randomUUID } from 'node:crypto'
import { Hono } from 'hono'
import { SignJWT, UnsecuredJWT, importJWK } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { AUDIENCE, ISSUER, appDeps, call, testKeys } from '../test/support.ts'
import { createTokenVerifier, generateSigningKey, requireAdmin, requireUser } from './auth.ts'
import { createApp } from './http.ts'

let keys: Awaited<ReturnType<typeof testKeys>>
let app: Hono
const userId = randomUUID()

beforeAll(async () => {
  keys = await testKeys()
  app = createApp(appDeps())
  app.get('/me', requireUser(keys.verify), (c) => c.json(c.get('user')))
  app.get('/admin', requireUser(keys.verify), requireAdmin(), (c) => c.json({ ok: true }))
})

const claims = { email: 'a@example.test', role: 'customer' }
const signWith = async (jwk: Parameters<typeof importJWK>[0], build: (t: SignJWT) => SignJWT, header: Record<string, unknown> = {}) =>
  build(new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: keys.privateJwk.kid, ...header }).setSubject(userId)).sign(
    await importJWK(jwk, 'EdDSA'),
  )
const full = (t: SignJWT) => t.setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('1h')

describe('requireUser', () => {
  it('accepts a valid token and sets the user', async () => {
    const token = await keys.tokenFor({ id: userId })
    const res = await call(app, 'GET', '/me', { token })
    expect(res.status).toBe(200)
    expect(res.json).toMatchObject({ id: userId, role: 'customer' })
  })

  it('accepts X-User-ID equal to the token subject and refuses any other (403)', async () => {
    const token = await keys.tokenFor({ id: userId })
    expect((await call(app, 'GET', '/me', { token, headers: { 'X-User-ID': userId } })).status).toBe(200)
    expect((await call(app, 'GET', '/me', { token, headers: { 'X-User-ID': userId.toUpperCase() } })).status).toBe(200)
    const forged = await call(app, 'GET', '/me', { token, headers: { 'X-User-ID': randomUUID() } })
    expect(forged.status).toBe(403)
    expect(forged.headers.get('Content-Type')).toBe('application/problem+json')
  })

  it('answers 401 with X-User-ID and no token', async () => {
    expect((await call(app, 'GET', '/me', { headers: { 'X-User-ID': userId } })).status).toBe(401)
  })

  const hostile: [string, () => Promise<string>][] = [
    ['alg none', async () => new UnsecuredJWT(claims).setSubject(userId).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('1h').encode()],
    ['a key that is not trusted', async () => signWith((await generateSigningKey(keys.privateJwk.kid)).privateJwk, full)],
    ['tampered claims', async () => {
      const [h, , s] = (await keys.tokenFor({ id: userId })).split('.')
      const body = Buffer.from(JSON.stringify({ ...claims, role: 'admin', sub: userId, iss: ISSUER, aud: AUDIENCE, exp: 9e9, iat: 1 })).toString('base64url')
      return `${h}.${body}.${s}`
    }],
    ['an expired token', async () => signWith(keys.privateJwk, (t) => t.setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt(1).setExpirationTime(2))],
    ['no exp', async () => signWith(keys.privateJwk, (t) => t.setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt())],
    ['no iat', async () => signWith(keys.privateJwk, (t) => t.setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('1h'))],
    ['a wrong iss', async () => signWith(keys.privateJwk, (t) => full(t).setIssuer('evil'))],
    ['a wrong aud', async () => signWith(keys.privateJwk, (t) => full(t).setAudience('other'))],
    ['HS256 with the public key as secret', async () =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('1h')
        .sign(new TextEncoder().encode(JSON.stringify(keys.publicJwk)))],
    ['a sub that is not a UUID', async () => signWith(keys.privateJwk, (t) => full(t).setSubject("1' OR '1'='1"))],
    ['garbage', async () => 'not.a.token'],
  ]
  it.each(hostile)('answers 401 problem+json for %s', async (_name, make) => {
    const res = await call(app, 'GET', '/me', { token: await make() })
    expect(res.status).toBe(401)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.headers.get('WWW-Authenticate')).toBe('Bearer')
  })

  it.each([[''], ['Basic abc'], ['Bearer'], ['Bearer a.b']])('answers 401 for Authorization %j', async (header) => {
    expect((await call(app, 'GET', '/me', { headers: { Authorization: header } })).status).toBe(401)
  })

  it('ignores a token in the query string', async () => {
    const token = await keys.tokenFor({ id: userId })
    expect((await call(app, 'GET', `/me?access_token=${token}`)).status).toBe(401)
  })
})

describe('requireAdmin', () => {
  it('lets an admin through and answers 403 to a customer', async () => {
    expect((await call(app, 'GET', '/admin', { token: await keys.tokenFor({ role: 'admin' }) })).status).toBe(200)
    expect((await call(app, 'GET', '/admin', { token: await keys.tokenFor() })).status).toBe(403)
  })
})

describe('createTokenVerifier', () => {
  it('verifies with any key of the set, so keys can rotate', async () => {
    const next = await generateSigningKey()
    const verify = createTokenVerifier({ jwks: { keys: [keys.publicJwk, next.publicJwk] } as never, issuer: ISSUER, audience: AUDIENCE })
    await expect(verify(await keys.tokenFor({ id: userId }))).resolves.toMatchObject({ id: userId })
    await expect(verify(await signWith(next.privateJwk, full, { kid: next.privateJwk.kid }))).resolves.toMatchObject({ id: userId })
  })
})
