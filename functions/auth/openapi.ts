/**
 * What the auth function's routes answer, for the API description (shared/openapi.ts takes the
 * requests from the routes themselves): the schemas of its answers, and one description per route.
 */
import * as v from 'valibot'
import { IdOut, IntOut, TimeOut, problem, type ApiDescription } from '../../shared/openapi.ts'

const Role = v.pipe(v.picklist(['customer', 'admin']), v.description('`customer` (every account register makes) or `admin` (may change the catalog)'))

/** A valibot schema of a user as auth answers it (never the password hash). */
export const User = v.object({
  id: IdOut,
  email: v.pipe(v.string(), v.email(), v.description('trimmed and lower-cased')),
  name: v.string(),
  role: Role,
  created_at: TimeOut,
})

/** A valibot schema of a login's answer: the token, its type and lifetime, and whose it is. */
export const Login = v.object({
  token: v.pipe(v.string(), v.description('a JWT (RFC 7519) signed with Ed25519: send it as `Authorization: Bearer <token>`')),
  token_type: v.literal('Bearer'),
  expires_in: v.pipe(IntOut(1), v.description('seconds the token is valid for')),
  user: User,
})

/** A valibot schema of `GET /api/auth/validate`'s answer. */
export const TokenCheck = v.object({
  valid: v.literal(true),
  user_id: IdOut,
  email: v.string(),
  role: Role,
  exp: v.pipe(IntOut(), v.description('when the token expires, in seconds since the epoch')),
})

/** A valibot schema of the public keys (a JWK Set, RFC 7517): Ed25519 keys (RFC 8037) with a `kid`. */
export const Jwks = v.object({
  keys: v.pipe(
    v.array(
      v.looseObject({
        kty: v.literal('OKP'),
        crv: v.literal('Ed25519'),
        x: v.string(),
        kid: v.string(),
        alg: v.optional(v.literal('EdDSA')),
        use: v.optional(v.literal('sig')),
      }),
    ),
    v.minLength(1),
  ),
})

const ada = {
  id: '0b6f7c1e-3d5a-4f2b-9e8c-1a2b3c4d5e6f',
  email: 'ada@example.com',
  name: 'Ada',
  role: 'customer',
  created_at: '2025-01-15T09:30:00.000Z',
}
const token =
  'eyJhbGciOiJFZERTQSIsImtpZCI6ImtleS0xIiwidHlwIjoiSldUIn0.eyJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSIsInJvbGUiOiJjdXN0b21lciIsInN1YiI6IjBiNmY3YzFlLTNkNWEtNGYyYi05ZThjLTFhMmIzYzRkNWU2ZiJ9.c2lnbmF0dXJl'

/** The auth function's part of the API description. */
export const authApi: ApiDescription = {
  tag: { name: 'auth', description: 'Accounts and logins; the tokens every other route verifies, and the keys to verify them with.' },
  schemas: { User, Login, TokenCheck, Jwks },
  operations: {
    'POST /api/auth/register': {
      operationId: 'register',
      summary: 'Create an account',
      description:
        'Makes a customer account. The email is trimmed and lower-cased (one account per address, whatever its case); the password is 8 to 64 characters and at most 72 bytes in UTF-8 after NFKC normalisation, with no other rules; the name is 1 to 100 characters without control characters.',
      requestExamples: { ada: { value: { email: 'ada@example.com', password: 'correct horse', name: 'Ada' } } },
      responses: {
        201: { description: 'the account, a customer', body: User, examples: { ada: { value: ada } } },
        409: problem('an account with this email exists already'),
      },
    },
    'POST /api/auth/login': {
      operationId: 'login',
      summary: 'Log in: a token for an email and password',
      description:
        'A wrong email and a wrong password answer the same 401, at the same cost. Failed logins are counted per email and client address, and per client address across emails: past the limits (10 a minute for one email from one address; 100 in 15 minutes from one address) every attempt answers 429 for a while, right password or not; the owner logging in from another address is not affected.',
      requestExamples: { ada: { value: { email: 'ada@example.com', password: 'correct horse' } } },
      responses: {
        200: {
          description: 'the token (valid `expires_in` seconds) and its user',
          body: Login,
          examples: { ada: { value: { token, token_type: 'Bearer', expires_in: 86400, user: ada } } },
        },
        401: problem('wrong email or password'),
        429: problem('too many failed logins for this email from this client, or from this client; retry after `Retry-After` seconds'),
      },
    },
    'GET /api/auth/validate': {
      operationId: 'validateToken',
      summary: 'Check a token',
      description: 'For proxies and other services: whether the token is valid and its account still exists.',
      responses: {
        200: {
          description: 'the token is valid; `X-User-ID` names its user',
          body: TokenCheck,
          headers: { 'X-User-ID': { description: "the token's user id", schema: IdOut, required: true } },
          examples: { ada: { value: { valid: true, user_id: ada.id, email: ada.email, role: 'customer', exp: 1767225600 } } },
        },
        401: problem('no valid Bearer token, or its account no longer exists'),
      },
    },
    'GET /api/auth/me': {
      operationId: 'me',
      summary: 'The signed-in user',
      responses: {
        200: { description: 'the user of the token', body: User, examples: { ada: { value: ada } } },
        401: problem('no valid Bearer token, or its account no longer exists'),
      },
    },
    'GET /api/auth/jwks.json': {
      operationId: 'jwks',
      summary: 'The public keys tokens are signed with',
      description: 'A JWK Set (RFC 7517) of Ed25519 keys: verify a token with the key its header names by `kid`. During a rotation it lists the old key and the new.',
      responses: {
        200: {
          description: 'the keys; cacheable for 5 minutes',
          body: Jwks,
          headers: { 'Cache-Control': { description: '`public, max-age=300`', schema: v.string(), required: true } },
          examples: { one: { value: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: 'key-1', alg: 'EdDSA', use: 'sig' }] } } },
        },
      },
    },
  },
}
