/**
 * @module
 * Migrations: numbered `.sql` files per schema (`001_create_users.sql`), applied once each, in
 * order, one transaction each, recorded with a checksum so an applied file cannot change unseen.
 * An advisory lock makes two processes that start at once take turns.
 */
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import type { Logger } from './log.ts'
import { checkout, type Pool } from './db.ts'

type Migration = { version: number; name: string; sql: string; checksum: string }

const FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/

/**
 * Reads and checks the `.sql` files of a folder (a path or a `file:` URL): each named like
 * `001_create_things.sql` and numbered 1, 2, 3, … with no gap. Answers them in order with their
 * SHA-256 checksums; throws an `Error` naming the first file that breaks the rule.
 */
export async function readMigrations(dir: URL | string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort()
  const migrations: Migration[] = []
  for (const file of files) {
    const match = FILE.exec(file)
    if (!match) throw new Error(`migration ${file}: the name must look like 001_create_things.sql`)
    const version = Number(match[1])
    if (version !== migrations.length + 1) throw new Error(`migration ${file}: expected number ${migrations.length + 1}`)
    const sql = await readFile(new URL(file, dirUrl(dir)), 'utf8')
    migrations.push({ version, name: file, sql, checksum: createHash('sha256').update(sql).digest('hex') })
  }
  return migrations
}

const dirUrl = (dir: URL | string) => {
  const url = typeof dir === 'string' ? new URL(`file://${dir}`) : dir
  return url.href.endsWith('/') ? url : new URL(url.href + '/')
}

type MigrateOptions = { schema: string; dir: URL | string; log: Logger }

/**
 * Brings `schema` up to date with the files in `dir`: makes the schema and its
 * `schema_migrations` table if missing, then applies each new file in its own transaction, under
 * a PostgreSQL advisory lock per schema so concurrent starts take turns. Answers the file names it
 * applied (empty when up to date). Throws an `Error` for a bad schema name, a file that changed
 * after it was applied, a migration the folder no longer has, or one that fails (rolled back).
 *
 * @example
 * ```ts
 * await migrate(pool, { schema: 'product', dir: new URL('./migrations/', import.meta.url), log })
 * ```
 */
export async function migrate(pool: Pool, { schema, dir, log }: MigrateOptions): Promise<string[]> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema name ${schema}`)
  const migrations = await readMigrations(dir)
  // Checked out with an 'error' listener: a connection lost mid-migration rejects, never crashes.
  const { client: lock, release } = await checkout(pool)
  let broken = false
  try {
    // Session-level lock on its own client, held across the per-file transactions below.
    await lock.query('SELECT pg_advisory_lock(hashtext($1))', [`shop.migrate.${schema}`])
    // Checked first: a function's own role owns its schema but may not create schemas, and
    // PostgreSQL refuses even CREATE SCHEMA IF NOT EXISTS without that right.
    const { rowCount } = await lock.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
    if (!rowCount) await lock.query(`CREATE SCHEMA ${schema}`)
    await lock.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`)
    const { rows } = await lock.query<{ version: number; name: string; checksum: string }>(
      `SELECT version, name, checksum FROM ${schema}.schema_migrations ORDER BY version`,
    )
    for (const row of rows) {
      const file = migrations[row.version - 1]
      if (!file) throw new Error(`${schema}: the database has migration ${row.name}, which is not in ${String(dir)}`)
      if (file.checksum !== row.checksum) throw new Error(`${schema}: migration ${file.name} changed after it was applied`)
    }
    const applied: string[] = []
    for (const m of migrations.slice(rows.length)) {
      // On the lock's own client, so a pool of one connection cannot deadlock.
      await lock.query('BEGIN')
      try {
        await lock.query(m.sql)
        await lock.query(`INSERT INTO ${schema}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [
          m.version,
          m.name,
          m.checksum,
        ])
        await lock.query('COMMIT')
      } catch (err) {
        await lock.query('ROLLBACK').catch(() => {})
        throw new Error(`${schema}: migration ${m.name} failed: ${(err as Error).message}`, { cause: err })
      }
      log.info('migration applied', { schema, migration: m.name })
      applied.push(m.name)
    }
    return applied
  } catch (err) {
    broken = true
    throw err
  } finally {
    // Ending the session releases its advisory lock even if the unlock cannot be sent.
    await lock.query('SELECT pg_advisory_unlock(hashtext($1))', [`shop.migrate.${schema}`]).catch(() => {})
    release(broken)
  }
}
