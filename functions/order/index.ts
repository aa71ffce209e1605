import * as v from 'valibot'
import { PublicJwks, createTokenVerifier } from '../../shared/auth.ts'
import { BaseEnv, intVar, jsonVar, loadConfig, optionalUrlVar, urlVar } from '../../shared/config.ts'
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
  // A pending order is announced again this long after its last announcement, and expires this
  // long after it was placed (the outbox sweep does both, on the PingSource's schedule).
  ORDER_REANNOUNCE_AFTER_S: intVar(60, 1, 86_400),
  ORDER_EXPIRE_AFTER_S: intVar(900, 1, 30 * 86_400),
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
      if (!config.K_SINK) log.warn('K_SINK is not set: order events stay in the outbox until it is')
      return orderApp({
        pool,
        log,
        metrics,
        verify,
        products,
        publish: createPublisher({ sink: config.K_SINK, metrics }),
        reannounceAfterS: config.ORDER_REANNOUNCE_AFTER_S,
        expireAfterS: config.ORDER_EXPIRE_AFTER_S,
      })
    },
  })
})
