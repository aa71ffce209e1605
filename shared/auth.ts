/**
 * @module
 * Identity: Ed25519-signed JWTs (EdDSA). Auth alone holds the private key and signs; every
 * function verifies with the public keys (a JWKS with `kid`s, so keys can rotate).
 */
import { randomUUID } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify, type JWK } from 'jose'
import * as v from 'valibot'
import { forbidden, unauthorized } from './errors.ts'

export const Role = v.picklist(['customer', 'admin'])
export type Role = v.InferOutput<typeof Role>

/** The signed-in user, as the token says. */
export type AuthUser = { id: string; email: string; role: Role; exp: number }

declare module 'hono' {
  interface ContextVariableMap {
    user: AuthUser
  }
}

const Ed25519 = { kty: v.literal('OKP'), crv: v.literal('Ed25519'), x: v.pipe(v.string(), v.nonEmpty()) }
const Kid = v.pipe(v.string('needs a kid'), v.nonEmpty('needs a kid'))

/** A public Ed25519 JWK with a `kid`. */
export const PublicJwk = v.looseObject({ ...Ed25519, kid: Kid })
/** A private Ed25519 JWK with a `kid` (what `JWT_PRIVATE_KEY` holds). */
export const PrivateJwk = v.looseObject({ ...Ed25519, kid: Kid, d: v.pipe(v.string(), v.nonEmpty()) })
/** A JWKS of public keys (what `JWT_PUBLIC_KEYS` holds). */
export const PublicJwks = v.object({ keys: v.pipe(v.array(PublicJwk), v.minLength(1, 'needs at least one key')) })
export type PublicJwks = v.InferOutput<typeof PublicJwks>
export type PrivateJwk = v.InferOutput<typeof PrivateJwk>

/** Makes a new signing key pair; `kid` defaults to a random UUID. */
export async function generateSigningKey(kid: string = randomUUID()): Promise<{ privateJwk: PrivateJwk; publicJwk: JWK }> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const privateJwk = v.parse(PrivateJwk, { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA', use: 'sig' })
  return { privateJwk, publicJwk: publicJwkOf(privateJwk) }
}

/** The public half of a private JWK. */
export function publicJwkOf({ kty, crv, x, kid }: PrivateJwk): JWK {
  return { kty, crv, x, kid, alg: 'EdDSA', use: 'sig' }
}

type TokenOptions = { issuer: string; audience: string }

/**
 * @example
 * ```ts
 * const signer = await createTokenSigner({ privateJwk, issuer: 'shop-auth', audience: 'shop' })
 * const token = await signer.sign({ id, email, role: 'customer' })
 * ```
 */
export async function createTokenSigner({
  privateJwk,
  issuer,
  audience,
  ttlSeconds = 86_400,
}: TokenOptions & { privateJwk: PrivateJwk; ttlSeconds?: number }) {
  const key = await importJWK(privateJwk, 'EdDSA')
  return {
    ttlSeconds,
    sign: ({ id, email, role }: { id: string; email: string; role: Role }) =>
      new SignJWT({ email, role })
        .setProtectedHeader({ alg: 'EdDSA', kid: privateJwk.kid, typ: 'JWT' })
        .setSubject(id)
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime(`${ttlSeconds}s`)
        .sign(key),
  }
}

export type TokenVerifier = (token: string) => Promise<AuthUser>

const Claims = v.object({
  sub: v.pipe(v.string(), v.uuid()),
  email: v.string(),
  role: Role,
  exp: v.number(),
})

/**
 * Verifies tokens: EdDSA only, `iss` and `aud` checked, `exp`, `iat` and `sub` required. A token
 * that verified once is remembered until it expires, so a hot path pays for the signature once.
 */
export function createTokenVerifier({ jwks, issuer, audience, cacheSize = 10_000 }: TokenOptions & { jwks: PublicJwks; cacheSize?: number }): TokenVerifier {
  const keys = createLocalJWKSet(jwks)
  const verified = new Map<string, AuthUser>()
  return async function verify(token) {
    const hit = verified.get(token)
    if (hit) {
      if (hit.exp * 1000 > Date.now()) return hit
      verified.delete(token)
    }
    const { payload } = await jwtVerify(token, keys, {
      algorithms: ['EdDSA'],
      issuer,
      audience,
      requiredClaims: ['exp', 'iat', 'sub'],
    })
    const claims = v.parse(Claims, payload)
    const user: AuthUser = { id: claims.sub, email: claims.email, role: claims.role, exp: claims.exp }
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!)
    verified.set(token, user)
    return user
  }
}

const BEARER = /^Bearer +([\w-]+\.[\w-]+\.[\w-]+) *$/i

/** The token of an `Authorization: Bearer …` header, if it has one. */
export const bearerToken = (header: string | undefined): string | undefined =>
  header ? BEARER.exec(header)?.[1] : undefined

/**
 * Requires a signed-in user: a valid Bearer token (401 otherwise). `X-User-ID`, the reference
 * design's cart key, is accepted only when it names the token's own user (403 otherwise).
 */
export function requireUser(verify: TokenVerifier): MiddlewareHandler {
  return async function requireUser(c, next) {
    const token = bearerToken(c.req.header('Authorization'))
    if (!token) throw unauthorized()
    const user = await verify(token).catch(() => {
      throw unauthorized('the token is invalid or has expired')
    })
    const claimed = c.req.header('X-User-ID')
    if (claimed !== undefined && claimed !== user.id) throw forbidden('X-User-ID does not match the signed-in user')
    c.set('user', user)
    await next()
  }
}

/** Requires `role: "admin"`; use after `requireUser`. */
export function requireAdmin(): MiddlewareHandler {
  return async function requireAdmin(c, next) {
    if (c.get('user').role !== 'admin') throw forbidden('this needs an admin')
    await next()
  }
}
