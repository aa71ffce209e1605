/**
 * @module
 * The database `npm start` gives the functions: the server DATABASE_URL names (its database made
 * when missing), or else the embedded PostgreSQL with its cluster in DATA_DIR/postgres and the
 * database `shop`, as on the cluster. A DATA_DIR/pgdata left by the embedded database of earlier
 * versions (PGlite) is not read by PostgreSQL 15: the runner says so on every start while it is
 * there, and leaves it alone.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { isAbsolute, join, relative, resolve } from 'node:path'
import { databaseOf, ensureDatabase, serverOf, withDatabase } from './databases.ts'
import { startEmbeddedPostgres } from './postgres/embedded-postgres.ts'

export type ShopDatabase = {
  url: string
  /** For the runner's summary: where the data is, without a password. */
  description: string
  stop: () => Promise<void>
}

type Options = {
  dataDir: string
  /** A server to use instead of the embedded one. */
  databaseUrl?: string
  say: (line: string) => void
}

/**
 * Opens the shop's database. Rejects with one line (`DatabaseSetupError`,
 * `EmbeddedPostgresError`) when it cannot: the cause and what to do.
 */
export async function openShopDatabase({ dataDir, databaseUrl, say }: Options): Promise<ShopDatabase> {
  if (databaseUrl) {
    await ensureDatabase(databaseUrl, say)
    return { url: databaseUrl, description: `${databaseOf(databaseUrl)} at ${serverOf(databaseUrl)} (DATABASE_URL)`, stop: async () => {} }
  }

  const pglite = await pgliteDirectory(dataDir)
  if (pglite) say(pglite)
  const clusterDir = join(dataDir, 'postgres')
  const shown = display(clusterDir)
  say(`no DATABASE_URL: starting an embedded PostgreSQL with its data in ${shown}`)
  const server = await startEmbeddedPostgres({ dataDir: clusterDir, say })
  try {
    const url = withDatabase(server.url, 'shop')
    await ensureDatabase(url, say)
    return { url, description: `embedded PostgreSQL ${server.version} in ${shown}, 127.0.0.1:${server.port}`, stop: server.stop }
  } catch (err) {
    await server.stop()
    throw err
  }
}

/** One line about DATA_DIR/pgdata when PGlite made it (it has a PG_VERSION), else undefined. */
export async function pgliteDirectory(dataDir: string): Promise<string | undefined> {
  const dir = join(dataDir, 'pgdata')
  if (!existsSync(join(dir, 'PG_VERSION'))) return undefined
  const major = (await readFile(join(dir, 'PG_VERSION'), 'utf8')).trim()
  const shown = display(dir)
  return (
    `the embedded database changed from PGlite to PostgreSQL 15: ${shown} (PGlite's, PostgreSQL ${major}) is no longer read, ` +
    `and the shop starts with the database in ${display(join(dataDir, 'postgres'))}; ` +
    `delete ${shown} once you no longer need its data`
  )
}

/** A path as people typed it: relative to here when it is below here. */
function display(path: string): string {
  const rel = relative(process.cwd(), resolve(path))
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : resolve(path)
}
