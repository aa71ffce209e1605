import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { CloudEvent, HTTP } from 'cloudevents'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { startSubscriber, type Answer, type ReceivedRequest, type Subscriber } from '../../eventing/local/recording-subscriber.ts'
import { objects } from '../../eventing/local/temp-manifests.ts'
import { brokerFixtures, brokerModes, gate, send as sendToBroker, waitFor } from '../../eventing/local/testing.ts'
import { createPool, type Pool } from '../../shared/db.ts'
import { createMetrics } from '../../shared/metrics.ts'
import { migrate } from '../../shared/migrate.ts'
import { call, metricValue, quietLog, testPool } from '../../test/support.ts'
import { createTestDatabase, type TestDatabase } from '../../test/test-database.ts'
import { deadLetterApp } from './app.ts'

const pool = testPool()

// As app.test.ts: this file migrates its own schema, idempotently, under the migration lock.
beforeAll(async () => {
  await migrate(pool, { schema: 'deadletter', dir: new URL('./migrations/', import.meta.url), log: quietLog })
})

const stops: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
})

/** A recording Broker ingress at the network edge: it answers `answer` (default 202, as a Broker's ingress does). */
async function recordingBroker(answer: (r: ReceivedRequest) => Answer | Promise<Answer> = () => 202): Promise<Subscriber> {
  const broker = await startSubscriber(answer)
  stops.push(broker.close)
  return broker
}

/** A dead-letter app whose redrive sends `type`s to the given Brokers; each test's events have a type of their own. */
function makeApp(brokerUrls: Record<string, string> = {}) {
  return deadLetterApp({ pool, log: quietLog, metrics: createMetrics({ defaults: false }), brokerUrls, redriveTimeoutMs: 2_000 })
}
type App = ReturnType<typeof makeApp>

const FAILED = { knativeerrordest: 'http://payment.shop.svc.cluster.local/events/order.created', knativeerrorcode: '503', knativeerrordata: 'ZG93bg==' }

/** A dead letter as a Broker sends it: the event, its extensions, and the knativeerror* of its failure. */
const deadLetter = (type: string, attributes: Record<string, unknown> = {}) =>
  new CloudEvent({
    id: randomUUID(),
    source: '/shop/order',
    type,
    time: '2025-01-02T03:04:05.678Z',
    subject: 'order-1',
    datacontenttype: 'application/json',
    data: { order_id: randomUUID(), total_cents: 1250 },
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    ...FAILED,
    ...attributes,
  })

async function store(app: App, event: CloudEvent<unknown>, mode: 'binary' | 'structured' = 'binary') {
  const { headers, body } = mode === 'binary' ? HTTP.binary(event) : HTTP.structured(event)
  const res = await app.request('/', { method: 'POST', headers: headers as Record<string, string>, body: body as RequestInit['body'] })
  expect(res.status).toBe(204)
}

const redrive = (app: App, body?: unknown) => call(app, 'POST', '/internal/dead-letters/redrive', body === undefined ? {} : { body })

const rowOf = async (event: { source: string; id: string }) =>
  (await pool.query('SELECT redriven_at, redrives, redrive_error, error_code FROM deadletter.events WHERE source = $1 AND id = $2', [event.source, event.id])).rows[0]

/** What a Broker's ingress got, read back with the CloudEvents SDK, as the Broker reads it. */
const received = (broker: Subscriber) =>
  broker.received.map((r) => ({ headers: r.headers, event: HTTP.toEvent({ headers: r.headers, body: r.body.toString('utf8') }) as CloudEvent<unknown> }))

const uniqueType = () => `test.redrive.${randomUUID()}`

describe('POST /internal/dead-letters/redrive', () => {
  it('sends each waiting dead letter to the Broker of its type, as the event it was, with its id, and marks it; a second redrive sends nothing', async () => {
    const broker = await recordingBroker()
    const type = uniqueType()
    const app = makeApp({ [type]: `${broker.url}/` })
    const json = deadLetter(type)
    // Structured mode carries any text in an attribute; binary mode sends it percent-encoded.
    const text = deadLetter(type, { datacontenttype: 'text/plain', data: 'payment said no', subject: 'order 1 ✓' })
    const bytes = deadLetter(type, { datacontenttype: 'application/octet-stream', data: Buffer.from([0xff, 0x00, 0x80]) })
    await store(app, json)
    await store(app, text, 'structured')
    await store(app, bytes)

    const res = await redrive(app, { type })
    expect(res.status).toBe(200)
    expect(res.json).toEqual({
      redriven: 3,
      failed: 0,
      events: [json, text, bytes].map((e) => ({ source: e.source, id: e.id, type, outcome: 'redriven', broker: `${broker.url}/` })),
    })
    const got = received(broker)
    expect(got.map((g) => g.event.id)).toEqual([json.id, text.id, bytes.id])
    for (const { headers, event } of got) {
      // Binary mode, its attributes and extensions as they were, none of its failure's.
      expect(headers['ce-id']).toBe(event.id)
      expect(event).toMatchObject({ source: '/shop/order', type, specversion: '1.0', time: '2025-01-02T03:04:05.678Z', traceparent: json.traceparent })
      expect(Object.keys(headers).filter((h) => h.startsWith('ce-knativeerror'))).toEqual([])
    }
    expect(got[0]!.headers['content-type']).toBe('application/json')
    expect(got[0]!.event.data).toEqual(json.data)
    expect(got[1]!.headers['ce-subject']).toBe('order 1 %E2%9C%93')
    expect(got[1]!.event.data).toBe('payment said no')
    expect(broker.received[2]!.body).toEqual(Buffer.from([0xff, 0x00, 0x80]))
    for (const e of [json, text, bytes]) expect(await rowOf(e)).toMatchObject({ redriven_at: expect.any(Date), redrives: 1, redrive_error: null })
    expect(await metricValue(app, `events_redriven_total{type="${type}",outcome="sent"}`)).toBe(3)

    expect((await redrive(app, { type })).json).toEqual({ redriven: 0, failed: 0, events: [] })
    expect(broker.received).toHaveLength(3)
  })

  it('takes only the ids asked for, and at most `limit`, oldest first', async () => {
    const broker = await recordingBroker()
    const type = uniqueType()
    const app = makeApp({ [type]: broker.url })
    const events = [deadLetter(type), deadLetter(type), deadLetter(type), deadLetter(type)]
    for (const e of events) await store(app, e)
    expect((await redrive(app, { ids: [events[2]!.id, events[3]!.id], limit: 1 })).json).toMatchObject({ redriven: 1, failed: 0 })
    expect((await redrive(app, { ids: [events[2]!.id, events[3]!.id] })).json).toMatchObject({ redriven: 1, failed: 0 })
    expect(broker.received.map((r) => r.headers['ce-id'])).toEqual([events[2]!.id, events[3]!.id])
    expect((await redrive(app, { type, limit: 1 })).json).toMatchObject({ redriven: 1, events: [{ id: events[0]!.id }] })
  })

  it('sends each dead letter once when redrives run at the same time', async () => {
    const hold = gate()
    stops.push(async () => hold.open())
    const broker = await recordingBroker((r) => (r.n === 1 ? { status: 202, hold: hold.promise } : 202))
    const type = uniqueType()
    const app = makeApp({ [type]: broker.url })
    const events = Array.from({ length: 12 }, () => deadLetter(type))
    for (const e of events) await store(app, e)

    // The first redrive holds its rows while the Broker holds its first event; the others skip them.
    const first = redrive(app, { type })
    await waitFor(() => expect(broker.received).toHaveLength(1))
    const others = await Promise.all([redrive(app, { type }), redrive(app, { type })])
    expect(others.map((r) => r.json)).toEqual([
      { redriven: 0, failed: 0, events: [] },
      { redriven: 0, failed: 0, events: [] },
    ])
    hold.open()
    expect((await first).json).toMatchObject({ redriven: 12, failed: 0 })

    // And a crowd of small redrives at once: between them, each event once.
    const more = Array.from({ length: 20 }, () => deadLetter(type))
    for (const e of more) await store(app, e)
    const answers = await Promise.all(Array.from({ length: 5 }, () => redrive(app, { type, limit: 3 })))
    const again = await redrive(app, { type })
    const total = [...answers, again].reduce((n, r) => n + (r.json.redriven as number), 0)
    expect(total).toBe(20)
    const ids = broker.received.map((r) => r.headers['ce-id'])
    expect(ids).toHaveLength(32)
    expect(new Set(ids).size).toBe(32)
    expect(new Set(ids)).toEqual(new Set([...events, ...more].map((e) => e.id)))
  })

  it('keeps a dead letter waiting, with why, when its Broker refuses it, is down, or is not configured; the next redrive sends it', async () => {
    let status = 503
    const broker = await recordingBroker(() => status)
    const type = uniqueType()
    const unknown = uniqueType()
    const app = makeApp({ [type]: broker.url })
    const a = deadLetter(type)
    const b = deadLetter(type)
    const lost = deadLetter(unknown)
    for (const e of [a, b, lost]) await store(app, e)

    const res = await redrive(app, { ids: [a.id, b.id, lost.id] })
    expect(res.json).toMatchObject({ redriven: 0, failed: 3 })
    expect(res.json.events).toEqual([
      { source: a.source, id: a.id, type, outcome: 'failed', broker: broker.url, error: 'the broker answered 503' },
      // A Broker that failed is not asked again in the same redrive.
      { source: b.source, id: b.id, type, outcome: 'failed', broker: broker.url, error: 'not tried: the broker answered 503 for an earlier event' },
      { source: lost.source, id: lost.id, type: unknown, outcome: 'failed', error: `no broker for type ${unknown}: BROKER_URLS does not name it` },
    ])
    expect(broker.received).toHaveLength(1)
    expect(await rowOf(a)).toMatchObject({ redriven_at: null, redrives: 0, redrive_error: 'the broker answered 503' })

    // A Broker that refuses the event itself (a 400) is asked about the next one all the same.
    status = 400
    expect((await redrive(app, { type })).json.events.map((e: { error: string }) => e.error)).toEqual(['the broker answered 400', 'the broker answered 400'])

    status = 202
    expect((await redrive(app, { type })).json).toMatchObject({ redriven: 2, failed: 0 })
    expect(await rowOf(a)).toMatchObject({ redriven_at: expect.any(Date), redrives: 1, redrive_error: null })
    expect(await metricValue(app, `events_redriven_total{type="${type}",outcome="failed"}`)).toBe(4)
  })

  it('says so when the Broker does not answer, and goes on with the others', async () => {
    const closed = await startSubscriber()
    await closed.close()
    const up = await recordingBroker()
    const [down, fine] = [uniqueType(), uniqueType()]
    const app = makeApp({ [down]: closed.url, [fine]: up.url })
    const a = deadLetter(down)
    const b = deadLetter(fine)
    for (const e of [a, b]) await store(app, e)
    const res = await redrive(app, { ids: [a.id, b.id] })
    expect(res.json).toMatchObject({ redriven: 1, failed: 1 })
    expect(res.json.events[0]).toMatchObject({ id: a.id, outcome: 'failed', error: expect.stringMatching(/ECONNREFUSED/) })
    expect(up.received.map((r) => r.headers['ce-id'])).toEqual([b.id])
  })

  it('makes a dead letter that comes back after a redrive wait for the next one, with its new failure', async () => {
    const broker = await recordingBroker()
    const type = uniqueType()
    const app = makeApp({ [type]: broker.url })
    const event = deadLetter(type)
    await store(app, event)
    expect((await redrive(app, { type })).json).toMatchObject({ redriven: 1 })
    // It failed again: the Broker dead-letters it once more, with another code.
    await store(app, event.cloneWith({ knativeerrorcode: '500' }))
    expect(await rowOf(event)).toMatchObject({ redriven_at: null, redrives: 1, error_code: 500 })
    expect((await redrive(app, { type })).json).toMatchObject({ redriven: 1 })
    expect(await rowOf(event)).toMatchObject({ redriven_at: expect.any(Date), redrives: 2 })
    expect(broker.received.map((r) => r.headers['ce-id'])).toEqual([event.id, event.id])
  })

  it('shows the redrive in GET /events', async () => {
    const broker = await recordingBroker()
    const type = uniqueType()
    const app = makeApp({ [type]: broker.url })
    await store(app, deadLetter(type))
    expect((await call(app, 'GET', `/events?type=${type}`)).json.items[0]).toMatchObject({ redriven_at: null, redrives: 0, redrive_error: null })
    await redrive(app, { type })
    expect((await call(app, 'GET', `/events?type=${type}`)).json.items[0]).toMatchObject({ redriven_at: expect.any(String), redrives: 1 })
  })

  describe('on a database of its own', () => {
    // Without filters a redrive takes every waiting dead letter: other test files' must not be there.
    let own: TestDatabase
    let ownPool: Pool
    beforeAll(async () => {
      own = await createTestDatabase(inject('databaseUrl'))
      ownPool = createPool({ connectionString: own.url, applicationName: 'test', log: quietLog })
    })
    afterAll(async () => {
      await ownPool?.end()
      await own?.drop()
    })

    it('takes an empty body as no filters: every waiting dead letter, oldest first, up to 100', async () => {
      const broker = await recordingBroker()
      const [type, other] = [uniqueType(), uniqueType()]
      const app = deadLetterApp({ pool: ownPool, log: quietLog, metrics: createMetrics({ defaults: false }), brokerUrls: { [type]: broker.url, [other]: broker.url } })
      const events = Array.from({ length: 102 }, (_, i) => deadLetter(i % 2 ? type : other))
      for (const e of events) await store(app, e)
      const res = await call(app, 'POST', '/internal/dead-letters/redrive')
      expect(res.status).toBe(200)
      expect(res.json).toMatchObject({ redriven: 100, failed: 0 })
      expect(broker.received.map((r) => r.headers['ce-id'])).toEqual(events.slice(0, 100).map((e) => e.id))
      expect((await call(app, 'POST', '/internal/dead-letters/redrive')).json).toMatchObject({ redriven: 2 })
    })
  })

  it.each([
    ['a limit of 0', { limit: 0 }],
    ['a limit over 1000', { limit: 1001 }],
    ['a limit that is a string', { limit: '5' }],
    ['an empty id list', { ids: [] }],
    ['an id that is not a string', { ids: [1] }],
    ['an empty type', { type: ' ' }],
    ['an unknown field', { broker: 'orders' }],
    ['an id with a NUL', { ids: ['a\u0000b'] }],
    ['a type with a NUL', { type: '\u0000' }],
  ])('answers 400 problem+json to %s', async (_, body) => {
    const res = await redrive(makeApp(), body)
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.json.errors.length).toBeGreaterThan(0)
  })

  it('answers 400 to a body that is not JSON, and 415 to one that is not said to be', async () => {
    const app = makeApp()
    const bad = await call(app, 'POST', '/internal/dead-letters/redrive', { body: '{"limit":', headers: { 'Content-Type': 'application/json' } })
    expect(bad.status).toBe(400)
    const text = await call(app, 'POST', '/internal/dead-letters/redrive', { body: 'limit=1', headers: { 'Content-Type': 'text/plain' } })
    expect(text.status).toBe(415)
    expect(text.headers.get('Content-Type')).toBe('application/problem+json')
  })
})

// The whole way, as on a cluster: a Trigger fails, its Broker dead-letters the event to this
// function over HTTP, the subscriber is fixed, and a redrive gets the event to it through the Broker.
const { broker: brokerObject, trigger, deadLetterSink } = objects
for (const { mode, amqpUrl } of brokerModes) {
  describe.runIf(mode === 'memory' || Boolean(amqpUrl))(`a redrive through the local broker (${mode})`, () => {
    const { subscriber, start } = brokerFixtures(mode, amqpUrl)

    it('gets a dead-lettered event to the subscriber that failed it, with its original id, once it works again', async () => {
      let fixed = false
      const payment = await subscriber(() => (fixed ? 204 : 503))
      const type = uniqueType()
      // The app learns the Broker's URL once the Broker is up: it reads the map at each redrive.
      const brokerUrls: Record<string, string> = {}
      const app = makeApp(brokerUrls)
      const server = await new Promise<Server>((resolve) => {
        const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server))
      })
      stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
      const deadLetterUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const quick = { retry: 1, backoffPolicy: 'linear', backoffDelay: 'PT0.01S', timeout: 'PT2S', deadLetterSink: deadLetterSink('dead-letter') }
      const b = await start(
        [brokerObject('orders'), trigger('payment-on-it', { broker: 'orders', filter: { type }, service: 'payment', uri: '/events/it', delivery: quick })],
        { payment: payment.url, 'dead-letter': deadLetterUrl },
      )
      brokerUrls[type] = b.brokers.orders!
      const id = randomUUID()
      expect(await sendToBroker(b.brokers.orders!, { type, id, source: '/shop/order' }, { order_id: id })).toBe(202)
      await waitFor(async () => expect(await rowOf({ source: '/shop/order', id })).toMatchObject({ error_code: 503 }))
      expect(payment.received).toHaveLength(2)

      fixed = true
      expect((await redrive(app, { ids: [id] })).json).toMatchObject({ redriven: 1, failed: 0 })
      await waitFor(() => expect(payment.received).toHaveLength(3))
      const delivered = payment.received[2]!
      expect(delivered.headers).toMatchObject({ 'ce-id': id, 'ce-type': type, 'ce-source': '/shop/order' })
      expect(Object.keys(delivered.headers).filter((h) => h.startsWith('ce-knativeerror'))).toEqual([])
      expect(JSON.parse(delivered.body.toString('utf8'))).toEqual({ order_id: id })
      await waitFor(() => expect(b.logs.count('event delivered')).toBe(1))
      expect(await rowOf({ source: '/shop/order', id })).toMatchObject({ redriven_at: expect.any(Date), redrives: 1 })
    })
  })
}
