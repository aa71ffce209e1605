/**
 * @module
 * The database of a run. With DATABASE_URL: a fresh database `shop_bench_<time>` on that server
 * (and more for benchmarks that need a stack of their own), every function's schema migrated
 * once, all dropped at the end. Without it: the embedded PGlite, which serves every connection
 * from one session in this process, so its numbers are not comparable to a server's.
 */
import pg from 'pg'
import { functions } from '../functions/catalog.ts'
import { startEmbeddedPostgres } from '../knative/local/embedded-postgres.ts'
import { createPool, type Pool } from '../shared/db.ts'
import { createLogger } from '../shared/log.ts'
import { migrate } from '../shared/migrate.ts'
import type { Cleanup } from './cleanup.ts'

export type BenchDatabase = {
  url: string
  /** A PostgreSQL server (true) or the embedded PGlite (false). */
  real: boolean
  /** Whether connections may use named statements (not on PGlite: one session). */
  namedStatements: boolean
  description: string
  /** A small pool of the bench's own, for seeding and polling. */
  pool: Pool
  /** Another database like this one (migrated, dropped at the end), for a stack of its own. */
  another(tag: string): Promise<{ url: string; pool: Pool }>
}

const log = createLogger({ name: 'bench-db', level: 'warn' })

export async function openDatabase({ root, given, cleanup }: { root: string; given: string | undefined; cleanup: Cleanup }): Promise<BenchDatabase> {
  const stamp = Date.now().toString(36)
  const migrated = async (url: string) => {
    const pool = createPool({ connectionString: url, applicationName: 'bench', log, max: 4, namedStatements: Boolean(given) })
    cleanup.add('close the bench pool', () => pool.end())
    for (const fn of functions) await migrate(pool, { schema: fn.schema, dir: `${root}/functions/${fn.name}/migrations`, log })
    return pool
  }

  if (given) {
    const make = async (name: string) => {
      await withClient(given, (c) => c.query(`CREATE DATABASE ${name}`))
      cleanup.add(`drop database ${name}`, () => withClient(given, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)))
      const u = new URL(given)
      u.pathname = `/${name}`
      return u.href
    }
    const url = await make(`shop_bench_${stamp}`)
    const host = new URL(given)
    return {
      url,
      real: true,
      namedStatements: true,
      description: `PostgreSQL at ${host.host}, fresh database shop_bench_${stamp} (dropped after)`,
      pool: await migrated(url),
      async another(tag) {
        const other = await make(`shop_bench_${stamp}_${tag}`)
        return { url: other, pool: await migrated(other) }
      },
    }
  }

  const start = async () => {
    const embedded = await startEmbeddedPostgres()
    cleanup.add('stop the embedded PostgreSQL', embedded.stop)
    return embedded.url
  }
  const url = await start()
  return {
    url,
    real: false,
    namedStatements: false,
    description: 'embedded PGlite in the bench process (no DATABASE_URL): ONE session serialises every query and shares core 0 with the load generator, so these numbers are NOT comparable with a PostgreSQL server\'s',
    pool: await migrated(url),
    async another() {
      const other = await start()
      return { url: other, pool: await migrated(other) }
    },
  }
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}
