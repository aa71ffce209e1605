/**
 * @module
 * What the Brokers and Triggers become, named as eventing-rabbitmq names them (pkg/rabbitmqnaming,
 * less the object UIDs a cluster appends): per Broker a headers exchange `b.<ns>.<broker>`; per
 * Trigger a queue `<ns>.<trigger>` bound to it with the filter attributes, `x-knative-trigger` and
 * `x-match: all`; for a dead-letter sink, an exchange and a queue holding what waits for it
 * (`b.<ns>.<broker>.dlx|dlq` for a Broker's, `t.<ns>.<trigger>.dlx|dlq` for a Trigger's own). The
 * memory and RabbitMQ queues both follow this plan, so they route the same way.
 */
import type { BrokerManifest, DeliverySpec, Destination, Manifests, TriggerManifest } from './manifests.ts'

export type QueueType = 'quorum' | 'classic'
export type QueuePlan = {
  name: string
  type: QueueType
  /** The exchange it is bound to, and the binding's arguments (headers exchange). */
  exchange: string
  args: Record<string, string>
}
export type TriggerPlan = {
  trigger: TriggerManifest
  queue: string
  /** Its Broker's exchange, where replies go. */
  exchange: string
  /** The Trigger's `delivery`, else its Broker's (as eventing-rabbitmq picks it). */
  delivery?: DeliverySpec
  /** Where it dead-letters to: the Trigger's sink, else its Broker's. */
  deadLetter?: { exchange: string; queue: string }
}
export type DeadLetterPlan = {
  /** `Broker orders` or `Trigger cart-on-order-created`, for logs. */
  owner: string
  queue: string
  sink: Destination
  delivery: DeliverySpec
}
export type Topology = {
  namespace: string
  exchanges: string[]
  queues: QueuePlan[]
  brokers: { broker: BrokerManifest; exchange: string }[]
  triggers: TriggerPlan[]
  deadLetters: DeadLetterPlan[]
}

export function planTopology({ namespace: ns, brokers, triggers }: Manifests): Topology {
  const exchanges: string[] = []
  const queues: QueuePlan[] = []
  const deadLetters: DeadLetterPlan[] = []
  const byName = new Map(brokers.map((b) => [b.name, b]))

  const deadLetterQueue = (prefix: string, owner: string, type: QueueType, tag: string, delivery: DeliverySpec & { deadLetterSink: Destination }) => {
    const exchange = `${prefix}.dlx`
    const queue = `${prefix}.dlq`
    exchanges.push(exchange)
    queues.push({ name: queue, type, exchange, args: { 'x-knative-dlq': tag, 'x-match': 'all' } })
    deadLetters.push({ owner, queue, sink: delivery.deadLetterSink, delivery })
    return { exchange, queue }
  }

  const brokerPlans = brokers.map((broker) => {
    const exchange = `b.${ns}.${broker.name}`
    exchanges.push(exchange)
    const dls = broker.delivery?.deadLetterSink
    const deadLetter = dls
      ? deadLetterQueue(`b.${ns}.${broker.name}`, `Broker ${broker.name}`, broker.queueType, broker.name, { ...broker.delivery, deadLetterSink: dls })
      : undefined
    return { broker, exchange, deadLetter }
  })
  const planOf = new Map(brokerPlans.map((p) => [p.broker.name, p]))

  const triggerPlans = triggers.map((trigger): TriggerPlan => {
    const brokerPlan = planOf.get(trigger.broker)
    const broker = byName.get(trigger.broker)
    if (!brokerPlan || !broker) throw new Error(`Trigger ${trigger.name}: no Broker ${trigger.broker}`)
    const queue = `${ns}.${trigger.name}`
    queues.push({ name: queue, type: broker.queueType, exchange: brokerPlan.exchange, args: bindingArgs(trigger) })
    const dls = trigger.delivery?.deadLetterSink
    const deadLetter = dls
      ? deadLetterQueue(`t.${ns}.${trigger.name}`, `Trigger ${trigger.name}`, broker.queueType, trigger.name, { ...trigger.delivery, deadLetterSink: dls })
      : brokerPlan.deadLetter
    const delivery = trigger.delivery ?? broker.delivery
    return { trigger, queue, exchange: brokerPlan.exchange, ...(delivery ? { delivery } : {}), ...(deadLetter ? { deadLetter } : {}) }
  })

  return { namespace: ns, exchanges, queues, brokers: brokerPlans, triggers: triggerPlans, deadLetters }
}

/**
 * The binding of a Trigger's queue. The event carries `datacontenttype` in the `content-type`
 * header, so a filter on it is bound under that name (eventing-rabbitmq binds it as written,
 * which can never match).
 */
function bindingArgs(trigger: TriggerManifest): Record<string, string> {
  const args: Record<string, string> = {}
  for (const [name, value] of Object.entries(trigger.filter)) args[name === 'datacontenttype' ? 'content-type' : name] = value
  return { ...args, 'x-knative-trigger': trigger.name, 'x-match': 'all' }
}

/** A headers exchange with `x-match: all`: every argument not starting with `x-` equals the header. */
export function bindingMatches(args: Record<string, string>, headers: Record<string, string>) {
  return Object.entries(args).every(([name, value]) => name.startsWith('x-') || headers[name] === value)
}
