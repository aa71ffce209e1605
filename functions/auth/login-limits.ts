/**
 * @module
 * Failed logins, counted twice, in the database (every pod sees the same counts):
 * - per submitted email and client address: a client that keeps guessing one account's password
 *   is slowed, and only that client; the owner logs in from elsewhere as usual;
 * - per client address, whatever the emails: a client trying one password on many accounts
 *   (spraying) is stopped too.
 * Both count whether or not an account has the email, so a limit reveals nothing about accounts.
 */
import { tooManyRequests } from '../../shared/errors.ts'
import type { Pool } from '../../shared/db.ts'
import type { Logger } from '../../shared/log.ts'

/**
 * The limits, in failures and seconds. `maxFailures` failed logins for one email from one client
 * address within `windowSeconds` lock that email for that address for `lockSeconds`;
 * `clientMaxFailures` failed logins from one address, for any emails, within `clientWindowSeconds`
 * lock every login from that address for `clientLockSeconds`. A window starts at its first
 * failure; a success forgets the failures of its email and address (not the address's total).
 */
export type LoginLimits = {
  maxFailures: number
  windowSeconds: number
  lockSeconds: number
  clientMaxFailures: number
  clientWindowSeconds: number
  clientLockSeconds: number
}

/**
 * The defaults (the `LOGIN_*` variables'): 10 failures a minute for one email from one address
 * lock them for a minute; 100 failures in 15 minutes from one address lock it for 15 minutes.
 */
export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  maxFailures: 10,
  windowSeconds: 60,
  lockSeconds: 60,
  clientMaxFailures: 100,
  clientWindowSeconds: 900,
  clientLockSeconds: 900,
}

// One counter's upsert: a failure inside the window adds one, and the one that reaches the limit
// locks; a failure after the window starts a new one. $w the window, $m the limit, $l the lock.
const count = (table: string, key: string, w: string, m: string, l: string) => `
  INSERT INTO ${table} AS t (${key}, failures, window_started_at, locked_until)
  VALUES (${key === 'client' ? '$2' : '$1, $2'}, 1, now(), CASE WHEN ${m} <= 1 THEN now() + make_interval(secs => ${l}) END)
  ON CONFLICT (${key}) DO UPDATE SET
    failures = CASE WHEN t.window_started_at > now() - make_interval(secs => ${w}) THEN t.failures + 1 ELSE 1 END,
    window_started_at = CASE WHEN t.window_started_at > now() - make_interval(secs => ${w}) THEN t.window_started_at ELSE now() END,
    locked_until = CASE WHEN (CASE WHEN t.window_started_at > now() - make_interval(secs => ${w}) THEN t.failures + 1 ELSE 1 END) >= ${m}
                        THEN now() + make_interval(secs => ${l}) ELSE NULL END
  RETURNING 1`

const FAIL = `WITH pair AS (${count('auth.login_failures', 'email, client', '$3::float8', '$4::int', '$5::float8')}),
  per_client AS (${count('auth.client_login_failures', 'client', '$6::float8', '$7::int', '$8::float8')})
  SELECT (SELECT count(*) FROM pair) + (SELECT count(*) FROM per_client) AS counted`

const CHECK = `SELECT
  (SELECT extract(epoch FROM locked_until - now())::float8 FROM auth.client_login_failures
    WHERE client = $2 AND locked_until > now()) AS client_retry_after,
  (SELECT extract(epoch FROM locked_until - now())::float8 FROM auth.login_failures
    WHERE email = $1 AND client = $2 AND locked_until > now()) AS retry_after`

type ThrottleOptions = {
  pool: Pool
  log: Logger
  limits: LoginLimits
  /** At most one sweep of stale counts per this many milliseconds, started by a failure; 0: none. */
  sweepIntervalMs?: number
}

/**
 * The login limits on `pool`: `check(email, client)` before a login throws a 429 (RFC 9457, with
 * `Retry-After` in seconds) while the address, or the email from that address, is locked;
 * `fail(email, client)` counts a failure against both; `clear(email, client)` forgets the
 * failures of that email from that address after a success. Counts whose window is over are
 * deleted now and then, in the background, so the tables hold only what is still counting.
 */
export function createLoginThrottle({ pool, log, limits, sweepIntervalMs = 60_000 }: ThrottleOptions) {
  const { maxFailures, windowSeconds, lockSeconds, clientMaxFailures, clientWindowSeconds, clientLockSeconds } = limits
  let lastSweep = 0
  const sweepSoon = () => {
    if (!sweepIntervalMs || Date.now() - lastSweep < sweepIntervalMs) return
    lastSweep = Date.now()
    const stale = (table: string, window: number) =>
      pool.query(
        `DELETE FROM ${table} WHERE window_started_at < now() - make_interval(secs => $1::float8)
           AND (locked_until IS NULL OR locked_until <= now())`,
        [window],
      )
    Promise.all([stale('auth.login_failures', windowSeconds), stale('auth.client_login_failures', clientWindowSeconds)]).catch((err: unknown) =>
      log.warn('sweep of stale login failures failed', { err }),
    )
  }

  return {
    async check(email: string, client: string) {
      const { rows } = await pool.query<{ client_retry_after: number | null; retry_after: number | null }>(CHECK, [email, client])
      const { client_retry_after, retry_after } = rows[0]!
      if (client_retry_after !== null) throw tooManyRequests('too many failed logins from this address; try again later', client_retry_after)
      if (retry_after !== null) throw tooManyRequests('too many failed logins for this email from this address; try again later', retry_after)
    },
    async fail(email: string, client: string) {
      await pool.query(FAIL, [email, client, windowSeconds, maxFailures, lockSeconds, clientWindowSeconds, clientMaxFailures, clientLockSeconds])
      sweepSoon()
    },
    async clear(email: string, client: string) {
      await pool.query('DELETE FROM auth.login_failures WHERE email = $1 AND client = $2', [email, client])
    },
  }
}
