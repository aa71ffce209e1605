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
import { withRouteMeta } from './route-meta.ts'
import { Uuid } from './validate.ts'

/** A user's role, as a valibot schema: `customer` (every account made by register) or `admin` (may change the catalog). */
export const Role = v.picklist(['customer', 'admin'])
/** `'customer' | 'admin'`. */
export type Role = v.InferOutput<typeof Role>

/**
 * The signed-in user, as the token says: `id` its UUID (the JWT's `sub`), `email`, `role`, and
 * `exp` the token's expiry in seconds since the epoch (a NumericDate, RFC 7519 §4.1.4).
 */
export type AuthUser = { id: string; email: string; role: Role; exp: number }

declare module 'hono' {
  interface ContextVariableMap {
    user: AuthUser
  }
}

const Ed25519 = { kty: v.literal('OKP'), crv: v.literal('Ed25519'), x: v.pipe(v.string(), v.nonEmpty()) }
const Kid = v.pipe(v.string('needs a kid'), v.nonEmpty('needs a kid'))

/** A valibot schema: a public Ed25519 key as a JWK (RFC 7517, `kty: "OKP"` per RFC 8037) with a `kid`. */
export const PublicJwk = v.looseObject({ ...Ed25519, kid: Kid })
/** A valibot schema: a private Ed25519 JWK (RFC 8037: `d` is the private key) with a `kid`; what `JWT_PRIVATE_KEY` holds. */
export const PrivateJwk = v.looseObject({ ...Ed25519, kid: Kid, d: v.pipe(v.string(), v.nonEmpty()) })
/** A valibot schema: a JWK Set (RFC 7517 §5), `{ "keys": [...] }` with at least one public key; what `JWT_PUBLIC_KEYS` holds. */
export const PublicJwks = v.object({ keys: v.pipe(v.array(PublicJwk), v.minLength(1, 'needs at least one key')) })
/** A parsed `PublicJwks`: `{ keys: PublicJwk[] }`. */
export type PublicJwks = v.InferOutput<typeof PublicJwks>
/** A parsed `PrivateJwk`: `{ kty: 'OKP', crv: 'Ed25519', x, d, kid, ... }`. */
export type PrivateJwk = v.InferOutput<typeof PrivateJwk>

/**
 * Makes a new Ed25519 signing key pair: the private JWK (for `JWT_PRIVATE_KEY`) and its public
 * JWK (for `JWT_PUBLIC_KEYS`), both with `alg: "EdDSA"`, `use: "sig"` and `kid` (default: a
 * random UUID).
 */
export async function generateSigningKey(kid: string = randomUUID()): Promise<{ privateJwk: PrivateJwk; publicJwk: JWK }> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const privateJwk = v.parse(PrivateJwk, { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA', use: 'sig' })
  return { privateJwk, publicJwk: publicJwkOf(privateJwk) }
}

/** The public half of a private JWK: `kty`, `crv`, `x` and `kid`, with `alg: "EdDSA"`, `use: "sig"` (never `d`). */
export function publicJwkOf({ kty, crv, x, kid }: PrivateJwk): JWK {
  return { kty, crv, x, kid, alg: 'EdDSA', use: 'sig' }
}

type TokenOptions = { issuer: string; audience: string }

/**
 * A signer of access tokens: JWTs (RFC 7519) signed with EdDSA over Ed25519 (RFC 8037), the
 * header naming the key's `kid`. `sign` answers the compact JWS with claims `sub` (the user's
 * id), `email`, `role`, `iss`, `aud`, `iat`, and `exp` = `iat` + `ttlSeconds` (default 86,400:
 * a day). Rejects when the JWK cannot be imported.
 *
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

/**
 * Answers the user a token (a compact JWS) names; rejects when it is malformed, not signed by a
 * known key, expired, for another issuer or audience, or its claims are not a user's. The id is in
 * lower case, however the token writes it.
 */
export type TokenVerifier = (token: string) => Promise<AuthUser>

const Claims = v.object({
  sub: Uuid,
  email: v.string(),
  role: Role,
  exp: v.number(),
})

/**
 * Verifies tokens (JWT, RFC 7519) against the JWK Set `jwks`, picking the key by the header's
 * `kid`: EdDSA only, `iss` and `aud` checked, `exp`, `iat` and `sub` required, `sub` a UUID. A
 * token that verified once is remembered until it expires (at most `cacheSize` tokens, the oldest
 * forgotten first), so a hot path pays for the signature once.
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

/** The token of an `Authorization: Bearer …` header (RFC 6750 §2.1), if it holds one shaped as a JWT (three base64url parts). */
export const bearerToken = (header: string | undefined): string | undefined =>
  header ? BEARER.exec(header)?.[1] : undefined

/**
 * Requires a signed-in user: a valid Bearer token (RFC 6750; JWT per RFC 7519, checked by `verify`),
 * else 401. A request may also carry `X-User-ID` (the header `GET /api/auth/validate` answers
 * with, for proxies that pass the user on); it is accepted only when it names the token's own
 * user, else 403, so a header can never choose whose data is read. Sets `c.get('user')`.
 */
export function requireUser(verify: TokenVerifier): MiddlewareHandler {
  // The API description reads who may call a route from here (shared/openapi.ts).
  return withRouteMeta(async function requireUser(c, next) {
    const token = bearerToken(c.req.header('Authorization'))
    if (!token) throw unauthorized()
    const user = await verify(token).catch(() => {
      throw unauthorized('the token is invalid or has expired')
    })
    // A uuid in any case is the same user (the token's id is in lower case, see Uuid).
    const claimed = c.req.header('X-User-ID')
    if (claimed !== undefined && claimed.toLowerCase() !== user.id) throw forbidden('X-User-ID does not match the signed-in user')
    c.set('user', user)
    await next()
  }, { kind: 'auth', role: 'user' })
}

/** Requires `role: "admin"`, else 403 (an RFC 9457 problem); use after `requireUser`. */
export function requireAdmin(): MiddlewareHandler {
  return withRouteMeta(async function requireAdmin(c, next) {
    if (c.get('user').role !== 'admin') throw forbidden('this needs an admin')
    await next()
  }, { kind: 'auth', role: 'admin' })
}
