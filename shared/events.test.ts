import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import * as v from 'valibot'
import { appDeps, metricValue } from '../test/support.ts'
import { onEvent, type ReceivedEvent } from './events.ts'
import { createApp } from './http.ts'
import { Text, Uuid } from './validate.ts'

const Data = v.looseObject({ order_id: Uuid, note: v.optional(Text) })

/** A consumer of thing.happened that records what reached its handler; `fail` makes the handler throw it. */
function consumer(fail?: unknown) {
  const handled: { data: v.InferOutput<typeof Data>; event: ReceivedEvent }[] = []
  const deps = appDeps()
  const app = createApp(deps)
  app.post(
    '/events/thing.happened',
    onEvent({
      type: 'thing.happened',
      schema: Data,
      ...deps,
      handle: async (data, event) => {
        if (fail) throw fail
        handled.push({ data, event })
        return 'handled'
      },
    }),
  )
  const post = async (headers: Record<string, string>, body: string) => {
    const res = await app.request('/events/thing.happened', { method: 'POST', headers, body })
    const text = await res.text()
    return { status: res.status, type: res.headers.get('Content-Type'), json: text ? JSON.parse(text) : undefined }
  }
  return { app, handled, post }
}

const binaryHeaders = (overrides: Record<string, string | undefined> = {}) => {
  const headers: Record<string, string | undefined> = {
    'ce-specversion': '1.0',
    'ce-id': randomUUID(),
    'ce-source': '/test',
    'ce-type': 'thing.happened',
    'Content-Type': 'application/json',
    ...overrides,
  }
  return Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== undefined)) as Record<string, string>
}
const data = () => ({ order_id: randomUUID() })
const structured = (event: Record<string, unknown>) => JSON.stringify({ specversion: '1.0', id: randomUUID(), source: '/test', type: 'thing.happened', data: data(), ...event })
const STRUCTURED = { 'Content-Type': 'application/cloudevents+json' }

describe('onEvent: the CloudEvent is checked before its data, and nothing happens when it is not valid', () => {
  it.each([
    ['without ce-source', binaryHeaders({ 'ce-source': undefined }), { path: 'ce-source', message: 'is required' }],
    ['with ce-specversion 9.9', binaryHeaders({ 'ce-specversion': '9.9' }), { path: 'ce-specversion', message: 'must be "1.0"' }],
    ['with ce-specversion 0.3', binaryHeaders({ 'ce-specversion': '0.3' }), { path: 'ce-specversion', message: 'must be "1.0"' }],
    ['without ce-specversion', binaryHeaders({ 'ce-specversion': undefined }), { path: 'ce-specversion', message: 'is required' }],
    ['without ce-id', binaryHeaders({ 'ce-id': undefined }), { path: 'ce-id', message: 'is required' }],
    ['with an empty ce-id', binaryHeaders({ 'ce-id': '' }), { path: 'ce-id', message: 'must not be empty' }],
    ['without ce-type', binaryHeaders({ 'ce-type': undefined }), { path: 'ce-type', message: 'is required' }],
    ['with a ce-time that is not a timestamp', binaryHeaders({ 'ce-time': 'yesterday' }), { path: 'ce-time', message: 'must be an RFC 3339 timestamp' }],
    ['with text/plain data', binaryHeaders({ 'Content-Type': 'text/plain' }), { path: 'Content-Type', message: 'must be application/json' }],
    ['without a Content-Type', binaryHeaders({ 'Content-Type': undefined }), { path: 'Content-Type', message: 'must be application/json' }],
    ['with no CloudEvent headers at all', { 'Content-Type': 'application/json' }, { path: 'ce-id', message: 'is required' }],
  ])('binary mode, %s: 400 naming it', async (_, headers, error) => {
    const { handled, post, app } = consumer()
    const res = await post(headers, JSON.stringify(data()))
    expect(res.status).toBe(400)
    expect(res.type).toBe('application/problem+json')
    expect(res.json.errors).toContainEqual(error)
    expect(handled).toEqual([])
    expect(await metricValue(app, 'events_received_total{type="thing.happened",outcome="rejected"}')).toBe(1)
  })

  it.each([
    ['of another type', binaryHeaders({ 'ce-type': 'thing.undone' }), JSON.stringify(data()), /takes thing\.happened events/],
    ['whose data is not valid JSON', binaryHeaders(), '{"order_id":', /not valid JSON/],
  ])('binary mode, an event %s: 400', async (_, headers, body, detail) => {
    const { handled, post } = consumer()
    const res = await post(headers, body)
    expect(res.status).toBe(400)
    expect(res.json.detail).toMatch(detail)
    expect(handled).toEqual([])
  })

  it.each([
    ['specversion 0.3', structured({ specversion: '0.3' }), { path: 'specversion', message: 'must be "1.0"' }],
    ['no id (the SDK would make one up)', structured({ id: undefined }), { path: 'id', message: 'is required' }],
    ['no source', structured({ source: undefined }), { path: 'source', message: 'is required' }],
    ['a number for id', structured({ id: 7 }), { path: 'id', message: 'must be a string' }],
    ['a NUL in source', structured({ source: '/te\u0000st' }), { path: 'source', message: 'must not contain the NUL character (U+0000)' }],
    ['text/plain data', structured({ datacontenttype: 'text/plain', data: 'hello' }), { path: 'datacontenttype', message: 'must be application/json' }],
    ['binary data', structured({ data: undefined, data_base64: 'AAEC' }), { path: 'data_base64', message: 'is not accepted: the data must be JSON' }],
  ])('structured mode with %s: 400 naming it', async (_, body, error) => {
    const { handled, post } = consumer()
    const res = await post(STRUCTURED, body)
    expect(res.status).toBe(400)
    expect(res.json.errors).toContainEqual(error)
    expect(handled).toEqual([])
  })

  it.each([
    ['a body that is not JSON', STRUCTURED, '{"id":'],
    ['a JSON array', STRUCTURED, '[]'],
    ['another event format', { 'Content-Type': 'application/cloudevents+xml' }, '<event/>'],
    ['a batch', { 'Content-Type': 'application/cloudevents-batch+json' }, `[${structured({})}]`],
  ])('structured mode, %s: 400', async (_, headers, body) => {
    const { handled, post } = consumer()
    const res = await post(headers, body)
    expect(res.status).toBe(400)
    expect(res.type).toBe('application/problem+json')
    expect(handled).toEqual([])
  })

  it('answers 422 for data its schema refuses, after the event itself passed', async () => {
    const { handled, post } = consumer()
    const res = await post(binaryHeaders(), JSON.stringify({ order_id: 'nope', note: 'a\u0000b' }))
    expect(res.status).toBe(422)
    expect(res.json.errors).toEqual([
      { path: 'order_id', message: 'must be a UUID' },
      { path: 'note', message: 'must not contain the NUL character (U+0000)' },
    ])
    expect(handled).toEqual([])
  })

  it('takes a valid event in either mode, its uuids in lower case and its attributes percent-decoded', async () => {
    const { handled, post } = consumer()
    const id = randomUUID()
    const binary = await post(binaryHeaders({ 'ce-source': '%2Fshop%2Forder', 'Content-Type': 'application/json; charset=utf-8' }), JSON.stringify({ order_id: id.toUpperCase() }))
    expect(binary.status).toBe(204)
    // In the JSON event format, data without a datacontenttype is JSON.
    const json = await post(STRUCTURED, structured({ data: { order_id: id.toUpperCase() }, time: '2024-05-01T12:00:00.123456789Z' }))
    expect(json.status).toBe(204)
    expect(handled.map((h) => h.data.order_id)).toEqual([id, id])
    expect(handled[0]!.event.source).toBe('/shop/order')
  })

  it('answers 422, not 503, when the database can never store the data (a data exception)', async () => {
    const nul = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' })
    const { post } = consumer(nul)
    expect((await post(binaryHeaders(), JSON.stringify(data()))).status).toBe(422)
    const { post: transient } = consumer(new Error('something else'))
    expect((await transient(binaryHeaders(), JSON.stringify(data()))).status).toBe(503)
  })
})
