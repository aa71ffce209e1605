import { randomUUID } from 'node:crypto'
import { createServer } from 'node:net'
import { CloudEvent, HTTP } from 'cloudevents'
import { beforeAll, describe, expect, it } from 'vitest'
import { createPool, type Pool } from '../../shared/db.ts'
import { createLogger, type LogFields } from '../../shared/log.ts'
import { createMetrics } from '../../shared/metrics.ts'
import { migrate } from '../../shared/migrate.ts'
import { call, metricValue, postEvent, quietLog, testPool } from '../../test/support.ts'
import { deadLetterApp } from './app.ts'

const pool = testPool()

// The test setup migrates the functions in functions/catalog.ts; this one migrates its own schema
// (idempotent and locked, so it stays right once the catalog lists it).
beforeAll(async () => {
  await migrate(pool, { schema: 'deadletter', dir: new URL('./migrations/', import.meta.url), log: quietLog })
})

/** An app with its own metrics and a log that keeps its lines. */
function makeApp(db: Pool = pool) {
  const lines: LogFields[] = []
  const log = createLogger({ name: 'dead-letter', level: 'warn', write: (line) => lines.push(JSON.parse(line)) })
  return { app: deadLetterApp({ pool: db, log, metrics: createMetrics({ defaults: false }) }), lines }
}
type App = ReturnType<typeof makeApp>['app']

const FAILED = { knativeerrordest: 'http://payment/events/order.created', knativeerrorcode: '503' }

/** A dead letter as the broker sends it: the event plus the knativeerror* extensions. */
const deadLetter = (attributes: Record<string, unknown> = {}) =>
  new CloudEvent({
    id: randomUUID(),
    source: `/test/${randomUUID()}`,
    type: 'order.created',
    time: '2025-01-02T03:04:05.678Z',
    datacontenttype: 'application/json',
    data: { order_id: randomUUID(), total_cents: 1250 },
    ...FAILED,
    ...attributes,
  })

async function send(app: App, event: CloudEvent<unknown>, mode: 'binary' | 'structured' = 'binary') {
  const { headers, body } = mode === 'binary' ? HTTP.binary(event) : HTTP.structured(event)
  const res = await app.request('/', { method: 'POST', headers: headers as Record<string, string>, body: body as RequestInit['body'] })
  return { status: res.status, text: await res.text() }
}

const stored = async (event: { source: string; id: string }) =>
  (await pool.query('SELECT * FROM deadletter.events WHERE source = $1 AND id = $2', [event.source, event.id])).rows

describe('POST / (a dead letter)', () => {
  it.each([['binary'], ['structured']] as const)('keeps a %s-mode event with its extensions and answers 204', async (mode) => {
    const { app, lines } = makeApp()
    const event = deadLetter({ subject: 'order-1', knativeerrordata: 'eyJlcnJvciI6ImRvd24ifQ==', traceparent: '00-abc-def-01' })
    const res = await send(app, event, mode)
    expect(res).toEqual({ status: 204, text: '' })
    const [row, ...more] = await stored(event)
    expect(more).toEqual([])
    expect(row).toMatchObject({
      id: event.id,
      source: event.source,
      type: 'order.created',
      specversion: '1.0',
      subject: 'order-1',
      datacontenttype: 'application/json',
      data: event.data,
      data_text: null,
      data_base64: null,
      extensions: { ...FAILED, knativeerrordata: 'eyJlcnJvciI6ImRvd24ifQ==', traceparent: '00-abc-def-01' },
      error_dest: FAILED.knativeerrordest,
      error_code: 503,
      error_data: 'eyJlcnJvciI6ImRvd24ifQ==',
      deliveries: 1,
    })
    expect(row.time.toISOString()).toBe(event.time)
    expect(lines).toContainEqual(expect.objectContaining({
      level: 'warn', msg: 'event dead-lettered', type: 'order.created', id: event.id, source: event.source, ...FAILED,
    }))
    expect(await metricValue(app, 'events_dead_lettered_total{type="order.created"}')).toBe(1)
  })

  it('keeps a redelivery once: one row, deliveries 2, counted once', async () => {
    const { app } = makeApp()
    const event = deadLetter()
    expect((await send(app, event)).status).toBe(204)
    expect((await send(app, event, 'structured')).status).toBe(204)
    expect((await stored(event)).map((r) => r.deliveries)).toEqual([2])
    // Redeliveries that arrive at once (parallel dispatchers) are still one row, counted once.
    const statuses = await Promise.all([1, 2, 3].map(() => send(app, event).then((r) => r.status)))
    expect(statuses).toEqual([204, 204, 204])
    expect((await stored(event)).map((r) => r.deliveries)).toEqual([5])
    expect(await metricValue(app, 'events_dead_lettered_total{type="order.created"}')).toBe(1)
  })

  it('keeps the same id from another source as another event', async () => {
    const { app } = makeApp()
    const event = deadLetter()
    const other = deadLetter({ id: event.id })
    expect((await send(app, event)).status).toBe(204)
    expect((await send(app, other)).status).toBe(204)
    expect((await stored(event)).map((r) => r.deliveries)).toEqual([1])
    expect((await stored(other)).map((r) => r.deliveries)).toEqual([1])
  })

  it('counts by type', async () => {
    const { app } = makeApp()
    for (const type of ['order.created', 'payment.status', 'payment.status']) {
      expect((await send(app, deadLetter({ type }))).status).toBe(204)
    }
    // Without knativeerror* extensions too (a dead letter from elsewhere is still kept).
    const plain = await postEvent(app, '/', { type: 'dev.knative.sources.ping', source: `/test/${randomUUID()}`, data: { job: 'flush' } })
    expect(plain.status).toBe(204)
    expect(await metricValue(app, 'events_dead_lettered_total{type="order.created"}')).toBe(1)
    expect(await metricValue(app, 'events_dead_lettered_total{type="payment.status"}')).toBe(2)
    expect(await metricValue(app, 'events_dead_lettered_total{type="dev.knative.sources.ping"}')).toBe(1)
  })

  it.each([['binary'], ['structured']] as const)('keeps %s-mode data that is not JSON as text, and bytes as base64', async (mode) => {
    const { app } = makeApp()
    const text = deadLetter({ datacontenttype: 'text/plain', data: 'payment service said: no' })
    const notJson = deadLetter({ datacontenttype: 'application/json', data: 'not json' })
    const bytes = deadLetter({ datacontenttype: 'application/octet-stream', data: Buffer.from([0xff, 0x00, 0x80]) })
    const none = deadLetter({ datacontenttype: undefined, data: undefined })
    for (const event of [text, notJson, bytes, none]) expect((await send(app, event, mode)).status).toBe(204)
    const columns = async (event: CloudEvent<unknown>) => {
      const [row] = await stored(event)
      return { data: row.data, data_text: row.data_text, data_base64: row.data_base64 }
    }
    expect(await columns(text)).toEqual({ data: null, data_text: 'payment service said: no', data_base64: null })
    expect(await columns(notJson)).toEqual({ data: null, data_text: 'not json', data_base64: null })
    expect(await columns(bytes)).toEqual({ data: null, data_text: null, data_base64: '/wCA' })
    expect(await columns(none)).toEqual({ data: null, data_text: null, data_base64: null })
  })

  it('keeps JSON data that is not an object, and JSON under a +json content type', async () => {
    const { app } = makeApp()
    const list = deadLetter({ data: [1, 'two'] })
    const vendor = deadLetter({ datacontenttype: 'application/vnd.shop+json; charset=utf-8', data: '{"a":1}' })
    for (const event of [list, vendor]) expect((await send(app, event)).status).toBe(204)
    expect((await stored(list))[0].data).toEqual([1, 'two'])
    expect((await stored(vendor))[0].data).toEqual({ a: 1 })
  })

  it('takes a broker error code that is not a status as no code, keeping it in extensions', async () => {
    const { app } = makeApp()
    const event = deadLetter({ knativeerrorcode: 'timeout' })
    expect((await send(app, event)).status).toBe(204)
    expect((await stored(event))[0]).toMatchObject({ error_code: null, extensions: { knativeerrorcode: 'timeout' } })
  })

  const bad: [string, () => RequestInit][] = [
    ['a JSON body without CloudEvent headers', () => ({ headers: { 'Content-Type': 'application/json' }, body: '{"hello":1}' })],
    ['a batch', () => ({
      headers: { 'Content-Type': 'application/cloudevents-batch+json' },
      body: JSON.stringify([deadLetter(), deadLetter()]),
    })],
    ['a binary event without a source', () => ({ headers: { 'ce-id': randomUUID(), 'ce-specversion': '1.0', 'ce-type': 'order.created' }, body: '' })],
    ['a structured event without a type', () => ({
      headers: { 'Content-Type': 'application/cloudevents+json' },
      body: JSON.stringify({ specversion: '1.0', id: randomUUID(), source: '/test' }),
    })],
    ['a structured event that is not JSON', () => ({ headers: { 'Content-Type': 'application/cloudevents+json' }, body: '{"id":' })],
    // The SDK would make up an id for it, and every redelivery would be kept again under a new one.
    ['a structured event without an id', () => ({
      headers: { 'Content-Type': 'application/cloudevents+json' },
      body: JSON.stringify({ specversion: '1.0', source: '/test', type: 'order.created', data: {} }),
    })],
    ['a binary event of specversion 9.9', () => ({
      headers: { 'ce-id': randomUUID(), 'ce-specversion': '9.9', 'ce-source': '/test', 'ce-type': 'order.created', 'Content-Type': 'application/json' },
      body: '{}',
    })],
    ['a structured event with an extension that is an object (not a CloudEvents type)', () => ({
      headers: { 'Content-Type': 'application/cloudevents+json' },
      body: JSON.stringify({ specversion: '1.0', id: randomUUID(), source: '/test', type: 'order.created', trace: { a: [1] } }),
    })],
    ['a structured event whose id has a NUL', () => ({
      headers: { 'Content-Type': 'application/cloudevents+json' },
      body: JSON.stringify({ specversion: '1.0', id: 'a\u0000b', source: '/test', type: 'order.created' }),
    })],
  ]
  it.each(bad)('answers 400 problem+json to %s, keeps nothing, and logs a warning', async (_, init) => {
    const { app, lines } = makeApp()
    const res = await app.request('/', { method: 'POST', ...init() })
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(lines).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'dead letter rejected' }))
    expect(await (await app.request('/metrics')).text()).not.toContain('events_dead_lettered_total{')
  })

  it('keeps no time for an event that had none (the SDK would make one up)', async () => {
    const { app } = makeApp()
    const id = randomUUID()
    const source = `/test/${randomUUID()}`
    const headers = { 'ce-id': id, 'ce-specversion': '1.0', 'ce-source': source, 'ce-type': 'order.created', 'Content-Type': 'application/json' }
    expect((await app.request('/', { method: 'POST', headers, body: '{}' })).status).toBe(204)
    expect((await stored({ source, id }))[0].time).toBeNull()
  })

  it('answers 400, never 500 or 503, to data nested deeper than can be stored, counting it', async () => {
    const { app } = makeApp()
    const deep = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)
    const id = randomUUID()
    const body = `{"specversion":"1.0","id":"${id}","source":"/test","type":"order.created","data":${deep}}`
    const res = await app.request('/', { method: 'POST', headers: { 'Content-Type': 'application/cloudevents+json' }, body })
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(await stored({ source: '/test', id })).toEqual([])
    expect(await metricValue(app, 'events_dead_lettered_total{type="order.created"}')).toBe(1)
  })

  it('answers 400 to data PostgreSQL can never store, counting and logging the event', async () => {
    const { app, lines } = makeApp()
    const event = deadLetter({ data: { note: 'a \u0000 inside' } })
    expect((await send(app, event)).status).toBe(400)
    expect(await stored(event)).toEqual([])
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'dead letter rejected', id: event.id, source: event.source }))
    expect(await metricValue(app, 'events_dead_lettered_total{type="order.created"}')).toBe(1)
  })

  it('answers 503 while the database is unreachable, and keeps the event when it is retried', async () => {
    // A port this test owns that accepts connections and never answers: a hung database.
    const hung = createServer(() => {})
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r))
    const address = hung.address()
    const port = typeof address === 'object' && address ? address.port : 0
    const dead = createPool({ connectionString: `postgres://postgres@127.0.0.1:${port}/x`, applicationName: 'test', log: quietLog, connectionTimeoutMs: 300 })
    const event = deadLetter()
    try {
      const down = makeApp(dead)
      const res = await send(down.app, event)
      expect(res.status).toBe(503)
      expect(JSON.parse(res.text)).toMatchObject({ status: 503 })
      expect(down.lines).toContainEqual(expect.objectContaining({ level: 'error', id: event.id, source: event.source }))
      expect(await metricValue(down.app, 'events_dead_lettered_total{type="order.created"}')).toBe(0)
    } finally {
      await dead.end()
      hung.close()
    }
    const { app } = makeApp()
    expect((await send(app, event)).status).toBe(204)
    expect((await stored(event)).map((r) => r.deliveries)).toEqual([1])
  })
})

describe('GET /events', () => {
  it('lists newest first, by type, with limit, offset and total', async () => {
    const { app } = makeApp()
    const type = `test.${randomUUID()}`
    const events = [deadLetter({ type }), deadLetter({ type }), deadLetter({ type })]
    for (const event of events) expect((await send(app, event)).status).toBe(204)
    expect((await send(app, deadLetter())).status).toBe(204)
    const ids = (items: { id: string }[]) => items.map((e) => e.id)

    const all = await call(app, 'GET', `/events?type=${type}`)
    expect(all.status).toBe(200)
    expect(all.json).toMatchObject({ total: 3, limit: 20, offset: 0 })
    expect(ids(all.json.items)).toEqual(events.map((e) => e.id).reverse())
    expect(all.json.items[0]).toMatchObject({ source: events[2]!.source, type, error_code: 503, deliveries: 1, extensions: FAILED })

    const page = await call(app, 'GET', `/events?type=${type}&limit=1&offset=1`)
    expect(page.json).toMatchObject({ total: 3, limit: 1, offset: 1 })
    expect(ids(page.json.items)).toEqual([events[1]!.id])

    const everything = await call(app, 'GET', '/events?limit=100')
    expect(everything.json.total).toBeGreaterThanOrEqual(4)
  })

  it.each([['limit=0'], ['limit=101'], ['limit=abc'], ['offset=-1'], ['type='], ['sort=time'], ['type=%00'], ['type=a%00b']])('answers 400 problem+json for ?%s', async (query) => {
    const { app } = makeApp()
    const res = await call(app, 'GET', `/events?${query}`)
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.json.errors.length).toBeGreaterThan(0)
  })
})
