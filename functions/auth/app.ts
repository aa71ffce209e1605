/**
 * The auth function: accounts, logins, and the tokens every other function verifies.
 */
import * as v from 'valibot'
import { requireUser, type PublicJwks, type Role, type TokenVerifier } from '../../shared/auth.ts'
import { isPgError, type Pool } from '../../shared/db.ts'
import { conflict, tooManyRequests, unauthorized } from '../../shared/errors.ts'
import { createApp } from '../../shared/http.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { validate } from '../../shared/validate.ts'
import type { PasswordHasher } from './password.ts'

/** A valibot schema for an account's email: trimmed, lower-cased, at most 254 characters (RFC 5321's path limit), shaped as an address. */
export const Email = v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.toLowerCase(),
  v.maxLength(254, 'must be at most 254 characters'),
  v.email('must be an email address'),
)

/**
 * A valibot schema for a password, after NFKC normalisation: 8 to 64 characters and at most 72
 * bytes in UTF-8. As NIST SP 800-63B asks: no composition rules, no truncation; bcrypt reads only
 * 72 bytes, so a longer password is refused rather than silently cut.
 */
export const Password = v.pipe(
  v.string('must be a string'),
  v.normalize('NFKC'),
  v.check((s) => [...s].length >= 8, 'must be at least 8 characters'),
  v.check((s) => [...s].length <= 64, 'must be at most 64 characters'),
  v.maxBytes(72, 'must be at most 72 bytes in UTF-8'),
)

const RegisterBody = v.strictObject({
  email: Email,
  password: Password,
  name: v.pipe(
    v.string('must be a string'),
    v.trim(),
    v.nonEmpty('must not be empty'),
    v.maxLength(100, 'must be at most 100 characters'),
    v.regex(/^[^\p{Cc}]*$/u, 'must not contain control characters'),
  ),
})

const LoginBody = v.strictObject({ email: Email, password: Password })

type UserRow = { id: string; email: string; name: string; role: Role; created_at: Date; password_hash: string }

const toUser = ({ id, email, name, role, created_at }: UserRow) => ({ id, email, name, role, created_at })

/** Failed-login throttling per submitted email: `maxFailures` within `windowSeconds` locks logins for `lockSeconds`. */
export type LoginLimits = { maxFailures: number; windowSeconds: number; lockSeconds: number }

type AuthDeps = {
  pool: Pool
  log: Logger
  metrics: Metrics
  hasher: PasswordHasher
  signer: { ttlSeconds: number; sign: (user: { id: string; email: string; role: Role }) => Promise<string> }
  verify: TokenVerifier
  jwks: PublicJwks
  loginLimits?: LoginLimits
}

/**
 * The auth function's app (routes on `createApp`; errors are RFC 9457 problems):
 * - `POST /api/auth/register` `{ email, password, name }`: 201 the user `{ id, email, name, role,
 *   created_at }`, always a customer; 400 bad fields; 409 when the email is taken.
 * - `POST /api/auth/login` `{ email, password }`: 200 `{ token, token_type: "Bearer", expires_in
 *   (seconds), user }`, the token a JWT (RFC 7519) from `signer`; 401 for a wrong email or
 *   password (an unknown email costs the same bcrypt time); 429 with `Retry-After` once
 *   `loginLimits` (default 10 failures a minute, locked a minute) is reached for that email.
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
  loginLimits = { maxFailures: 10, windowSeconds: 60, lockSeconds: 60 },
}: AuthDeps) {
  const app = createApp({ log, metrics, pool })
  const throttle = loginThrottle(pool, loginLimits)
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
    await throttle.check(email)
    const { rows } = await pool.query<UserRow>(
      'SELECT id, email, name, role, created_at, password_hash FROM auth.users WHERE email = $1',
      [email],
    )
    const user = rows[0]
    const matches = await hasher.verify(password, user?.password_hash ?? (await dummy()))
    if (!user || !matches) {
      await throttle.fail(email)
      throw unauthorized('wrong email or password')
    }
    await throttle.clear(email)
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

/**
 * Slows repeated failed logins per submitted email: after `maxFailures` within `windowSeconds`,
 * every attempt is a 429 for `lockSeconds`, right password or not.
 */
function loginThrottle(pool: Pool, { maxFailures, windowSeconds, lockSeconds }: LoginLimits) {
  return {
    async check(email: string) {
      const { rows } = await pool.query<{ retry_after: number }>(
        `SELECT extract(epoch FROM locked_until - now())::float8 AS retry_after
           FROM auth.login_throttle WHERE email = $1 AND locked_until > now()`,
        [email],
      )
      if (rows[0]) throw tooManyRequests('too many failed logins for this email; try again later', rows[0].retry_after)
    },
    async fail(email: string) {
      await pool.query(
        `INSERT INTO auth.login_throttle AS t (email, failures, window_started_at) VALUES ($1, 1, now())
         ON CONFLICT (email) DO UPDATE SET
           failures = CASE WHEN t.window_started_at > now() - make_interval(secs => $2) THEN t.failures + 1 ELSE 1 END,
           window_started_at = CASE WHEN t.window_started_at > now() - make_interval(secs => $2) THEN t.window_started_at ELSE now() END,
           locked_until = CASE WHEN t.window_started_at > now() - make_interval(secs => $2) AND t.failures + 1 >= $3
                               THEN now() + make_interval(secs => $4) ELSE NULL END`,
        [email, windowSeconds, maxFailures, lockSeconds],
      )
    },
    async clear(email: string) {
      await pool.query('DELETE FROM auth.login_throttle WHERE email = $1', [email])
    },
  }
}
