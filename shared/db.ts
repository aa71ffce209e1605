/**
 * @module
 * PostgreSQL access: every function's pool comes from here, and transactions go through
 * `withTransaction` (never `pool.query('BEGIN')`, which could run each statement on another client).
 */
import pg from 'pg'
import type { Logger } from './log.ts'

/** A pool of PostgreSQL connections (node-postgres `pg.Pool`), as `createPool` makes it. */
export type Pool = pg.Pool
/** One connection checked out of a `Pool`: a transaction's client in `withTransaction`. */
export type PoolClient = pg.PoolClient
/** What a query needs: a pool, or the client of a transaction. */
export type Queryable = Pick<pg.Pool, 'query'>

type PoolOptions = {
  connectionString: string
  /** Small by default: Knative scales pods, and Σ max-scale × max must stay under max_connections. */
  max?: number
  /** The name that `pg_stat_activity` shows. */
  applicationName: string
  log: Logger
  statementTimeoutMs?: number
  connectionTimeoutMs?: number
  /**
   * Named (server-side prepared) statements, which hot queries use; default on. Off behind
   * PgBouncer in transaction mode before 1.21, where consecutive statements of one connection
   * may reach different server sessions, which do not know each other's prepared statements.
   */
  namedStatements?: boolean
}

/**
 * A pool of at most `max` connections (default 5) to `connectionString` (a `postgres://` URL).
 * Statements are cancelled by the server after `statementTimeoutMs` (default 5,000 ms) and given
 * up by the client a second later; a connection not made, or a free one not got (all `max` busy),
 * within `connectionTimeoutMs` (default 3,000 ms) makes the query reject rather than wait for ever;
 * idle connections close after 10 s. `bigint` columns come back as numbers. Connecting is lazy: a
 * bad URL or a down server shows at the first query, and a server that comes back is used again
 * without a restart (a failed connection is dropped, and the next query makes a new one).
 *
 * @example
 * ```ts
 * const pool = createPool({ connectionString: config.DATABASE_URL, applicationName: 'product', log })
 * ```
 */
export function createPool({
  connectionString,
  max = 5,
  applicationName,
  log,
  statementTimeoutMs = 5_000,
  connectionTimeoutMs = 3_000,
  namedStatements = true,
}: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString,
    ...(namedStatements ? {} : { Client: UnnamedStatementClient }),
    types: { getTypeParser: typeParser },
    max,
    application_name: applicationName,
    connectionTimeoutMillis: connectionTimeoutMs,
    // Ends idle connections before a scaled-down pod or PgBouncer would.
    idleTimeoutMillis: 10_000,
    statement_timeout: statementTimeoutMs,
    // A client-side bound too, for when the server cannot even answer a cancel.
    query_timeout: statementTimeoutMs + 1_000,
  })
  // An idle client that loses its connection emits 'error' on the pool; unhandled, it kills the process.
  pool.on('error', (err) => log.warn('idle database connection failed', { err }))
  // pg-pool takes its own listener off a client while it is checked out, and a client was seen out
  // with no listener at all (pg_terminate_backend on a pool with a connection timeout, about one
  // run in ten): its 'error' then ended the process. So every client keeps one listener of ours for
  // its whole life. The caller's own listener, and its next statement's rejection, still see the error.
  pool.on('connect', (client) => client.on('error', (err) => log.debug('database connection failed', { err })))
  return pool
}

// bigint (count(*), sums of cents) as a number: every value here stays far below 2^53.
const typeParser = ((oid: number, format?: 'text' | 'binary') =>
  oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser

/** A client that runs every statement unnamed: the same SQL, planned per execution. */
class UnnamedStatementClient extends pg.Client {
  // pg's query() has many overloads; this only drops `name` from a config object.
  override query(...args: unknown[]): never {
    const [config, ...rest] = args
    if (config && typeof config === 'object' && 'name' in config) {
      const { name: _name, ...unnamed } = config as Record<string, unknown>
      return (super.query as (...a: unknown[]) => never)(unnamed, ...rest)
    }
    return (super.query as (...a: unknown[]) => never)(...args)
  }
}

/**
 * A client checked out of a pool for statements that must share one connection (a transaction, a
 * session lock), as `checkout` hands it out.
 */
export type CheckedOutClient = {
  client: PoolClient
  /** The error its connection failed with while it was out (a backend terminated, a cut socket), if it did. */
  failure(): Error | undefined
  /**
   * Gives the client back to the pool, once. Given an `Error` or `true`, or when its connection
   * failed meanwhile, the pool destroys it instead of keeping it: a connection in an unknown
   * state (a transaction open, a statement unanswered) is never handed to the next caller.
   */
  release(destroy?: Error | boolean): void
}

/**
 * Checks a client out of `pool` with an `'error'` listener for as long as it is out. pg-pool takes
 * its own listener off a client while it is checked out, and pg emits `'error'` on a client whose
 * connection fails between two statements (`pg_terminate_backend`, a server restart, a socket
 * cut), when there is no query to reject: an `'error'` event nobody listens to is thrown, and ends
 * the process. Here it is kept (`failure()`); the client's next statement rejects, and that
 * rejection is what the caller sees. Rejects as `pool.connect()` does (see
 * `isDatabaseUnavailable`).
 *
 * @example
 * ```ts
 * const { client, release } = await checkout(pool)
 * try { … } catch (err) { release(err as Error); throw err }
 * release()
 * ```
 */
export async function checkout(pool: Pool): Promise<CheckedOutClient> {
  const client = await pool.connect()
  let failure: Error | undefined
  // pg emits twice when a backend is terminated (its FATAL message, then the closed socket): the first says why.
  const onError = (err: Error) => void (failure ??= err)
  client.on('error', onError)
  return {
    client,
    failure: () => failure,
    release(destroy) {
      client.off('error', onError)
      // pg-pool puts its own listener back as it takes the client, so nothing is unheard after this.
      client.release(failure ?? destroy)
    },
  }
}

/**
 * Runs `fn` in a transaction on one client: COMMIT when it resolves, ROLLBACK (and rethrow) when
 * it throws. When the database cannot be reached meanwhile (see `isDatabaseUnavailable`), the
 * error is rethrown without a ROLLBACK and the connection is destroyed, which makes the server
 * roll back; the process lives on, and the next transaction gets a new connection.
 *
 * A transaction the server aborted to break a deadlock (SQLSTATE `40P01`) or a serialization
 * conflict (`40001`) did nothing, and PostgreSQL's manual says to run it again: `fn` runs again,
 * up to `attempts` times in all, after a short random wait. `fn` must therefore have no effect
 * outside the transaction. When every attempt is refused that way, the last error is thrown, and
 * routes answer it 503 with `Retry-After` (see `isDatabaseUnavailable`).
 *
 * @example
 * ```ts
 * const order = await withTransaction(pool, async (tx) => {
 *   const { rows: [row] } = await tx.query('INSERT INTO orders.orders … RETURNING *', [...])
 *   await tx.query('INSERT INTO orders.outbox …', [...])
 *   return row
 * })
 * ```
 */
export async function withTransaction<T>(pool: Pool, fn: (tx: PoolClient) => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transactionOnce(pool, fn)
    } catch (err) {
      if (attempt >= attempts || !isTransactionConflict(err)) throw err
      // Apart, so that the transactions that collided do not collide again at once.
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * attempt))
    }
  }
}

async function transactionOnce<T>(pool: Pool, fn: (tx: PoolClient) => Promise<T>): Promise<T> {
  const held = await checkout(pool)
  const { client } = held
  let result: T
  try {
    await client.query('BEGIN')
    result = await fn(client)
    await client.query('COMMIT')
  } catch (err) {
    // A lost connection cannot take a ROLLBACK, and a statement that got no answer (a query
    // timeout) would make it wait behind that statement: closing the connection rolls back.
    if (held.failure() || (isDatabaseUnavailable(err) && !isTransactionConflict(err))) {
      held.release(true)
      throw err
    }
    // A client whose ROLLBACK failed is in an unknown state: destroy it rather than reuse it.
    const rolledBack = await client.query('ROLLBACK').then(
      () => true,
      () => false,
    )
    held.release(!rolledBack)
    throw err
  }
  held.release()
  return result
}

// 40001 serialization_failure, 40P01 deadlock_detected: the server aborted the transaction, and
// the same transaction run again normally succeeds.
const CONFLICT_SQLSTATE = new Set(['40001', '40P01'])
const isTransactionConflict = (err: unknown) => typeof err === 'object' && err !== null && CONFLICT_SQLSTATE.has((err as { code?: unknown }).code as string)

// What "the database cannot be reached" looks like, from the socket, the server and pg/pg-pool.
// Node's socket errors: nobody listening, the connection reset or cut mid-write, no route, no DNS answer.
const UNREACHABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'EAI_AGAIN'])
// SQLSTATEs beyond class 08 (connection exception): 57P01 admin_shutdown (also what
// pg_terminate_backend sends), 57P02 crash_shutdown, 57P03 cannot_connect_now (starting, stopping,
// recovering), 53300 too_many_connections.
const UNAVAILABLE_SQLSTATE = new Set(['57P01', '57P02', '57P03', '53300'])
// pg and pg-pool raise these without a code; matched whole, as they write them.
const UNREACHABLE_MESSAGES = new Set([
  'Connection terminated unexpectedly', // pg: the socket closed under a client (a backend gone, a proxy cut)
  'Connection terminated due to connection timeout', // pg-pool: a new connection not made in connectionTimeoutMillis
  'timeout exceeded when trying to connect', // pg-pool: a wait for a free client that timed out
  'timeout expired', // pg: its own connect timeout, when it fires before the pool's
  'Query read timeout', // pg: no answer within query_timeout, not even to the server's statement_timeout
  'Client has encountered a connection error and is not queryable', // pg: a statement on a client whose connection failed
])

/**
 * True when `err` says the database cannot be reached now, rather than that a statement was wrong:
 * the connection refused, reset or timed out (`ECONNREFUSED`, `ECONNRESET`, `EPIPE`, `ETIMEDOUT`,
 * …), the server shutting down, starting or out of connections (SQLSTATE class `08`, `57P01`,
 * `57P02`, `57P03`, `53300`), a connection that closed under its client, or a pool wait that timed
 * out. Looks through `cause` and an `AggregateError`'s `errors` (a connect to every address of a
 * host). Such a failure is over when the server is back: routes answer it 503 with `Retry-After`
 * (`createApp`), event routes 503 so the broker retries (`onEvent`). A transaction aborted for a
 * deadlock or a serialization conflict (`40P01`, `40001`) that `withTransaction` ran again without
 * success counts too: the database cannot serve that request now, and a retry later can.
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 4) return false
  const { code, message, cause, errors } = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown }
  if (typeof code === 'string') {
    if (UNREACHABLE_ERRNO.has(code) || UNAVAILABLE_SQLSTATE.has(code) || CONFLICT_SQLSTATE.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true
  }
  if (typeof message === 'string' && UNREACHABLE_MESSAGES.has(message)) return true
  if (Array.isArray(errors) && errors.some((e) => isDatabaseUnavailable(e, depth + 1))) return true
  return isDatabaseUnavailable(cause, depth + 1)
}

/** True when `err` is a PostgreSQL error with this SQLSTATE (23505 unique_violation, …). */
export const isPgError = (err: unknown, code: string): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code

/** Answers whether the database takes a `SELECT 1` within `timeoutMs` (default 1,000 ms); never throws. */
export async function ping(pool: Pool, timeoutMs = 1_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs)
  })
  const query = pool.query('SELECT 1').then(
    () => true,
    () => false,
  )
  try {
    return await Promise.race([query, timeout])
  } finally {
    clearTimeout(timer)
  }
}
