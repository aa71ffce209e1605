/**
 * @module
 * Rows the benchmarks read and write, put straight into the database: seeding through the API
 * would measure the seeding.
 */
import type { Pool } from '../shared/db.ts'

export type SeededProduct = { id: string; price_cents: number }

/** At least `n` products (made once per database), with stock that no benchmark runs out of. */
export async function ensureProducts(pool: Pool, n = 1000): Promise<SeededProduct[]> {
  const existing = await pool.query<SeededProduct>(`SELECT id, price_cents FROM product.products WHERE name LIKE 'Bench product %'`)
  if (existing.rows.length >= n) return existing.rows
  // Descriptions of a realistic length: the JSON answered is part of the cost measured.
  await pool.query(
    `INSERT INTO product.products (name, description, price_cents, stock)
     SELECT 'Bench product ' || i, repeat('A sturdy thing for the kitchen, made to last. ', 4), 100 + (i * 37) % 9900, 1000000
     FROM generate_series($1::int, $2::int) AS i`,
    [existing.rows.length + 1, n],
  )
  return (await pool.query<SeededProduct>(`SELECT id, price_cents FROM product.products WHERE name LIKE 'Bench product %'`)).rows
}

/** Customers that can log in with `password`, all sharing one bcrypt hash (hashing each would take minutes). */
export async function ensureLoginUsers(pool: Pool, emails: string[], passwordHash: string): Promise<void> {
  await pool.query(
    `INSERT INTO auth.users (email, name, password_hash) SELECT e, 'Bench shopper', $2 FROM unnest($1::text[]) AS e
     ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash`,
    [emails, passwordHash],
  )
}

export const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!
