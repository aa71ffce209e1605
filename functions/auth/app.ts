/**
 * The auth function: accounts, logins, and the tokens every other function verifies.
 */
import * as v from 'valibot'
import { requireUser, type PublicJwks, type Role, type TokenVerifier } from '../../shared/auth.ts'
import { isPgError, type Pool } from '../../shared/db.ts'
import { conflict, unauthorized } from '../../shared/errors.ts'
import { createApp } from '../../shared/http.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { Text, validate } from '../../shared/validate.ts'
import { clientAddress } from '../../shared/client-address.ts'
import { DEFAULT_LOGIN_LIMITS, createLoginThrottle, type LoginLimits } from './login-limits.ts'
import type { PasswordHasher } from './password.ts'

/** A valibot schema for an account's email: trimmed, lower-cased, at most 254 characters (RFC 5321's path limit), shaped as an address. */
export const Email = v.pipe(
  Text,
  v.trim(),
  v.toLowerCase(),
  v.maxLength(254, 'must be at most 254 characters'),
  v.email('must be an email address'),
)

// bcrypt reads only the first 72 bytes of a password.
const BCRYPT_MAX_BYTES = 72

/**
 * A valibot schema for a new password (registration, `ADMIN_PASSWORD`), after NFKC normalisation:
 * 8 to 64 characters and at most 72 bytes in UTF-8. As NIST SP 800-63B asks: no composition rules,
 * no truncation; bcrypt reads only 72 bytes, so a longer password is refused rather than silently
 * cut. Valid Unicode text without NUL, like every string (see `Text`).
 */
export const Password = v.pipe(
  Text,
  v.normalize('NFKC'),
  v.check((s) => [...s].length >= 8, 'must be at least 8 characters'),
  v.check((s) => [...s].length <= 64, 'must be at most 64 characters'),
  v.maxBytes(BCRYPT_MAX_BYTES, 'must be at most 72 bytes in UTF-8'),
)

/**
 * A valibot schema for the password of a login: present, not empty, at most 72 bytes in UTF-8
 * after NFKC normalisation (what bcrypt can compare), and nothing more. The rules for a new
 * password are not checked here: a password that breaks them is simply wrong (401), like any
 * other, and says nothing about the policy or the account.
 */
export const LoginPassword = v.pipe(
  v.string('must be a string'),
  v.nonEmpty('must not be empty'),
  v.normalize('NFKC'),
  v.maxBytes(BCRYPT_MAX_BYTES, 'must be at most 72 bytes in UTF-8'),
)

/** A valibot schema: the body of `POST /api/auth/register`, `{ email, password, name }` (name 1..100 characters, no control characters). */
export const RegisterBody = v.strictObject({
  email: Email,
  password: Password,
  name: v.pipe(
    Text,
    v.trim(),
    v.nonEmpty('must not be empty'),
    v.maxLength(100, 'must be at most 100 characters'),
    v.regex(/^[^\p{Cc}]*$/u, 'must not contain control characters'),
  ),
})

/** A valibot schema: the body of `POST /api/auth/login`, `{ email, password }`. */
export const LoginBody = v.strictObject({ email: Email, password: LoginPassword })

type UserRow = { id: string; email: string; name: string; role: Role; created_at: Date; password_hash: string }

const toUser = ({ id, email, name, role, created_at }: UserRow) => ({ id, email, name, role, created_at })

type AuthDeps = {
  pool: Pool
  log: Logger
  metrics: Metrics
  hasher: PasswordHasher
  signer: { ttlSeconds: number; sign: (user: { id: string; email: string; role: Role }) => Promise<string> }
  verify: TokenVerifier
  jwks: PublicJwks
  /** The failed-login limits (default `DEFAULT_LOGIN_LIMITS`; see login-limits.ts). */
  loginLimits?: LoginLimits
}

/**
 * The auth function's app (routes on `createApp`; errors are RFC 9457 problems):
 * - `POST /api/auth/register` `{ email, password, name }`: 201 the user `{ id, email, name, role,
 *   created_at }`, always a customer; 400 bad fields; 409 when the email is taken.
 * - `POST /api/auth/login` `{ email, password }`: 200 `{ token, token_type: "Bearer", expires_in
 *   (seconds), user }`, the token a JWT (RFC 7519) from `signer`; 401 for a wrong email or
 *   password (an unknown email costs the same bcrypt time); 429 with `Retry-After` once
 *   `loginLimits` is reached for that email from the client's address, or for the address
 *   itself across emails (the address: see `clientAddress`). The password is checked for
 *   presence and bcrypt's 72 bytes only (400); the rules for a new one are not applied.
 * - `GET /api/auth/validate`: 200 `{ valid, user_id, email, role, exp }` and `X-User-ID`, and
 *   `GET /api/auth/me`: 200 the user; both 401 without a valid token or when its account is gone.
 * - `GET /api/auth/jwks.json`: the public keys `jwks` (a JWK Set, RFC 7517), cacheable 5 minutes.
 */
export function authApp({
  pool,
  log,
  metrics,
  hasher,
  signer,
  verify,
  jwks,
  loginLimits = DEFAULT_LOGIN_LIMITS,
}: AuthDeps) {
  const app = createApp({ log, metrics, pool })
  const throttle = createLoginThrottle({ pool, log, limits: loginLimits })
  // Unknown emails are compared against this, so they cost what a wrong password costs. Made
  // once, on first need, at the configured cost (a malformed dummy would return at once).
  let dummyHash: Promise<string> | undefined
  const dummy = () => (dummyHash ??= hasher.hash('not-a-password-anyone-has'))

  app.post('/api/auth/register', validate('json', RegisterBody), async (c) => {
    const { email, password, name } = c.req.valid('json')
    const hash = await hasher.hash(password)
    try {
      const { rows } = await pool.query<UserRow>(
        `INSERT INTO auth.users (email, name, password_hash) VALUES ($1, $2, $3)
         RETURNING id, email, name, role, created_at`,
        [email, name, hash],
      )
      return c.json(toUser(rows[0]!), 201)
    } catch (err) {
      if (isPgError(err, '23505')) throw conflict('an account with this email already exists')
      throw err
    }
  })

  app.post('/api/auth/login', validate('json', LoginBody), async (c) => {
    const { email, password } = c.req.valid('json')
    const client = clientAddress(c)
    await throttle.check(email, client)
    const { rows } = await pool.query<UserRow>(
      'SELECT id, email, name, role, created_at, password_hash FROM auth.users WHERE email = $1',
      [email],
    )
    const user = rows[0]
    const matches = await hasher.verify(password, user?.password_hash ?? (await dummy()))
    if (!user || !matches) {
      await throttle.fail(email, client)
      throw unauthorized('wrong email or password')
    }
    await throttle.clear(email, client)
    const token = await signer.sign(user)
    return c.json({ token, token_type: 'Bearer', expires_in: signer.ttlSeconds, user: toUser(user) })
  })

  // Stateless tokens outlive deleted accounts: these two check that the user still exists.
  const currentUser = async (id: string) => {
    const { rows } = await pool.query<UserRow>('SELECT id, email, name, role, created_at FROM auth.users WHERE id = $1', [id])
    if (!rows[0]) throw unauthorized('the account of this token no longer exists')
    return rows[0]
  }

  app.get('/api/auth/validate', requireUser(verify), async (c) => {
    const { id, exp } = c.get('user')
    const user = await currentUser(id)
    c.header('X-User-ID', user.id)
    return c.json({ valid: true, user_id: user.id, email: user.email, role: user.role, exp })
  })

  app.get('/api/auth/me', requireUser(verify), async (c) => c.json(toUser(await currentUser(c.get('user').id))))

  app.get('/api/auth/jwks.json', (c) => {
    c.header('Cache-Control', 'public, max-age=300')
    return c.json(jwks)
  })

  return app
}
