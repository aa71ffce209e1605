/**
 * The local broker end to end over real HTTP on 127.0.0.1: ingress, routing by filter, binary
 * delivery, replies, parallelism, PingSources, SinkBindings and the eventing/ manifests. Once with
 * the queues in memory, and once in RabbitMQ when AMQP_URL is set.
 */
import { fileURLToPath } from 'node:url'
import { CloudEvent, HTTP } from 'cloudevents'
import { describe, expect, it } from 'vitest'
import { startLocalBroker } from './broker.ts'
import { deleteTopology } from './delete-topology.ts'
import type { Subscriber } from './recording-subscriber.ts'
import { objects } from './temp-manifests.ts'
import { brokerFixtures, brokerModes, captureLog, gate, send, testNamespace, waitFor } from './testing.ts'

const { broker, trigger } = objects
const quick = { retry: 2, backoffPolicy: 'linear', backoffDelay: 'PT0.01S', timeout: 'PT2S' }

for (const { mode, amqpUrl } of brokerModes) {
  describe.runIf(mode === 'memory' || Boolean(amqpUrl))(`local broker (${mode})`, () => {
    const { subscriber, start, cleanups } = brokerFixtures(mode, amqpUrl)

    it('ingress: 202 for a binary or structured event, 400 for an invalid one, 405 for GET, 404 elsewhere', async () => {
      const b = await start([broker('orders')], {})
      const url = b.brokers.orders ?? ''
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
      expect(await send(url, { type: 'order.created' })).toBe(202)
      const structured = HTTP.structured(new CloudEvent({ type: 'order.created', source: '/test', data: { a: 1 } }))
      const post = (body: string, headers: Record<string, string>, path = '') => fetch(url + path, { method: 'POST', headers, body }).then((r) => r.status)
      expect(await post(structured.body as string, structured.headers as Record<string, string>)).toBe(202)
      expect(await post('{}', { 'content-type': 'application/json' })).toBe(400) // no CloudEvent at all
      expect(await post('{"specversion":"1.0"}', { 'content-type': 'application/cloudevents+json' })).toBe(400)
      expect(await post('', { 'ce-id': '1', 'ce-specversion': '1.0', 'ce-type': 't' })).toBe(400) // no source
      expect((await fetch(url)).status).toBe(405)
      expect(await post('', { 'ce-id': '1' }, 'elsewhere')).toBe(404)
      expect(b.logs.count('event accepted')).toBe(2)
    })

    it('routes an event to every Trigger whose filter attributes all match, extensions included', async () => {
      const s = await subscriber()
      const b = await start(
        [
          broker('orders', quick),
          trigger('on-a', { broker: 'orders', filter: { type: 'a' }, service: 's', uri: '/on-a' }),
          trigger('on-b', { broker: 'orders', filter: { type: 'b' }, service: 's', uri: '/on-b' }),
          trigger('on-a-eu', { broker: 'orders', filter: { type: 'a', region: 'eu' }, service: 's', uri: '/on-a-eu' }),
          trigger('on-all', { broker: 'orders', service: 's', uri: '/on-all' }),
        ],
        { s: s.url },
      )
      const url = b.brokers.orders ?? ''
      expect(await send(url, { type: 'a', id: 'a1' })).toBe(202)
      expect(await send(url, { type: 'a', id: 'a2', region: 'eu' })).toBe(202)
      expect(await send(url, { type: 'a', id: 'a3', region: 'us' })).toBe(202)
      expect(await send(url, { type: 'b', id: 'b1', region: 'eu' })).toBe(202)
      const got = (path: string) => s.received.filter((r) => r.path === path).map((r) => r.headers['ce-id']).sort()
      await waitFor(() => expect(got('/on-all')).toHaveLength(4))
      await waitFor(() => expect(b.logs.count('event delivered')).toBe(4 + 3 + 1 + 1))
      expect(got('/on-a')).toEqual(['a1', 'a2', 'a3'])
      expect(got('/on-a-eu')).toEqual(['a2'])
      expect(got('/on-b')).toEqual(['b1'])
    })

    it('delivers in binary mode with the attributes as sent, to ref + uri', async () => {
      const s = await subscriber()
      const b = await start([broker('orders', quick), trigger('t', { broker: 'orders', service: 'svc', uri: '/events/order.created' })], { svc: s.url })
      const event = new CloudEvent({ type: 'order.created', source: '/shop/order', id: 'e-1', time: '2024-05-01T10:00:00Z', subject: 'o-1', orderid: 'o-1', data: { order_id: 'o-1' } })
      const structured = HTTP.structured(event)
      const res = await fetch(b.brokers.orders ?? '', { method: 'POST', headers: structured.headers as Record<string, string>, body: structured.body as string })
      expect(res.status).toBe(202)
      await waitFor(() => expect(s.received).toHaveLength(1))
      const [got] = s.received
      expect(got?.path).toBe('/events/order.created')
      expect(got?.headers).toMatchObject({
        'ce-id': 'e-1',
        'ce-source': '/shop/order',
        'ce-type': 'order.created',
        'ce-specversion': '1.0',
        'ce-time': (JSON.parse(structured.body as string) as { time: string }).time, // as sent
        'ce-subject': 'o-1',
        'ce-orderid': 'o-1',
        'content-type': 'application/json',
      })
      expect(JSON.parse(got?.body.toString() ?? '')).toEqual({ order_id: 'o-1' })
      const parsed = HTTP.toEvent({ headers: got?.headers ?? {}, body: got?.body.toString() })
      expect(parsed).toMatchObject({ id: 'e-1', data: { order_id: 'o-1' } })
    })

    it('publishes a 200 that carries a CloudEvent (binary or structured) to the same Broker; a 202 is no reply', async () => {
      const reply = (r: { headers: Record<string, string> }, structured: boolean) => {
        const event = new CloudEvent({ type: 'payment.status', source: '/shop/payment', id: `re-${r.headers['ce-id']}`, data: { ok: true } })
        const m = structured ? HTTP.structured(event) : HTTP.binary(event)
        return { status: 200, headers: m.headers as Record<string, string>, body: m.body as string }
      }
      const payment = await subscriber((r) => {
        const id = r.headers['ce-id']
        return id === 'binary' ? reply(r, false) : id === 'structured' ? reply(r, true) : { ...reply(r, false), status: 202 }
      })
      const order = await subscriber()
      const b = await start(
        [
          broker('shop', quick),
          trigger('payment', { broker: 'shop', filter: { type: 'order.created' }, service: 'payment' }),
          trigger('order', { broker: 'shop', filter: { type: 'payment.status' }, service: 'order' }),
        ],
        { payment: payment.url, order: order.url },
      )
      for (const id of ['binary', 'structured', 'accepted']) expect(await send(b.brokers.shop ?? '', { type: 'order.created', id })).toBe(202)
      await waitFor(() => expect(order.received).toHaveLength(2))
      await waitFor(() => expect(b.logs.count('event delivered')).toBe(5))
      expect(order.received.map((r) => r.headers['ce-id']).sort()).toEqual(['re-binary', 're-structured'])
      expect(order.received[0]?.headers).toMatchObject({ 'ce-type': 'payment.status', 'ce-source': '/shop/payment' })
      expect(b.logs.count('event replied')).toBe(2)
    })

    it('parallelism 1 delivers one at a time, in order, a retry blocking those behind it', async () => {
      const release = gate()
      cleanups.push(async () => release.open())
      const s = await subscriber((r) => (r.n === 1 ? { status: 503, hold: release.promise } : 204))
      const b = await start([broker('orders'), trigger('t', { broker: 'orders', service: 's', delivery: quick })], { s: s.url })
      const ids = ['e1', 'e2', 'e3', 'e4', 'e5']
      for (const id of ids) expect(await send(b.brokers.orders ?? '', { type: 'a', id })).toBe(202)
      await waitFor(() => expect(s.received).toHaveLength(1))
      release.open()
      await waitFor(() => expect(b.logs.count('event delivered')).toBe(5))
      expect(s.maxInFlight).toBe(1)
      expect(s.received.map((r) => r.headers['ce-id'])).toEqual(['e1', ...ids]) // e1 retried before e2
    })

    it('parallelism N delivers up to N at once', async () => {
      const release = gate()
      cleanups.push(async () => release.open())
      const s = await subscriber(() => ({ status: 204, hold: release.promise }))
      const b = await start([broker('orders'), trigger('t', { broker: 'orders', service: 's', delivery: quick, parallelism: 4 })], { s: s.url })
      for (let i = 0; i < 10; i++) expect(await send(b.brokers.orders ?? '', { type: 'a' })).toBe(202)
      await waitFor(() => expect(s.inFlight).toBe(4))
      release.open()
      await waitFor(() => expect(b.logs.count('event delivered')).toBe(10))
      expect(s.maxInFlight).toBe(4)
    })

    it('fires a PingSource on its (overridden) schedule, to its sink ref + uri', async () => {
      const s = await subscriber(() => 200)
      const ping = {
        apiVersion: 'sources.knative.dev/v1',
        kind: 'PingSource',
        metadata: { name: 'flush' },
        spec: { schedule: '*/5 * * * *', contentType: 'application/json', data: '{"job":"flush"}', sink: { ref: { kind: 'Service', name: 'order' }, uri: '/internal/outbox/flush' } },
      }
      const b = await start([broker('orders'), ping], { order: s.url }, { flush: '@every 50ms' })
      await waitFor(() => expect(s.received.length).toBeGreaterThanOrEqual(2))
      const [first, second] = s.received
      expect(first?.path).toBe('/internal/outbox/flush')
      expect(first?.headers).toMatchObject({
        'ce-type': 'dev.knative.sources.ping',
        'ce-source': `/apis/v1/namespaces/${b.namespace}/pingsources/flush`,
        'ce-specversion': '1.0',
        'content-type': 'application/json',
      })
      expect(first?.body.toString()).toBe('{"job":"flush"}')
      expect(first?.headers['ce-id']).not.toBe(second?.headers['ce-id'])
    })

    it('gives each SinkBinding subject its Broker as K_SINK', async () => {
      const binding = {
        apiVersion: 'sources.knative.dev/v1',
        kind: 'SinkBinding',
        metadata: { name: 'order-to-orders' },
        spec: { subject: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'order' }, sink: { ref: { kind: 'Broker', name: 'orders' } } },
      }
      const b = await start([broker('orders'), broker('payments'), binding], {})
      expect(b.sinkFor('order')).toBe(b.brokers.orders)
      expect(b.sinkFor('payment')).toBeUndefined()
      expect(b.brokers.orders).not.toBe(b.brokers.payments)
    })

    it('plays the eventing/ manifests: each order event to payment, cart and product, payment.status to order, cart and product, both PingSources', async () => {
      const fns: Record<string, Subscriber> = {}
      for (const name of ['payment', 'cart', 'order', 'product', 'dead-letter']) fns[name] = await subscriber()
      const manifestsDir = fileURLToPath(new URL('../', import.meta.url))
      const namespace = testNamespace()
      const logs = captureLog()
      const b = await startLocalBroker({
        manifestsDir,
        namespace,
        resolve: (name) => fns[name]?.url,
        log: logs.log,
        pingSchedules: { 'order-outbox-flush': '@every 100ms', 'product-reservations-expire': '@every 100ms' },
        ...(amqpUrl ? { amqpUrl } : {}),
      })
      cleanups.push(async () => {
        await b.stop()
        if (amqpUrl) await deleteTopology(amqpUrl, manifestsDir, namespace)
      })
      expect(Object.keys(b.brokers).sort()).toEqual(['orders', 'payments'])
      expect(b.sinkFor('order')).toBe(b.brokers.orders)
      expect(b.sinkFor('payment')).toBe(b.brokers.payments)
      expect(await send(b.brokers.orders ?? '', { type: 'order.created', source: '/shop/order', id: 'o1' })).toBe(202)
      expect(await send(b.brokers.orders ?? '', { type: 'order.cancelled', source: '/shop/order', id: 'c1' })).toBe(202)
      expect(await send(b.brokers.payments ?? '', { type: 'payment.status', source: '/shop/payment', id: 'p1' })).toBe(202)
      const got = (name: string) => (fns[name]?.received ?? []).map((r) => `${r.path} ${r.headers['ce-type']} ${r.headers['ce-type'] === 'dev.knative.sources.ping' ? '' : r.headers['ce-id']}`)
      const events = (name: string) => got(name).filter((line) => line.startsWith('/events/')).sort()
      await waitFor(() => {
        expect(events('payment')).toEqual(['/events/order.cancelled order.cancelled c1', '/events/order.created order.created o1'])
        expect(events('cart')).toEqual(['/events/order.cancelled order.cancelled c1', '/events/order.created order.created o1', '/events/payment.status payment.status p1'])
        expect(events('product')).toEqual(['/events/order.cancelled order.cancelled c1', '/events/order.created order.created o1', '/events/payment.status payment.status p1'])
        expect(events('order')).toEqual(['/events/payment.status payment.status p1'])
        expect(got('order')).toContain('/internal/outbox/flush dev.knative.sources.ping ')
        expect(got('product')).toContain('/internal/reservations/expire dev.knative.sources.ping ')
      })
      expect(fns['dead-letter']?.received).toEqual([])
    })
  })
}
