import type { Pool } from '../../shared/db.ts'
import type { PasswordHasher } from './password.ts'

/**
 * Makes sure the account `email` exists, is an admin, and has `password`: what `ADMIN_EMAIL`
 * and `ADMIN_PASSWORD` ask for at start. Registration can never make an admin. Answers `'kept'`
 * (already so: no write), `'updated'` (an existing account made admin or given this password) or
 * `'created'`; rejects when the database does.
 */
export async function ensureAdmin({ pool, hasher, email, password }: { pool: Pool; hasher: PasswordHasher; email: string; password: string }) {
  const { rows } = await pool.query<{ role: string; password_hash: string }>(
    'SELECT role, password_hash FROM auth.users WHERE email = $1',
    [email],
  )
  const existing = rows[0]
  if (existing?.role === 'admin' && (await hasher.verify(password, existing.password_hash))) return 'kept'
  const hash = await hasher.hash(password)
  await pool.query(
    `INSERT INTO auth.users (email, name, role, password_hash) VALUES ($1, 'Administrator', 'admin', $2)
     ON CONFLICT (email) DO UPDATE SET role = 'admin', password_hash = EXCLUDED.password_hash, updated_at = now()`,
    [email, hash],
  )
  return existing ? 'updated' : 'created'
}
