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
 * up by the client a second later; a connection not made within `connectionTimeoutMs` (default
 * 3,000 ms) makes the query reject; idle connections close after 10 s. `bigint` columns come back
 * as numbers. Connecting is lazy: a bad URL or a down server shows at the first query.
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
 * Runs `fn` in a transaction on one client: COMMIT when it resolves, ROLLBACK (and rethrow) when
 * it throws.
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
export async function withTransaction<T>(pool: Pool, fn: (tx: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken = false
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true
    })
    throw err
  } finally {
    // A client whose ROLLBACK failed is in an unknown state: destroy it rather than reuse it.
    client.release(broken)
  }
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
