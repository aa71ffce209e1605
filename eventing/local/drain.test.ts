/**
 * Draining the local broker, as the runner does before it stops the functions: a delivery under
 * way finishes and is acked, nothing new starts, a retry waiting for its backoff is given back,
 * and what was not delivered stays queued (in RabbitMQ, for the next start). In memory, and in
 * RabbitMQ when AMQP_URL is set.
 */
import { describe, expect, it } from 'vitest'
import { objects } from './temp-manifests.ts'
import { brokerFixtures, brokerModes, gate, send, startBrokerOn, waitFor } from './testing.ts'

const { broker, trigger } = objects
const quick = { retry: 2, backoffPolicy: 'linear', backoffDelay: 'PT0.01S', timeout: 'PT5S' }

for (const { mode, amqpUrl } of brokerModes) {
  describe.runIf(mode === 'memory' || Boolean(amqpUrl))(`draining the local broker (${mode})`, () => {
    const { subscriber, start, cleanups } = brokerFixtures(mode, amqpUrl)

    it('finishes the delivery under way, starts none after it, and still takes events', async () => {
      const held = gate()
      const s = await subscriber((r) => (r.n === 1 ? { status: 204, hold: held.promise } : 204))
      const b = await start([broker('orders', quick), trigger('t', { broker: 'orders', service: 's', uri: '/events' })], { s: s.url })
      const url = b.brokers.orders ?? ''
      expect(await send(url, { type: 'a', id: 'first' })).toBe(202)
      await waitFor(() => expect(s.inFlight).toBe(1))

      const drained = b.drain(60_000)
      // Functions finishing their work publish while the broker drains: those events are kept.
      expect(await send(url, { type: 'a', id: 'second' })).toBe(202)
      held.open()
      await drained
      expect(b.logs.count('event delivered')).toBe(1)
      expect(s.received.map((r) => r.headers['ce-id'])).toEqual(['first'])

      if (mode === 'rabbitmq') {
        await b.stop()
        // Acked before the stop, the first is gone; the second waited in its queue.
        const next = await startBrokerOn(b.dir, { services: { s: s.url }, amqpUrl })
        cleanups.push(next.stop)
        await waitFor(() => expect(next.logs.count('event delivered')).toBe(1))
        expect(s.received.map((r) => r.headers['ce-id'])).toEqual(['first', 'second'])
      }
    })

    it('gives back a delivery waiting for its retry instead of waiting out the backoff', async () => {
      let up = false
      const s = await subscriber(() => (up ? 204 : 503))
      // An hour between tries: a drain that waited for it would outlast the test.
      const slow = { retry: 3, backoffPolicy: 'linear', backoffDelay: 'PT1H', timeout: 'PT5S' }
      const b = await start([broker('orders', slow), trigger('t', { broker: 'orders', service: 's', uri: '/events' })], { s: s.url })
      expect(await send(b.brokers.orders ?? '', { type: 'a', id: 'retried' })).toBe(202)
      await waitFor(() => expect(b.logs.count('event retried')).toBe(1))

      await b.drain(600_000)
      expect(s.received).toHaveLength(1)
      expect(b.logs.count('event dead-lettered') + b.logs.count('event dropped')).toBe(0)

      if (mode === 'rabbitmq') {
        await b.stop()
        up = true
        const next = await startBrokerOn(b.dir, { services: { s: s.url }, amqpUrl })
        cleanups.push(next.stop)
        await waitFor(() => expect(next.logs.count('event delivered')).toBe(1))
        expect(s.received.map((r) => r.headers['ce-id'])).toEqual(['retried', 'retried'])
      }
    })
  })
}
