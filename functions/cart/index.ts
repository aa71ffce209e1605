import * as v from 'valibot'
import { PublicJwks, createTokenVerifier } from '../../shared/auth.ts'
import { BaseEnv, jsonVar, loadConfig, urlVar } from '../../shared/config.ts'
import { createProductClient } from '../../shared/product-client.ts'
import { main, startFunction } from '../../shared/server.ts'
import { cartApp } from './app.ts'

const CartEnv = v.object({ ...BaseEnv, JWT_PUBLIC_KEYS: jsonVar(PublicJwks), PRODUCT_URL: urlVar(['http:', 'https:']) })

main('cart', async () => {
  const config = loadConfig(CartEnv, process.env)
  const verify = createTokenVerifier({ jwks: config.JWT_PUBLIC_KEYS, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE })
  const products = createProductClient({ baseUrl: config.PRODUCT_URL })
  return startFunction({
    name: 'cart',
    config,
    schema: 'cart',
    migrations: new URL('./migrations/', import.meta.url),
    app: ({ pool, log, metrics }) => cartApp({ pool, log, metrics, verify, products }),
  })
})
