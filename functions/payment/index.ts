import * as v from 'valibot'
import { PublicJwks, createTokenVerifier } from '../../shared/auth.ts'
import { BaseEnv, intVar, jsonVar, loadConfig, numberVar, optionalUrlVar } from '../../shared/config.ts'
import { createPublisher } from '../../shared/events.ts'
import { main, startFunction } from '../../shared/server.ts'
import { paymentApp } from './app.ts'

const PaymentEnv = v.object({
  ...BaseEnv,
  JWT_PUBLIC_KEYS: jsonVar(PublicJwks),
  K_SINK: optionalUrlVar(['http:', 'https:']),
  PAYMENT_SUCCESS_RATE: numberVar(0.8, 0, 1),
  PAYMENT_DELAY_MS: intVar(2000, 0, 60_000),
})

main('payment', async () => {
  const config = loadConfig(PaymentEnv, process.env)
  const verify = createTokenVerifier({ jwks: config.JWT_PUBLIC_KEYS, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE })
  return startFunction({
    name: 'payment',
    config,
    schema: 'payment',
    migrations: new URL('./migrations/', import.meta.url),
    app: ({ pool, log, metrics }) => {
      if (!config.K_SINK) log.warn('K_SINK is not set: every payment.status publish will fail and order.created will be retried')
      const publish = createPublisher({ sink: config.K_SINK, metrics })
      return paymentApp({
        pool,
        log,
        metrics,
        verify,
        publish,
        successRate: config.PAYMENT_SUCCESS_RATE,
        delayMs: config.PAYMENT_DELAY_MS,
      })
    },
  })
})
