import * as v from 'valibot'
import { PublicJwks, createTokenVerifier } from '../../shared/auth.ts'
import { BaseEnv, jsonVar, loadConfig } from '../../shared/config.ts'
import { main, startFunction } from '../../shared/server.ts'
import { productApp } from './app.ts'

const ProductEnv = v.object({ ...BaseEnv, JWT_PUBLIC_KEYS: jsonVar(PublicJwks) })

main('product', async () => {
  const config = loadConfig(ProductEnv, process.env)
  const verify = createTokenVerifier({ jwks: config.JWT_PUBLIC_KEYS, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE })
  return startFunction({
    name: 'product',
    config,
    schema: 'product',
    migrations: new URL('./migrations/', import.meta.url),
    app: ({ pool, log, metrics }) => productApp({ pool, log, metrics, verify }),
  })
})
