/**
 * @module
 * The database of a run: a fresh database `shop_bench_<time>` (and more for benchmarks that need
 * a stack of their own), every function's schema migrated once, all dropped at the end. On the
 * server DATABASE_URL names, or else on an embedded PostgreSQL the bench starts in a throwaway
 * directory and deletes after.
 */
import { functions } from '../functions/catalog.ts'
import { createDatabase, dropDatabase, serverOf } from '../knative/local/databases.ts'
import { startThrowawayPostgres } from '../knative/local/postgres/embedded-postgres.ts'
import { createPool, type Pool } from '../shared/db.ts'
import { createLogger } from '../shared/log.ts'
import { migrate } from '../shared/migrate.ts'
import type { Cleanup } from './cleanup.ts'

export type BenchDatabase = {
  url: string
  description: string
  /** A small pool of the bench's own, for seeding and polling. */
  pool: Pool
  /** Another database like this one (migrated, dropped at the end), for a stack of its own. */
  another(tag: string): Promise<{ url: string; pool: Pool }>
}

const log = createLogger({ name: 'bench-db', level: 'warn' })

export async function openDatabase({ root, given, cleanup }: { root: string; given: string | undefined; cleanup: Cleanup }): Promise<BenchDatabase> {
  let server = given
  let where = `PostgreSQL at ${given ? serverOf(given) : ''}`
  if (!server) {
    const embedded = await startThrowawayPostgres()
    cleanup.add('stop the embedded PostgreSQL', embedded.stop)
    server = embedded.url
    where = `embedded PostgreSQL ${embedded.version} (no DATABASE_URL), started by the bench in a throwaway directory, unpinned`
  }
  const serverUrl = server

  const stamp = Date.now().toString(36)
  const make = async (name: string) => {
    const url = await createDatabase(serverUrl, name)
    cleanup.add(`drop database ${name}`, () => dropDatabase(serverUrl, name))
    const pool = createPool({ connectionString: url, applicationName: 'bench', log, max: 4 })
    cleanup.add('close the bench pool', () => pool.end())
    for (const fn of functions) await migrate(pool, { schema: fn.schema, dir: `${root}/functions/${fn.name}/migrations`, log })
    return { url, pool }
  }
  const first = await make(`shop_bench_${stamp}`)
  return {
    ...first,
    description: `${where}, fresh database shop_bench_${stamp} (dropped after)`,
    another: (tag) => make(`shop_bench_${stamp}_${tag}`),
  }
}
