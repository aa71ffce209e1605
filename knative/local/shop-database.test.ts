import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { dropDatabase, withDatabase } from './databases.ts'
import { openShopDatabase, pgliteDirectory } from './shop-database.ts'
import { testClient } from '../../test/support.ts'

const scratch = await mkdtemp(join(tmpdir(), 'h3-shop-database-test-'))
// Under root the embedded server runs as the user postgres, who must be able to enter it.
await chmod(scratch, 0o755)
afterAll(() => rm(scratch, { recursive: true, force: true }))

/** A DATA_DIR as the PGlite of earlier versions left it: its cluster in pgdata/. */
async function pgliteDataDir() {
  const dataDir = await mkdtemp(join(scratch, 'data-'))
  await chmod(dataDir, 0o755)
  await mkdir(join(dataDir, 'pgdata', 'base'), { recursive: true })
  await writeFile(join(dataDir, 'pgdata', 'PG_VERSION'), '18\n')
  return dataDir
}

describe('the database npm start gives the functions', () => {
  it('spots a DATA_DIR/pgdata made by PGlite, and only that', async () => {
    const line = await pgliteDirectory(await pgliteDataDir())
    expect(line).toMatch(/^the embedded database changed from PGlite to PostgreSQL 15: \S*pgdata \(PGlite's, PostgreSQL 18\) is no longer read.*delete \S*pgdata once you no longer need its data$/)
    expect(await pgliteDirectory(await mkdtemp(join(scratch, 'empty-')))).toBeUndefined()
  })

  it('says so beside a PGlite directory, leaves it alone, and serves the shop database from DATA_DIR/postgres', async () => {
    const dataDir = await pgliteDataDir()
    const lines: string[] = []
    const database = await openShopDatabase({ dataDir, say: (l) => lines.push(l) })
    try {
      expect(lines[0]).toMatch(/changed from PGlite/)
      expect(lines).toContainEqual(expect.stringMatching(/created the database shop/))
      expect(database.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/shop$/)
      expect(database.description).toMatch(/^embedded PostgreSQL 15\.\d+ in \S+postgres, 127\.0\.0\.1:\d+$/)
      const client = testClient(database.url)
      await client.connect()
      expect((await client.query('SELECT current_database() AS db')).rows).toEqual([{ db: 'shop' }])
      await client.end()
    } finally {
      await database.stop()
    }
    expect(existsSync(join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true)
    expect(await readFile(join(dataDir, 'pgdata', 'PG_VERSION'), 'utf8')).toBe('18\n')
  }, 60_000)

  it('with a DATABASE_URL whose database is missing, creates it', async () => {
    const name = `h3_shop_${randomUUID().replaceAll('-', '').slice(0, 10)}`
    const lines: string[] = []
    const database = await openShopDatabase({ dataDir: scratch, databaseUrl: withDatabase(inject('databaseUrl'), name), say: (l) => lines.push(l) })
    try {
      expect(lines).toEqual([expect.stringContaining(`created the database ${name}`)])
      expect(database.description).toMatch(new RegExp(`^${name} at 127\\.0\\.0\\.1:\\d+ \\(DATABASE_URL\\)$`))
    } finally {
      await database.stop()
      await dropDatabase(inject('databaseUrl'), name)
    }
  })
})
