/**
 * The broker with its queues in RabbitMQ (AMQP_URL): laid out as eventing-rabbitmq lays them out,
 * and losing no accepted event when the broker restarts or its connection drops. The RabbitMQ
 * server itself is never restarted: a TCP proxy the test owns stands in for an outage.
 */
import { rm } from 'node:fs/promises'
import { connect, type Channel, type ChannelModel } from 'amqplib'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { deleteTopology } from './delete-topology.ts'
import { startSubscriber, type Subscriber } from './recording-subscriber.ts'
import { objects, writeManifests } from './temp-manifests.ts'
import { send, startBrokerOn, startTcpProxy, testNamespace, waitFor } from './testing.ts'

const amqpUrl = process.env.AMQP_URL ?? ''
const { broker, trigger, deadLetterSink } = objects
const slowRetries = { retry: 1000, backoffPolicy: 'linear', backoffDelay: 'PT0.02S', timeout: 'PT2S' }

describe.runIf(Boolean(amqpUrl))('local broker in RabbitMQ', () => {
  let connection: ChannelModel
  const cleanups: (() => Promise<void>)[] = []
  beforeAll(async () => {
    connection = await connect(amqpUrl)
  })
  afterAll(async () => {
    await connection.close()
  })
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  // A failed check closes its channel, so each gets its own.
  const withChannel = async <T>(fn: (ch: Channel) => Promise<T>): Promise<T> => {
    const ch = await connection.createChannel()
    ch.on('error', () => {})
    try {
      return await fn(ch)
    } finally {
      await ch.close().catch(() => {})
    }
  }
  const subscriber = async (answer?: Subscriber['answer']) => {
    const s = await startSubscriber(answer)
    cleanups.push(s.close)
    return s
  }
  const manifests = async (docs: object[]) => {
    const namespace = testNamespace()
    const dir = await writeManifests(namespace, docs)
    cleanups.push(async () => {
      await deleteTopology(amqpUrl, dir)
      await rm(dir, { recursive: true, force: true })
    })
    return { namespace, dir }
  }

  it('declares headers exchanges, quorum queues and filter bindings, and stores events as persistent messages', async () => {
    const s = await subscriber(() => 503)
    const { namespace: ns, dir } = await manifests([
      objects.config(),
      broker('orders', { deadLetterSink: deadLetterSink('dead-letter') }),
      trigger('pay', { broker: 'orders', filter: { type: 'order.created' }, service: 's', delivery: { ...slowRetries, deadLetterSink: deadLetterSink('dead-letter') } }),
    ])
    const b = await startBrokerOn(dir, { services: { s: s.url }, amqpUrl })
    expect(b.mode).toBe('rabbitmq')
    expect(await send(b.brokers.orders ?? '', { type: 'order.created', id: 'e1', time: '2024-05-01T10:00:00Z', orderid: 'o1' }, { order_id: 'o1' })).toBe(202)
    await waitFor(() => expect(s.received.length).toBeGreaterThan(0))
    await b.stop() // mid-retry: the message is not acked, so it is back in its queue

    for (const name of [`b.${ns}.orders`, `b.${ns}.orders.dlx`, `t.${ns}.pay.dlx`]) {
      await withChannel((ch) => ch.checkExchange(name))
      // Same name, another type: RabbitMQ refuses, so it is a headers exchange.
      await expect(withChannel((ch) => ch.assertExchange(name, 'fanout', { durable: true }))).rejects.toThrow(/PRECONDITION_FAILED/)
      await withChannel((ch) => ch.assertExchange(name, 'headers', { durable: true, autoDelete: false }))
    }
    for (const name of [`${ns}.pay`, `t.${ns}.pay.dlq`, `b.${ns}.orders.dlq`]) {
      await withChannel((ch) => ch.checkQueue(name))
      await expect(withChannel((ch) => ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'classic' } }))).rejects.toThrow(/PRECONDITION_FAILED/)
      await withChannel((ch) => ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum' } }))
    }

    await withChannel(async (ch) => {
      const msg = await ch.get(`${ns}.pay`, { noAck: true })
      expect(msg).not.toBe(false)
      if (!msg) return
      expect(msg.properties.deliveryMode).toBe(2)
      expect(msg.properties.headers).toMatchObject({
        type: 'order.created',
        source: '/test',
        id: 'e1',
        specversion: '1.0',
        time: '2024-05-01T10:00:00Z',
        'content-type': 'application/json',
        orderid: 'o1',
      })
      expect(JSON.parse(msg.content.toString())).toEqual({ order_id: 'o1' })

      // The binding matches on the filter (x-match all), not on the x- arguments.
      const put = (headers: Record<string, string>) => ch.publish(`b.${ns}.orders`, '', Buffer.from('{}'), { headers })
      put({ type: 'order.cancelled', id: 'no' })
      put({ type: 'order.created', id: 'yes' })
      await waitFor(async () => {
        const got = await ch.get(`${ns}.pay`, { noAck: true })
        expect(got && got.properties.headers?.id).toBe('yes')
      })
      expect(await ch.get(`${ns}.pay`, { noAck: true })).toBe(false)
    })
  })

  it('declares classic queues when the RabbitmqBrokerConfig says so', async () => {
    const { namespace: ns, dir } = await manifests([objects.config('classic'), broker('orders'), trigger('t', { broker: 'orders', service: 's' })])
    const b = await startBrokerOn(dir, { services: {}, amqpUrl })
    await b.stop()
    await withChannel((ch) => ch.assertQueue(`${ns}.t`, { durable: true, arguments: { 'x-queue-type': 'classic' } }))
  })

  it('refuses to start beside another broker that consumes the same namespace, which would take its events', async () => {
    const s = await subscriber()
    const { namespace: ns, dir } = await manifests([objects.config(), broker('orders'), trigger('t', { broker: 'orders', service: 's' })])
    const first = await startBrokerOn(dir, { services: { s: s.url }, amqpUrl })
    cleanups.push(first.stop)
    // Its consumers start once it is up: wait until RabbitMQ counts the first one's.
    await waitFor(async () => expect((await withChannel((ch) => ch.checkQueue(`${ns}.t`))).consumerCount).toBe(1))
    await expect(startBrokerOn(dir, { services: { s: s.url }, amqpUrl })).rejects.toThrow(
      `RabbitMQ queue ${ns}.t already has a consumer: another shop uses the namespace "${ns}" on this RabbitMQ; stop it, or give this one a namespace of its own (BROKER_NAMESPACE)`,
    )
    // The first one is untouched.
    expect(await send(first.brokers.orders ?? '', { type: 'a', id: 'after' })).toBe(202)
    await waitFor(() => expect(s.received.map((r) => r.headers['ce-id'])).toContain('after'))
  })

  it('loses no accepted event across a broker restart', async () => {
    let up = false
    const delivered: (string | undefined)[] = []
    const s = await subscriber((r) => {
      if (!up) return 503
      delivered.push(r.headers['ce-id'])
      return 204
    })
    const dls = await subscriber()
    const { dir } = await manifests([
      objects.config(),
      broker('orders'),
      trigger('t', { broker: 'orders', service: 's', parallelism: 5, delivery: { ...slowRetries, deadLetterSink: deadLetterSink('dls') } }),
    ])
    const services = { s: s.url, dls: dls.url }
    const first = await startBrokerOn(dir, { services, amqpUrl })
    const ids = Array.from({ length: 20 }, (_, i) => `e${i}`)
    for (const id of ids) expect(await send(first.brokers.orders ?? '', { type: 'a', id })).toBe(202)
    await waitFor(() => expect(s.received.length).toBeGreaterThanOrEqual(10)) // five in flight, retrying
    await first.stop()

    up = true
    const second = await startBrokerOn(dir, { services, amqpUrl })
    cleanups.push(second.stop)
    await waitFor(() => expect(second.logs.count('event delivered')).toBe(20))
    expect([...new Set(delivered)].sort()).toEqual([...ids].sort())
    expect(second.logs.lines.filter((l) => l.msg === 'event delivered' && l.redelivered).length).toBeGreaterThanOrEqual(5)
    expect(dls.received).toHaveLength(0)
  })

  it('answers 500 while RabbitMQ is unreachable, then reconnects and delivers what it had accepted', async () => {
    const target = new URL(amqpUrl)
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5672))
    cleanups.push(proxy.close)
    const viaProxy = new URL(amqpUrl)
    viaProxy.hostname = '127.0.0.1'
    viaProxy.port = String(proxy.port)
    let up = false
    const s = await subscriber(() => (up ? 204 : 503))
    const { dir } = await manifests([
      objects.config(),
      broker('orders'),
      trigger('t', { broker: 'orders', service: 's', parallelism: 2, delivery: { ...slowRetries, deadLetterSink: deadLetterSink('s') } }),
    ])
    const b = await startBrokerOn(dir, { services: { s: s.url }, amqpUrl: viaProxy.href })
    cleanups.push(b.stop)
    const ingress = b.brokers.orders ?? ''
    for (const id of ['e1', 'e2', 'e3']) expect(await send(ingress, { type: 'a', id })).toBe(202)
    await waitFor(() => expect(s.received.length).toBeGreaterThanOrEqual(2))

    await proxy.cut()
    await waitFor(async () => expect(await send(ingress, { type: 'a', id: 'refused' })).toBe(500))
    up = true
    await proxy.restore()
    await waitFor(async () => expect(await send(ingress, { type: 'a', id: 'e4' })).toBe(202))

    await waitFor(() => {
      const got = new Set(s.received.filter((r) => r.headers['ce-id'] !== 'refused').map((r) => r.headers['ce-id']))
      expect([...got].sort()).toEqual(['e1', 'e2', 'e3', 'e4'])
      expect(b.logs.count('event delivered')).toBeGreaterThanOrEqual(4)
    })
    expect(s.received.some((r) => r.headers['ce-id'] === 'refused')).toBe(false)
    expect(b.logs.count('lost the connection to RabbitMQ; reconnecting')).toBe(1)
    expect(b.logs.count('reconnected to RabbitMQ')).toBe(1)
  })
})
