import * as v from 'valibot'
import { PrivateJwk, PublicJwks, createTokenSigner, createTokenVerifier, generateSigningKey, publicJwkOf } from '../../shared/auth.ts'
import { BaseEnv, ConfigError, intVar, jsonVar, loadConfig } from '../../shared/config.ts'
import { main, startFunction } from '../../shared/server.ts'
import { ensureAdmin } from './admin.ts'
import { Email, Password, authApp } from './app.ts'
import { DEFAULT_LOGIN_LIMITS } from './login-limits.ts'
import { createPasswordHasher } from './password.ts'

const AuthEnv = v.object({
  ...BaseEnv,
  JWT_PRIVATE_KEY: v.optional(jsonVar(PrivateJwk)),
  JWT_PUBLIC_KEYS: v.optional(jsonVar(PublicJwks)),
  BCRYPT_COST: intVar(10, 4, 15),
  BCRYPT_THREADS: intVar(1, 1, 16),
  ADMIN_EMAIL: v.optional(Email),
  ADMIN_PASSWORD: v.optional(Password),
  // Failed logins (login-limits.ts): per email from one client address, and per address.
  LOGIN_MAX_FAILURES: intVar(DEFAULT_LOGIN_LIMITS.maxFailures, 1, 10_000),
  LOGIN_WINDOW_S: intVar(DEFAULT_LOGIN_LIMITS.windowSeconds, 1, 86_400),
  LOGIN_LOCK_S: intVar(DEFAULT_LOGIN_LIMITS.lockSeconds, 1, 86_400),
  LOGIN_CLIENT_MAX_FAILURES: intVar(DEFAULT_LOGIN_LIMITS.clientMaxFailures, 1, 100_000),
  LOGIN_CLIENT_WINDOW_S: intVar(DEFAULT_LOGIN_LIMITS.clientWindowSeconds, 1, 86_400),
  LOGIN_CLIENT_LOCK_S: intVar(DEFAULT_LOGIN_LIMITS.clientLockSeconds, 1, 86_400),
})

main('auth', async () => {
  const config = loadConfig(AuthEnv, process.env)
  const production = config.NODE_ENV === 'production'
  if (production && !config.JWT_PRIVATE_KEY) throw new ConfigError('invalid configuration:\n  JWT_PRIVATE_KEY: is required in production (got unset)')
  if (production && config.BCRYPT_COST < 10) throw new ConfigError('invalid configuration:\n  BCRYPT_COST: must be 10 or more in production')
  if (Boolean(config.ADMIN_EMAIL) !== Boolean(config.ADMIN_PASSWORD)) {
    throw new ConfigError('invalid configuration:\n  ADMIN_EMAIL, ADMIN_PASSWORD: set both or neither')
  }
  const generated = !config.JWT_PRIVATE_KEY
  const privateJwk = config.JWT_PRIVATE_KEY ?? (await generateSigningKey()).privateJwk
  // Rotation: JWT_PUBLIC_KEYS lists every key still trusted; alone, auth trusts its own.
  const jwks = config.JWT_PUBLIC_KEYS ?? ({ keys: [publicJwkOf(privateJwk)] } as PublicJwks)
  const hasher = createPasswordHasher({ cost: config.BCRYPT_COST, threads: config.BCRYPT_THREADS })

  return startFunction({
    name: 'auth',
    config,
    schema: 'auth',
    migrations: new URL('./migrations/', import.meta.url),
    app: async ({ pool, log, metrics }) => {
      if (generated) log.warn('JWT_PRIVATE_KEY is not set: signing with a key generated for this process; tokens die with it')
      if (!jwks.keys.some((k) => k.kid === privateJwk.kid)) log.warn('JWT_PUBLIC_KEYS does not have the signing key; tokens will not verify', { kid: privateJwk.kid })
      if (config.ADMIN_EMAIL && config.ADMIN_PASSWORD) {
        const outcome = await ensureAdmin({ pool, hasher, email: config.ADMIN_EMAIL, password: config.ADMIN_PASSWORD })
        log.info(`admin account ${outcome}`, { email: config.ADMIN_EMAIL })
      }
      const issuer = { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE }
      const signer = await createTokenSigner({ privateJwk, ...issuer })
      const verify = createTokenVerifier({ jwks, ...issuer })
      const loginLimits = {
        maxFailures: config.LOGIN_MAX_FAILURES,
        windowSeconds: config.LOGIN_WINDOW_S,
        lockSeconds: config.LOGIN_LOCK_S,
        clientMaxFailures: config.LOGIN_CLIENT_MAX_FAILURES,
        clientWindowSeconds: config.LOGIN_CLIENT_WINDOW_S,
        clientLockSeconds: config.LOGIN_CLIENT_LOCK_S,
      }
      return authApp({ pool, log, metrics, hasher, signer, verify, jwks, loginLimits })
    },
    onStop: () => hasher.close(),
  })
})
