/**
 * @module
 * A database for one test run: made fresh on a server (through its maintenance database, so the
 * database a DATABASE_URL names need not exist), with every function's migrations applied, and
 * dropped after, so runs never see each other's rows.
 */
import { randomBytes } from 'node:crypto'
import { functions } from '../functions/catalog.ts'
import { createDatabase, dropDatabase } from '../knative/local/databases.ts'
import { createPool } from '../shared/db.ts'
import { createLogger } from '../shared/log.ts'
import { migrate } from '../shared/migrate.ts'

export type TestDatabase = {
  /** The new database's URL. */
  url: string
  /** Drops it, ending its sessions. */
  drop: () => Promise<void>
}

/**
 * Makes `shop_test_<time>_<pid>_<random>` on the server `serverUrl` points at (whatever database it names)
 * and migrates it. Rejects with one line when the server cannot be reached.
 */
export async function createTestDatabase(serverUrl: string): Promise<TestDatabase> {
  const name = `shop_test_${Date.now().toString(36)}_${process.pid}_${randomBytes(2).toString('hex')}`
  const url = await createDatabase(serverUrl, name)
  const drop = () => dropDatabase(serverUrl, name)
  const log = createLogger({ name: 'test-setup', level: 'warn' })
  const pool = createPool({ connectionString: url, applicationName: 'test-setup', log, max: 2 })
  try {
    for (const fn of functions) {
      await migrate(pool, { schema: fn.schema, dir: new URL(`../functions/${fn.name}/migrations/`, import.meta.url), log })
    }
  } catch (err) {
    await pool.end()
    await drop()
    throw err
  }
  await pool.end()
  return { url, drop }
}
