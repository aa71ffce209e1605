/**
 * @module
 * Removes what the local broker declared in RabbitMQ for a namespace: for tests, benchmarks and
 * load runs that use a namespace of their own.
 */
import { connect } from 'amqplib'
import { loadManifests } from './manifests.ts'
import { planTopology } from './topology.ts'

/** Deletes the exchanges and queues the manifests in `dir` declare. */
export async function deleteTopology(amqpUrl: string, dir: string, namespace?: string) {
  const topology = planTopology(await loadManifests(dir, namespace ? { namespace } : {}))
  const connection = await connect(amqpUrl)
  // amqplib emits 'error' on a connection that drops and a channel RabbitMQ closes; unheard, that
  // is thrown and ends the process. The operation it cut short rejects anyway, and that is enough.
  connection.on('error', () => {})
  try {
    const channel = await connection.createChannel()
    channel.on('error', () => {})
    for (const q of topology.queues) await channel.deleteQueue(q.name)
    for (const e of topology.exchanges) await channel.deleteExchange(e)
  } finally {
    await connection.close()
  }
}
