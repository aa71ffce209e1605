/**
 * @module
 * What the local runner hands on to the functions from its own environment, untouched: the
 * functions' settings a developer may want to change locally. `npm start` and `npm run load` use
 * the same list, so both shops behave alike.
 */

/** The variables passed on, when set. Every other variable of the runner stays with it. */
export const PASSED_ON = [
  'PAYMENT_SUCCESS_RATE',
  'PAYMENT_DELAY_MS',
  'ORDER_REANNOUNCE_AFTER_S',
  'ORDER_EXPIRE_AFTER_S',
  'RESERVATION_TTL_S',
  'BCRYPT_COST',
  'BCRYPT_THREADS',
  'LOGIN_MAX_FAILURES',
  'LOGIN_WINDOW_S',
  'LOGIN_LOCK_S',
  'LOGIN_CLIENT_MAX_FAILURES',
  'LOGIN_CLIENT_WINDOW_S',
  'LOGIN_CLIENT_LOCK_S',
  'LOG_LEVEL',
  'JWT_ISSUER',
  'JWT_AUDIENCE',
  'DATABASE_POOL_MAX',
  // The browser origins allowed to call the API (CORS); none unless set.
  'CORS_ORIGINS',
  // Off behind PgBouncer in transaction mode (before 1.21), where a connection is not its own session.
  'DATABASE_NAMED_STATEMENTS',
]

/** The `PASSED_ON` variables set in `env`, as a function's environment takes them. */
export function passedOn(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(PASSED_ON.flatMap((k) => (env[k] ? [[k, env[k]!]] : [])))
}
