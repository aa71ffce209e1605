import * as v from 'valibot'
import { BaseEnv, jsonVar, loadConfig } from '../../shared/config.ts'
import { main, startFunction } from '../../shared/server.ts'
import { deadLetterApp } from './app.ts'

// Event type → the ingress URL of the Broker that carries it: where a redrive sends a dead letter.
const BrokerUrls = v.record(
  v.pipe(v.string(), v.nonEmpty('an event type must not be empty')),
  v.pipe(v.string(), v.check((s) => URL.canParse(s) && ['http:', 'https:'].includes(new URL(s).protocol), 'must be an http:// or https:// URL')),
  'must be a JSON object of event type → broker URL',
)

const DeadLetterEnv = v.object({
  ...BaseEnv,
  // Unset: nothing can be redriven (each event says why), the rest works.
  BROKER_URLS: v.optional(jsonVar(BrokerUrls), '{}'),
})

main('dead-letter', async () => {
  const config = loadConfig(DeadLetterEnv, process.env)
  return startFunction({
    name: 'dead-letter',
    config,
    schema: 'deadletter',
    migrations: new URL('./migrations/', import.meta.url),
    app: ({ pool, log, metrics }) => {
      if (Object.keys(config.BROKER_URLS).length === 0) log.warn('BROKER_URLS is not set: dead letters cannot be redriven until it is')
      return deadLetterApp({ pool, log, metrics, brokerUrls: config.BROKER_URLS })
    },
  })
})
