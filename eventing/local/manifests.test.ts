import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { loadManifests, parseDuration } from './manifests.ts'
import { planTopology } from './topology.ts'

const eventingDir = fileURLToPath(new URL('../', import.meta.url))

describe('parseDuration', () => {
  it.each([
    ['PT0.05S', 50],
    ['PT0.5S', 500],
    ['PT10S', 10_000],
    ['PT1M30S', 90_000],
    ['PT2H', 7_200_000],
    ['P1DT1S', 86_401_000],
    ['P1W', 604_800_000],
  ])('%s is %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })

  it.each(['', 'P', 'PT', '10s', 'PT-1S', 'P1M', 'P1Y', 'PT1S2'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined()
  })
})

describe('the eventing/ manifests', () => {
  it('hold two RabbitMQ Brokers, nine Triggers with a full delivery each, two SinkBindings and two PingSources', async () => {
    const m = await loadManifests(eventingDir)
    expect(m.warnings).toEqual([])
    expect(m.namespace).toBe('shop')
    expect(m.brokers.map((b) => [b.name, b.queueType])).toEqual([
      ['orders', 'quorum'],
      ['payments', 'quorum'],
    ])
    const triggers = Object.fromEntries(m.triggers.map((t) => [t.name, t]))
    expect(Object.keys(triggers).sort()).toEqual([
      'cart-on-order-cancelled',
      'cart-on-order-created',
      'cart-on-payment-status',
      'order-on-payment-status',
      'payment-on-order-cancelled',
      'payment-on-order-created',
      'product-on-order-cancelled',
      'product-on-order-created',
      'product-on-payment-status',
    ])
    expect(triggers['payment-on-order-created']).toMatchObject({
      broker: 'orders',
      filter: { type: 'order.created' },
      subscriber: { ref: { kind: 'Service', name: 'payment' }, uri: '/events/order.created' },
      parallelism: 20,
    })
    expect(triggers['cart-on-order-created']).toMatchObject({ broker: 'orders', filter: { type: 'order.created' }, subscriber: { ref: { name: 'cart' }, uri: '/events/order.created' } })
    expect(triggers['order-on-payment-status']).toMatchObject({ broker: 'payments', filter: { type: 'payment.status' }, subscriber: { ref: { name: 'order' }, uri: '/events/payment.status' } })
    // Every Trigger sends its one type to that type's route of its subscriber.
    for (const t of m.triggers) expect(t.subscriber.uri, t.name).toBe(`/events/${t.filter.type}`)
    expect(m.triggers.map((t) => `${t.broker}:${t.filter.type}->${t.subscriber.ref?.name}`).sort()).toEqual([
      'orders:order.cancelled->cart',
      'orders:order.cancelled->payment',
      'orders:order.cancelled->product',
      'orders:order.created->cart',
      'orders:order.created->payment',
      'orders:order.created->product',
      'payments:payment.status->cart',
      'payments:payment.status->order',
      'payments:payment.status->product',
    ])
    for (const t of m.triggers) {
      expect(t.delivery, t.name).toMatchObject({ retry: expect.any(Number), backoffPolicy: 'exponential', deadLetterSink: { ref: { kind: 'Service', name: 'dead-letter' } } })
      expect(t.delivery?.backoffDelay, t.name).toBeGreaterThan(0)
      expect(t.delivery?.timeout, t.name).toBeGreaterThan(0)
    }
    // Payment holds each delivery about 2 s; its timeout must leave room for that.
    expect(triggers['payment-on-order-created']?.delivery?.timeout).toBeGreaterThan(2_000)
    expect(m.sinkBindings.map((s) => [s.subject.name, s.sink.ref?.kind, s.sink.ref?.name])).toEqual([
      ['order', 'Broker', 'orders'],
      ['payment', 'Broker', 'payments'],
    ])
    expect(m.pingSources).toMatchObject([
      { name: 'order-outbox-flush', schedule: '*/5 * * * *', sink: { ref: { kind: 'Service', name: 'order' }, uri: '/internal/outbox/flush' } },
      { name: 'product-reservations-expire', schedule: '*/5 * * * *', sink: { ref: { kind: 'Service', name: 'product' }, uri: '/internal/reservations/expire' } },
    ])
  })

  it('become the exchanges and queues eventing-rabbitmq would declare', async () => {
    const t = planTopology(await loadManifests(eventingDir, { namespace: 'ns' }))
    expect(t.exchanges).toContain('b.ns.orders')
    expect(t.exchanges).toContain('t.ns.payment-on-order-created.dlx')
    expect(t.queues.find((q) => q.name === 'ns.payment-on-order-created')).toEqual({
      name: 'ns.payment-on-order-created',
      type: 'quorum',
      exchange: 'b.ns.orders',
      args: { type: 'order.created', 'x-knative-trigger': 'payment-on-order-created', 'x-match': 'all' },
    })
    expect(t.triggers.find((p) => p.trigger.name === 'order-on-payment-status')?.deadLetter).toEqual({
      exchange: 't.ns.order-on-payment-status.dlx',
      queue: 't.ns.order-on-payment-status.dlq',
    })
  })
})

describe('loadManifests refuses or warns about', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })
  const load = async (yaml: string) => {
    const dir = await mkdtemp(join(tmpdir(), 'eventing-manifests-'))
    dirs.push(dir)
    await writeFile(join(dir, 'm.yaml'), `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: { name: orders, annotations: { eventing.knative.dev/broker.class: RabbitMQBroker } }
spec: { config: { kind: RabbitmqBrokerConfig, name: c } }
---
apiVersion: eventing.knative.dev/v1alpha1
kind: RabbitmqBrokerConfig
metadata: { name: c }
spec: {}
---
${yaml}`)
    return loadManifests(dir)
  }
  const triggerWith = (spec: string, annotations = '{}') => `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: t, annotations: ${annotations} }
spec: { broker: orders, subscriber: { ref: { kind: Service, name: s } }, ${spec} }`

  it('nothing in a minimal Trigger: quorum queues, parallelism 1, an empty filter', async () => {
    const m = await load(triggerWith('filter: {}'))
    expect(m.brokers[0]?.queueType).toBe('quorum')
    expect(m.triggers[0]).toMatchObject({ parallelism: 1, filter: {} })
    expect(m.triggers[0]?.delivery).toBeUndefined()
  })

  it.each([
    ['an unknown broker', triggerWith('filter: {}').replace('broker: orders', 'broker: nope'), /spec.broker nope is not a Broker/],
    ['an attribute name Knative refuses', triggerWith('filter: { attributes: { order_id: x } }'), /spec.filter.attributes.*lowercase letters and digits/],
    ['a bad duration', triggerWith('delivery: { backoffDelay: 1s }'), /spec.delivery.backoffDelay: must be an ISO-8601 duration/],
    ['an unknown backoff policy', triggerWith('delivery: { backoffPolicy: quadratic }'), /spec.delivery.backoffPolicy/],
    ['a parallelism out of range', triggerWith('filter: {}', "{ rabbitmq.eventing.knative.dev/parallelism: '0' }"), /parallelism/],
    ['a subscriber with neither ref nor uri', triggerWith('filter: {}').replace('subscriber: { ref: { kind: Service, name: s } }', 'subscriber: {}'), /needs a ref or a uri/],
    ['a relative uri with no ref', triggerWith('filter: {}').replace('subscriber: { ref: { kind: Service, name: s } }', 'subscriber: { uri: /events }'), /absolute URL/],
    ['a PingSource cron with seconds', 'apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: { name: p }\nspec: { schedule: "* * * * * *", sink: { uri: "http://x/" } }', /5-field cron/],
    ['a PingSource cron out of range', 'apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: { name: p }\nspec: { schedule: "61 * * * *", sink: { uri: "http://x/" } }', /5-field cron/],
    ['a YAML syntax error', 'kind: [', /m.yaml/],
  ])('%s', async (_, yaml, message) => {
    await expect(load(yaml)).rejects.toThrow(message)
  })

  it('a Broker whose config names a namespace where no file defines that RabbitmqBrokerConfig', async () => {
    const broker = (namespace: string) => `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: { name: payments, annotations: { eventing.knative.dev/broker.class: RabbitMQBroker } }
spec: { config: { kind: RabbitmqBrokerConfig, name: c, namespace: ${namespace} } }`
    await expect(load(broker('elsewhere'))).rejects.toThrow(/Broker payments: spec.config names RabbitmqBrokerConfig elsewhere\/c, which no file defines/)
    // The files' own namespace (no Kustomization here: `default`) is found.
    expect((await load(broker('default'))).brokers.map((b) => b.name)).toEqual(['orders', 'payments'])
  })

  it('spec.filters, which the RabbitMQ broker ignores (a warning; the Trigger then takes every event)', async () => {
    const m = await load(triggerWith('filters: [{ exact: { type: a } }]'))
    expect(m.warnings).toEqual([expect.stringMatching(/spec.filters is ignored/)])
    expect(m.triggers[0]?.filter).toEqual({})
  })
})
