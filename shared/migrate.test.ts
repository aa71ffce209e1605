import { randomUUID } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, inject, it } from 'vitest'
import { quietLog, testPool } from '../test/support.ts'
import { createPool } from './db.ts'
import { migrate } from './migrate.ts'

const pool = testPool()

async function fixture(files: Record<string, string>) {
  const dir = await mkdtemp(join(tmpdir(), 'migrations-'))
  for (const [name, sql] of Object.entries(files)) await writeFile(join(dir, name), sql)
  return dir
}
const schemaName = () => `mig_${randomUUID().replaceAll('-', '').slice(0, 12)}`

describe('migrate', () => {
  it('applies each file once, in order, and records it', async () => {
    const schema = schemaName()
    const dir = await fixture({
      '001_create_things.sql': `CREATE TABLE ${schema}.things (id int PRIMARY KEY);`,
      '002_add_name.sql': `ALTER TABLE ${schema}.things ADD COLUMN name text;`,
    })
    expect(await migrate(pool, { schema, dir, log: quietLog })).toEqual(['001_create_things.sql', '002_add_name.sql'])
    expect(await migrate(pool, { schema, dir, log: quietLog })).toEqual([])
    await writeFile(join(dir, '003_add_index.sql'), `CREATE INDEX ON ${schema}.things (name);`)
    expect(await migrate(pool, { schema, dir, log: quietLog })).toEqual(['003_add_index.sql'])
    const { rows } = await pool.query(`SELECT version, name FROM ${schema}.schema_migrations ORDER BY version`)
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3])
  })

  it('refuses a file changed after it was applied', async () => {
    const schema = schemaName()
    const dir = await fixture({ '001_create_things.sql': `CREATE TABLE ${schema}.things (id int);` })
    await migrate(pool, { schema, dir, log: quietLog })
    await writeFile(join(dir, '001_create_things.sql'), `CREATE TABLE ${schema}.things (id bigint);`)
    await expect(migrate(pool, { schema, dir, log: quietLog })).rejects.toThrow(/changed after it was applied/)
  })

  it('rolls a failing file back whole and names it', async () => {
    const schema = schemaName()
    const dir = await fixture({ '001_broken.sql': `CREATE TABLE ${schema}.a (id int); SELECT * FROM nowhere;` })
    await expect(migrate(pool, { schema, dir, log: quietLog })).rejects.toThrow(/001_broken.sql failed/)
    const { rows } = await pool.query(`SELECT to_regclass('${schema}.a') AS t`)
    expect(rows[0].t).toBeNull()
  })

  it('refuses gaps and bad names', async () => {
    const schema = schemaName()
    await expect(migrate(pool, { schema, dir: await fixture({ '002_x.sql': 'SELECT 1' }), log: quietLog })).rejects.toThrow(/expected number 1/)
    await expect(migrate(pool, { schema, dir: await fixture({ 'create.sql': 'SELECT 1' }), log: quietLog })).rejects.toThrow(/001_create_things/)
  })

  it('applies once when several processes start at the same time', async () => {
    const schema = schemaName()
    const dir = await fixture({
      '001_create_things.sql': `CREATE TABLE ${schema}.things (id int); SELECT pg_sleep(0.2);`,
      '002_count.sql': `INSERT INTO ${schema}.things VALUES (1);`,
    })
    const results = await Promise.all(Array.from({ length: 4 }, () => migrate(pool, { schema, dir, log: quietLog })))
    expect(results.flat()).toHaveLength(2)
    expect((await pool.query(`SELECT count(*)::int AS n FROM ${schema}.things`)).rows[0].n).toBe(1)
  })
})

describe('migrate as a function’s own role', () => {
  // On a cluster each function connects as a role that owns its schema and nothing more.
  it('migrates a schema the role owns without the right to create schemas', async () => {
    const schema = schemaName()
    const role = `r_${schema}`
    await pool.query(`CREATE ROLE ${role} LOGIN`)
    await pool.query(`CREATE SCHEMA ${schema} AUTHORIZATION ${role}`)
    const url = new URL(inject('databaseUrl'))
    url.username = role
    const own = createPool({ connectionString: url.href, applicationName: 't', log: quietLog })
    try {
      const dir = await fixture({ '001_create_things.sql': `CREATE TABLE ${schema}.things (id int);` })
      expect(await migrate(own, { schema, dir, log: quietLog })).toEqual(['001_create_things.sql'])
      await expect(own.query(`CREATE SCHEMA ${schema}_other`)).rejects.toThrow(/permission denied/)
    } finally {
      await own.end()
      await pool.query(`DROP SCHEMA ${schema} CASCADE`)
      await pool.query(`DROP ROLE ${role}`)
    }
  })
})
