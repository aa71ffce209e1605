import { randomUUID } from 'node:crypto'
import { describe, expect, inject, it } from 'vitest'
import { withDatabase } from '../knative/local/databases.ts'
import { createTestDatabase } from './test-database.ts'
import { testClient } from './support.ts'

describe('the test setup', () => {
  it('works with a DATABASE_URL naming a database that does not exist', async () => {
    const missing = withDatabase(inject('databaseUrl'), `h3_nowhere_${randomUUID().replaceAll('-', '').slice(0, 10)}`)
    const database = await createTestDatabase(missing)
    const client = testClient(database.url)
    await client.connect()
    try {
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM product.schema_migrations`)
      expect(rows[0].n).toBeGreaterThan(0)
    } finally {
      await client.end()
      await database.drop()
    }
    const name = new URL(database.url).pathname.slice(1)
    const admin = testClient(inject('databaseUrl'))
    await admin.connect()
    expect((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount).toBe(0)
    await admin.end()
  })
})
