/**
 * @module
 * Tokens as auth would issue them: one Ed25519 key for the run, its JWKS for the functions'
 * JWT_PUBLIC_KEYS, and signed tokens for as many users as a benchmark wants.
 */
import { randomUUID } from 'node:crypto'
import { createTokenSigner, generateSigningKey, type PrivateJwk } from '../shared/auth.ts'

export type BenchUser = { id: string; email: string; token: string }
export type BenchKeys = Awaited<ReturnType<typeof createKeys>>

// What the functions expect by default (JWT_ISSUER, JWT_AUDIENCE).
const issuer = { issuer: 'shop-auth', audience: 'shop' }

export async function createKeys(given?: PrivateJwk) {
  const privateJwk = given ?? (await generateSigningKey()).privateJwk
  const { kty, crv, x, kid } = privateJwk
  const signer = await createTokenSigner({ privateJwk, ...issuer })
  return {
    privateJwk,
    /** JWT_PRIVATE_KEY */
    privateKey: JSON.stringify(privateJwk),
    /** JWT_PUBLIC_KEYS */
    jwks: JSON.stringify({ keys: [{ kty, crv, x, kid, alg: 'EdDSA', use: 'sig' }] }),
    /** `n` customers with a token each (valid for a day). */
    async users(n: number): Promise<BenchUser[]> {
      return Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const id = randomUUID()
          const email = `bench-${i}-${id.slice(0, 8)}@example.test`
          return { id, email, token: await signer.sign({ id, email, role: 'customer' }) }
        }),
      )
    },
  }
}
