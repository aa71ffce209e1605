/**
 * Many connections at once, each its own session, as on the cluster: named statements prepared
 * per connection, and row locks that make read-modify-write transactions take turns.
 */
import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { testPool } from '../test/support.ts'
import { withTransaction } from './db.ts'

const CLIENTS = 20
const ROUNDS = 10
const pool = testPool(CLIENTS)

describe('the database under concurrent transactions', () => {
  it(`counts exactly with ${CLIENTS} clients incrementing one row under SELECT … FOR UPDATE, with named statements`, async () => {
    const schema = `conc_${randomUUID().replaceAll('-', '').slice(0, 12)}`
    await pool.query(`CREATE SCHEMA ${schema}`)
    await pool.query(`CREATE TABLE ${schema}.counter (id int PRIMARY KEY, n int NOT NULL)`)
    await pool.query(`INSERT INTO ${schema}.counter VALUES (1, 0)`)
    const read = { name: `${schema}-read`, text: `SELECT n FROM ${schema}.counter WHERE id = 1 FOR UPDATE` }
    const write = { name: `${schema}-write`, text: `UPDATE ${schema}.counter SET n = $1 WHERE id = 1` }
    const prepared: number[] = []
    try {
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          for (let round = 0; round < ROUNDS; round++) {
            await withTransaction(pool, async (tx) => {
              const { rows } = await tx.query<{ n: number }>({ ...read, values: [] })
              // The increment is computed here, not in SQL: only the row lock keeps it from being lost.
              await tx.query({ ...write, values: [rows[0]!.n + 1] })
              if (round === ROUNDS - 1) {
                const { rows: statements } = await tx.query('SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = ANY($1)', [[read.name, write.name]])
                prepared.push(statements[0].n)
              }
            })
          }
        }),
      )
      const { rows } = await pool.query(`SELECT n FROM ${schema}.counter WHERE id = 1`)
      expect(rows[0].n).toBe(CLIENTS * ROUNDS)
      // Each session holds the statements it prepared.
      expect(prepared).toEqual(Array(CLIENTS).fill(2))
    } finally {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`)
    }
  })
})
