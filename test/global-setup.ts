/**
 * Once per `vitest run`: a database for the tests, with every function's migrations applied.
 * With `DATABASE_URL` it makes a fresh database on that server (and drops it after), so runs
 * never see each other's rows; without it, an embedded PostgreSQL (PGlite over the wire protocol).
 */
import type { TestProject } from 'vitest/node'
import pg from 'pg'
import { functions } from '../functions/catalog.ts'
import { createPool } from '../shared/db.ts'
import { createLogger } from '../shared/log.ts'
import { migrate } from '../shared/migrate.ts'
import { startEmbeddedPostgres } from '../knative/local/embedded-postgres.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string
    /** False on PGlite, which serves every connection from one session: concurrency tests need the real server. */
    realPostgres: boolean
  }
}

export default async function setup(project: TestProject) {
  const given = process.env.DATABASE_URL
  let url: string
  let cleanup: () => Promise<void>
  if (given) {
    const name = `shop_test_${Date.now().toString(36)}_${process.pid}`
    await withClient(given, (c) => c.query(`CREATE DATABASE ${name}`))
    const u = new URL(given)
    u.pathname = `/${name}`
    url = u.href
    cleanup = () => withClient(given, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {})
  } else {
    const embedded = await startEmbeddedPostgres()
    url = embedded.url
    cleanup = embedded.stop
  }

  const log = createLogger({ name: 'test-setup', level: 'warn' })
  const pool = createPool({ connectionString: url, applicationName: 'test-setup', log, max: 2 })
  try {
    for (const fn of functions) {
      await migrate(pool, { schema: fn.schema, dir: new URL(`../functions/${fn.name}/migrations/`, import.meta.url), log })
    }
  } finally {
    await pool.end()
  }

  project.provide('databaseUrl', url)
  project.provide('realPostgres', Boolean(given))
  return cleanup
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
