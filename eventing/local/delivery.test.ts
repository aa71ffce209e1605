/**
 * Delivery outcomes over real HTTP on 127.0.0.1, as eventing-rabbitmq decides them: what is
 * retried, what is dead-lettered (and how it is marked), what is acked and gone. Once with the
 * queues in memory, and once in RabbitMQ when AMQP_URL is set: the dispatch logic is one.
 */
import { describe, expect, it } from 'vitest'
import { objects } from './temp-manifests.ts'
import { brokerFixtures, brokerModes, gate, send, waitFor } from './testing.ts'

const { broker, trigger, deadLetterSink } = objects
const quick = { retry: 2, backoffPolicy: 'linear', backoffDelay: 'PT0.01S', timeout: 'PT2S' }

for (const { mode, amqpUrl } of brokerModes) {
  describe.runIf(mode === 'memory' || Boolean(amqpUrl))(`delivery (${mode})`, () => {
    const { subscriber, start, cleanups } = brokerFixtures(mode, amqpUrl)

    it.each([503, 500, 404, 408, 409, 429])('retries a %i, then delivers', async (status) => {
      const s = await subscriber((r) => (r.n < 3 ? status : 204))
      const b = await start([broker('orders'), trigger('t', { broker: 'orders', service: 's', delivery: quick })], { s: s.url })
      expect(await send(b.brokers.orders ?? '', { type: 'a', id: 'x' })).toBe(202)
      await waitFor(() => expect(b.logs.count('event delivered')).toBe(1))
      expect(s.received.map((r) => r.headers['ce-id'])).toEqual(['x', 'x', 'x'])
      expect(b.logs.count('event retried')).toBe(2)
      expect(b.logs.count('event dead-lettered')).toBe(0)
    })

    it('retries a timeout, then delivers', async () => {
      const slow = gate()
      cleanups.push(async () => slow.open())
      const s = await subscriber((r) => (r.n === 1 ? { status: 204, hold: slow.promise } : 204))
      const b = await start([broker('orders'), trigger('t', { broker: 'orders', service: 's', delivery: { ...quick, timeout: 'PT0.2S' } })], { s: s.url })
      expect(await send(b.brokers.orders ?? '', { type: 'a' })).toBe(202)
      await waitFor(() => expect(b.logs.count('event delivered')).toBe(1))
      expect(s.received).toHaveLength(2)
      expect(b.logs.lines.find((l) => l.msg === 'event retried')?.error).toMatch(/no answer within 200 ms/)
    })

    it('dead-letters after the last retry, with knativeerrordest and knativeerrorcode', async () => {
      const s = await subscriber(() => 503)
      const dls = await subscriber()
      const b = await start(
        [broker('orders'), trigger('t', { broker: 'orders', service: 's', uri: '/events/a', delivery: { ...quick, deadLetterSink: deadLetterSink('dead-letter') } })],
        { s: s.url, 'dead-letter': dls.url },
      )
      expect(await send(b.brokers.orders ?? '', { type: 'a', id: 'doomed' })).toBe(202)
      await waitFor(() => expect(dls.received).toHaveLength(1))
      expect(s.received).toHaveLength(3) // the first try and 2 retries
      expect(dls.received[0]?.headers).toMatchObject({
        'ce-id': 'doomed',
        'ce-type': 'a',
        'ce-knativeerrordest': `${s.url}/events/a`,
        'ce-knativeerrorcode': '503',
      })
      await waitFor(() => expect(b.logs.count('dead letter delivered')).toBe(1))
      // Logged once the dead letter is stored, which may be after the sink already has it.
      await waitFor(() => expect(b.logs.count('event dead-lettered')).toBe(1))
    })

    it("falls back to the Broker's delivery and dead-letter sink; an unreachable subscriber has no knativeerrorcode", async () => {
      const dls = await subscriber()
      const b = await start(
        [broker('orders', { ...quick, retry: 1, deadLetterSink: deadLetterSink('dead-letter') }), trigger('t', { broker: 'orders', service: 'not-up', uri: '/events/a' })],
        { 'dead-letter': dls.url },
      )
      expect(await send(b.brokers.orders ?? '', { type: 'a', id: 'lost' })).toBe(202)
      await waitFor(() => expect(dls.received).toHaveLength(1))
      expect(b.logs.count('event retried')).toBe(1)
      const headers = dls.received[0]?.headers ?? {}
      expect(headers['ce-knativeerrordest']).toBe(`http://not-up.${b.namespace}.svc.cluster.local/events/a`)
      expect(headers).not.toHaveProperty('ce-knativeerrorcode')
    })

    it('keeps retrying the dead-letter sink until it takes the event', async () => {
      const s = await subscriber(() => 500)
      const dls = await subscriber((r) => (r.n < 3 ? 503 : 202))
      const b = await start(
        [broker('orders'), trigger('t', { broker: 'orders', service: 's', delivery: { ...quick, retry: 0, deadLetterSink: deadLetterSink('dls') } })],
        { s: s.url, dls: dls.url },
      )
      expect(await send(b.brokers.orders ?? '', { type: 'a' })).toBe(202)
      await waitFor(() => expect(b.logs.count('dead letter delivered')).toBe(1))
      expect(dls.received).toHaveLength(3)
    })

    it.each([400, 422, 302])('acks a %i as done: no retry, no dead letter', async (status) => {
      const s = await subscriber(() => ({ status, headers: { location: '/elsewhere' } }))
      const dls = await subscriber()
      const b = await start(
        [broker('orders'), trigger('t', { broker: 'orders', service: 's', delivery: { ...quick, deadLetterSink: deadLetterSink('dls') } })],
        { s: s.url, dls: dls.url },
      )
      expect(await send(b.brokers.orders ?? '', { type: 'a' })).toBe(202)
      await waitFor(() => expect(b.logs.count('event dropped')).toBe(1))
      // The event is acked: another event behind it is delivered next, and nothing came back.
      expect(await send(b.brokers.orders ?? '', { type: 'a' })).toBe(202)
      await waitFor(() => expect(b.logs.count('event dropped')).toBe(2))
      expect(s.received).toHaveLength(2)
      expect(dls.received).toHaveLength(0)
      expect(b.logs.count('event retried') + b.logs.count('event dead-lettered')).toBe(0)
    })

    it('drops an event after its first failure when there is no delivery spec at all', async () => {
      const s = await subscriber(() => 503)
      const b = await start([broker('orders'), trigger('t', { broker: 'orders', service: 's' })], { s: s.url })
      expect(await send(b.brokers.orders ?? '', { type: 'a' })).toBe(202)
      await waitFor(() => expect(b.logs.count('event dropped')).toBe(1))
      expect(s.received).toHaveLength(1)
      expect(b.logs.lines.find((l) => l.msg === 'event dropped')).toMatchObject({ status: 503, reason: expect.stringMatching(/no delivery spec/) })
    })
  })
}
