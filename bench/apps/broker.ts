/**
 * A bench-only process: the local broker of eventing/local alone, as a process of its own (on a
 * cluster its ingress and dispatcher are pods of their own too), so that benchmark 5 can measure
 * it apart from the load generator and the subscriber.
 *
 *   MANIFESTS_DIR=… AMQP_URL=… SINK_URL=http://127.0.0.1:…  LOG_FILE=… node dist/bench/apps/broker.mjs
 *
 * Every Service the manifests name resolves to SINK_URL. Logs at info (one line per event accepted
 * and delivered, as `npm start` runs it) to LOG_FILE; prints one line `{"brokers":{…}}` on stdout
 * once ready; SIGTERM stops it cleanly.
 */
import { createWriteStream } from 'node:fs'
import { startLocalBroker } from '../../eventing/local/broker.ts'
import { createLogger } from '../../shared/log.ts'

const { MANIFESTS_DIR, AMQP_URL, SINK_URL, LOG_FILE } = process.env
if (!MANIFESTS_DIR || !SINK_URL || !LOG_FILE) {
  console.error('broker: MANIFESTS_DIR, SINK_URL and LOG_FILE are required')
  process.exit(2)
}
const file = createWriteStream(LOG_FILE, { flags: 'a' })
const broker = await startLocalBroker({
  manifestsDir: MANIFESTS_DIR,
  ...(AMQP_URL ? { amqpUrl: AMQP_URL } : {}),
  resolve: () => SINK_URL,
  log: createLogger({ name: 'broker', level: 'info', write: (line) => file.write(`${line}\n`) }),
})
process.stdout.write(`${JSON.stringify({ brokers: broker.brokers })}\n`)
// SIGTERM from the bench, or the bench gone (its IPC channel closed): stop either way.
const stop = () => {
  broker.stop().then(
    () => file.end(() => process.exit(0)),
    () => process.exit(1),
  )
}
process.once('SIGTERM', stop)
process.once('disconnect', stop)
