import * as v from 'valibot'
import { PublicJwks, createTokenVerifier } from '../../shared/auth.ts'
import { BaseEnv, intVar, jsonVar, loadConfig } from '../../shared/config.ts'
import { main, startFunction } from '../../shared/server.ts'
import { productApp } from './app.ts'

const ProductEnv = v.object({
  ...BaseEnv,
  JWT_PUBLIC_KEYS: jsonVar(PublicJwks),
  // Seconds a hold waits for order.created before its units come back: longer than the order
  // function ever takes to commit and publish (its outbox is flushed every 5 minutes).
  RESERVATION_TTL_S: intVar(600, 1, 86_400),
})

main('product', async () => {
  const config = loadConfig(ProductEnv, process.env)
  const verify = createTokenVerifier({ jwks: config.JWT_PUBLIC_KEYS, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE })
  return startFunction({
    name: 'product',
    config,
    schema: 'product',
    migrations: new URL('./migrations/', import.meta.url),
    app: ({ pool, log, metrics }) => productApp({ pool, log, metrics, verify, reservationTtlSeconds: config.RESERVATION_TTL_S }),
  })
})
