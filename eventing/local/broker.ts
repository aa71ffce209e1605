/**
 * @module
 * The local broker: plays the Brokers, Triggers, PingSources and SinkBindings of `eventing/` on
 * one machine, with the delivery semantics of eventing-rabbitmq (see dispatch.ts). With an
 * `amqpUrl` it keeps its queues in RabbitMQ, laid out as eventing-rabbitmq lays them out, so a
 * restart of the broker or of RabbitMQ loses no accepted event; without one, in memory.
 *
 * Log lines to count (JSON, through the given Logger): `event accepted`, `event delivered`,
 * `event replied`, `event retried`, `event dead-lettered`, `event dropped`, `dead letter delivered`.
 */
import type { Logger } from '../../shared/log.ts'
import { deadLetterDispatcher, triggerDispatcher, type Target } from './dispatch.ts'
import { startIngress, type Ingress } from './ingress.ts'
import { loadManifests, type Destination } from './manifests.ts'
import { startPingSources } from './ping.ts'
import type { EventQueues } from './queue.ts'
import { createAmqpQueues } from './queue-amqp.ts'
import { createMemoryQueues } from './queue-memory.ts'
import { planTopology } from './topology.ts'

export type LocalBrokerOptions = {
  /** The folder of the Knative manifests (`eventing/`). */
  manifestsDir: string
  /** RabbitMQ to keep the queues in; unset: in memory (lost on exit). */
  amqpUrl?: string
  /** A Knative Service's base URL (`http://127.0.0.1:8084`), or undefined while it is not up (retried). */
  resolve: (serviceName: string) => string | undefined
  log: Logger
  /**
   * PingSource name → schedule, replacing `spec.schedule` (tests, `npm start`): a 5-field cron,
   * a 6-field cron with seconds first (`0,30 * * * * *`), or `@every 500ms` / `10s` / `1m` (cron.ts).
   */
  pingSchedules?: Record<string, string>
  /** Plays the manifests in this namespace instead of theirs (tests: a fresh one per run, so RabbitMQ names never clash). */
  namespace?: string
}

export type LocalBroker = {
  mode: 'memory' | 'rabbitmq'
  /** The namespace its exchanges and queues are named in (`b.<namespace>.<broker>`, `<namespace>.<trigger>`). */
  namespace: string
  /** Broker name → its ingress URL (`http://127.0.0.1:<port>/`). */
  brokers: Record<string, string>
  /** The K_SINK a Service gets from its SinkBinding, if it has one. */
  sinkFor(service: string): string | undefined
  /**
   * Stops delivering, before the subscribers stop: the PingSources stop, no delivery or retry
   * starts, and the attempts under way finish (up to `timeoutMs`, default 10 s); what is not
   * delivered stays queued. The ingresses still take events, from subscribers finishing their work.
   */
  drain(timeoutMs?: number): Promise<void>
  /** Closes the ingresses and stops delivering; what is in flight is not acked (RabbitMQ keeps it). */
  stop(): Promise<void>
}

/**
 * @example
 * ```ts
 * const broker = await startLocalBroker({ manifestsDir: 'eventing', amqpUrl: process.env.AMQP_URL,
 *   resolve: (name) => urls[name], log })
 * spawn('node', ['dist/order/index.mjs'], { env: { K_SINK: broker.sinkFor('order'), … } })
 * ```
 */
export async function startLocalBroker({ manifestsDir, amqpUrl, resolve, log, pingSchedules, namespace }: LocalBrokerOptions): Promise<LocalBroker> {
  const manifests = await loadManifests(manifestsDir, namespace ? { namespace } : {})
  for (const warning of manifests.warnings) log.warn(warning)
  const unknown = Object.keys(pingSchedules ?? {}).filter((name) => !manifests.pingSources.some((p) => p.name === name))
  if (unknown.length > 0) throw new Error(`pingSchedules names no PingSource: ${unknown.join(', ')}`)
  const topology = planTopology(manifests)
  const ns = topology.namespace

  let queues: EventQueues
  if (amqpUrl) {
    queues = await createAmqpQueues({ url: amqpUrl, topology, log }).catch((err: unknown) => {
      throw new Error(`the local broker could not set up its queues in RabbitMQ at ${redact(amqpUrl)}: ${(err as Error).message}`, { cause: err })
    })
    log.info('the local broker keeps its queues in RabbitMQ', { rabbitmq: redact(amqpUrl), namespace: ns })
  } else {
    queues = createMemoryQueues({ topology, log })
    log.warn('the local broker keeps its queues in memory: events not yet delivered are lost when it stops (set AMQP_URL to keep them in RabbitMQ)')
  }

  const ingresses: Ingress[] = []
  const brokers: Record<string, string> = {}
  try {
    for (const { broker, exchange } of topology.brokers) {
      const ingress = await startIngress({ broker: broker.name, exchange, queues, log })
      ingresses.push(ingress)
      brokers[broker.name] = ingress.url
    }
  } catch (err) {
    await Promise.all(ingresses.map((i) => i.close()))
    await queues.close()
    throw err
  }

  // A ref becomes a URL the way Knative resolves it, then `uri` resolves against it.
  const target = (dest: Destination): Target => {
    if (!dest.ref) return { url: dest.uri, display: dest.uri ?? '' }
    const { kind, name } = dest.ref
    const base = kind === 'Broker' ? brokers[name] : resolve(name)
    const inCluster = kind === 'Broker' ? `http://${name}-broker-ingress.${ns}.svc.cluster.local/` : `http://${name}.${ns}.svc.cluster.local/`
    const join = (url: string) => (dest.uri ? new URL(dest.uri, url).href : url)
    return { url: base === undefined ? undefined : join(base), display: join(base ?? inCluster) }
  }

  for (const plan of topology.triggers) {
    queues.consume(plan.queue, plan.trigger.parallelism, triggerDispatcher({ plan, queues, target: () => target(plan.trigger.subscriber), log }))
  }
  for (const plan of topology.deadLetters) {
    // One at a time: a sink that is down holds the rest back instead of spinning through them.
    queues.consume(plan.queue, 1, deadLetterDispatcher({ plan, target: () => target(plan.sink), log }))
  }
  const stopPings = startPingSources({
    namespace: ns,
    pingSources: manifests.pingSources,
    ...(pingSchedules ? { overrides: pingSchedules } : {}),
    target: (ping) => target(ping.sink),
    log,
  })
  log.info('local broker ready', { mode: queues.mode, brokers })

  let stopping: Promise<void> | undefined
  let draining: Promise<void> | undefined
  return {
    mode: queues.mode,
    namespace: ns,
    brokers,
    sinkFor(service) {
      const binding = manifests.sinkBindings.find((b) => b.subject.kind === 'Service' && b.subject.name === service)
      return binding ? target(binding.sink).url : undefined
    },
    drain(timeoutMs = 10_000) {
      draining ??= (async () => {
        stopPings()
        await queues.drain(timeoutMs)
        log.info('local broker drained: delivering no more', {})
      })()
      return draining
    },
    stop() {
      stopping ??= (async () => {
        stopPings()
        await Promise.all(ingresses.map((i) => i.close()))
        await queues.close()
        log.info('local broker stopped', {})
      })()
      return stopping
    },
  }
}

function redact(url: string) {
  const u = new URL(url)
  if (u.password) u.password = '***'
  return u.href
}
