import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { testPool } from '../test/support.ts'
import { isPgError, withTransaction } from './db.ts'

const pool = testPool()
const table = `public.tx_${randomUUID().replaceAll('-', '').slice(0, 12)}`

beforeAll(async () => {
  await pool.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`)
})

describe('withTransaction', () => {
  it('commits when the function resolves', async () => {
    await withTransaction(pool, (tx) => tx.query(`INSERT INTO ${table} VALUES (1)`))
    expect((await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE id = 1`)).rows[0].n).toBe(1)
  })

  it('rolls back and rethrows when it throws', async () => {
    const err = await withTransaction(pool, async (tx) => {
      await tx.query(`INSERT INTO ${table} VALUES (2)`)
      await tx.query(`INSERT INTO ${table} VALUES (2)`)
    }).catch((e: unknown) => e)
    expect(isPgError(err, '23505')).toBe(true)
    expect((await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE id = 2`)).rows[0].n).toBe(0)
  })
})
