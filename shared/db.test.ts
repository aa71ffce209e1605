import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { testPool } from '../test/support.ts'
import { isDatabaseUnavailable, isPgError, withTransaction } from './db.ts'

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

  // Two transactions that lock two rows in opposite orders, each held at a gate until the other
  // has its first row: each then waits for the other, and the server aborts one of them (40P01).
  const deadlock = async (attempts: number) => {
    const [first, second] = [Math.floor(Math.random() * 1e9), Math.floor(Math.random() * 1e9) + 1e9]
    await pool.query(`INSERT INTO ${table} VALUES ($1), ($2)`, [first, second])
    const gate = () => {
      let open!: () => void
      return { opened: new Promise<void>((r) => (open = r)), open: () => open() }
    }
    const [aHas, bHas] = [gate(), gate()]
    const runs = { a: 0, b: 0 }
    const lock = (tx: { query: (sql: string, values: unknown[]) => Promise<unknown> }, id: number) => tx.query(`SELECT 1 FROM ${table} WHERE id = $1 FOR UPDATE`, [id])
    const a = withTransaction(pool, async (tx) => {
      runs.a++
      await lock(tx, first)
      aHas.open()
      await bHas.opened
      await lock(tx, second)
    }, attempts)
    const b = withTransaction(pool, async (tx) => {
      runs.b++
      await lock(tx, second)
      bHas.open()
      await aHas.opened
      await lock(tx, first)
    }, attempts)
    return { results: await Promise.allSettled([a, b]), runs }
  }

  it('runs again a transaction the server aborted to break a deadlock: both commit, one ran twice', async () => {
    const { results, runs } = await deadlock(3)
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled'])
    expect(runs.a + runs.b).toBe(3)
  })

  it('when every attempt is refused, throws the deadlock, which routes answer 503 (the database cannot serve it now)', async () => {
    const { results } = await deadlock(1)
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    expect(rejected).toHaveLength(1)
    expect(isPgError(rejected[0]!.reason, '40P01')).toBe(true)
    expect(isDatabaseUnavailable(rejected[0]!.reason)).toBe(true)
  })
})
