import * as v from 'valibot'
import { PublicJwks, createTokenVerifier } from '../../shared/auth.ts'
import { BaseEnv, jsonVar, loadConfig, optionalUrlVar, urlVar } from '../../shared/config.ts'
import { createPublisher } from '../../shared/events.ts'
import { createProductClient } from '../../shared/product-client.ts'
import { main, startFunction } from '../../shared/server.ts'
import { orderApp } from './app.ts'

const OrderEnv = v.object({
  ...BaseEnv,
  JWT_PUBLIC_KEYS: jsonVar(PublicJwks),
  PRODUCT_URL: urlVar(['http:', 'https:']),
  // Set by the SinkBinding to the orders broker.
  K_SINK: optionalUrlVar(['http:', 'https:']),
})

main('order', async () => {
  const config = loadConfig(OrderEnv, process.env)
  const verify = createTokenVerifier({ jwks: config.JWT_PUBLIC_KEYS, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE })
  const products = createProductClient({ baseUrl: config.PRODUCT_URL })
  return startFunction({
    name: 'order',
    config,
    schema: 'orders',
    migrations: new URL('./migrations/', import.meta.url),
    app: ({ pool, log, metrics }) => {
      if (!config.K_SINK) log.warn('K_SINK is not set: order.created events stay in the outbox until it is')
      return orderApp({ pool, log, metrics, verify, products, publish: createPublisher({ sink: config.K_SINK, metrics }) })
    },
  })
})
