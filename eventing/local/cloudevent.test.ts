import { describe, expect, it } from 'vitest'
import { binaryHeaders, carriesEvent, parseHttpEvent, withAttributes } from './cloudevent.ts'
import { backoffMs, isRetryable } from './dispatch.ts'

const ce = { 'ce-id': '1', 'ce-source': '/s', 'ce-type': 't', 'ce-specversion': '1.0' }
const structured = (event: object) => parseHttpEvent({ 'content-type': 'application/cloudevents+json' }, Buffer.from(JSON.stringify(event)))

describe('parseHttpEvent', () => {
  it('keeps a binary event as sent: attributes, extensions, content type and the body bytes', () => {
    const body = Buffer.from('{ "a" : 1 }')
    expect(parseHttpEvent({ ...ce, 'ce-orderid': 'o1', 'ce-time': '2024-05-01T10:00:00Z', 'content-type': 'application/json' }, body)).toEqual({
      ok: true,
      event: {
        headers: { id: '1', source: '/s', type: 't', specversion: '1.0', orderid: 'o1', time: '2024-05-01T10:00:00Z', 'content-type': 'application/json' },
        body,
      },
    })
  })

  it('adds no time the producer did not send', () => {
    const parsed = parseHttpEvent(ce, Buffer.alloc(0))
    expect(parsed.ok && parsed.event.headers).not.toHaveProperty('time')
  })

  it('turns a structured event into attributes and data', () => {
    const base = { id: '1', source: '/s', type: 't', specversion: '1.0' }
    expect(structured({ ...base, data: { a: 1 }, count: 2 })).toEqual({
      ok: true,
      event: { headers: { ...base, count: '2', 'content-type': 'application/json' }, body: Buffer.from('{"a":1}') },
    })
    const text = structured({ ...base, datacontenttype: 'text/plain', data: 'hello' })
    expect(text.ok && text.event.body.toString()).toBe('hello')
    const b64 = structured({ ...base, datacontenttype: 'application/octet-stream', data_base64: Buffer.from([1, 2, 255]).toString('base64') })
    expect(b64.ok && [...b64.event.body]).toEqual([1, 2, 255])
  })

  it.each([
    ['no CloudEvent', {}, ''],
    ['no source', { 'ce-id': '1', 'ce-type': 't', 'ce-specversion': '1.0' }, ''],
    ['no specversion', { 'ce-id': '1', 'ce-source': '/s', 'ce-type': 't' }, ''],
    ['specversion 0.3', { ...ce, 'ce-specversion': '0.3' }, ''],
    ['an invalid extension name', { ...ce, 'ce-order_id': 'x' }, ''],
    ['JSON data that is not JSON', { ...ce, 'content-type': 'application/json' }, '{"a":'],
    ['a batch', { 'content-type': 'application/cloudevents-batch+json' }, '[]'],
  ])('refuses %s', (_, headers, body) => {
    expect(parseHttpEvent(headers, Buffer.from(body)).ok).toBe(false)
  })

  it('refuses a structured event without an id (the SDK would invent one)', () => {
    expect(structured({ source: '/s', type: 't', specversion: '1.0' })).toMatchObject({ ok: false, reason: expect.stringMatching(/no id/) })
  })
})

describe('binaryHeaders', () => {
  it('writes ce- headers and content-type, percent-encoding what is not visible ASCII', () => {
    const event = withAttributes({ headers: { id: '1', 'content-type': 'text/plain' }, body: Buffer.alloc(0) }, { note: 'café', gone: undefined })
    expect(binaryHeaders(event)).toEqual({ 'ce-id': '1', 'content-type': 'text/plain', 'ce-note': 'caf%C3%A9' })
  })

  it('detects a reply by its ce- headers or structured content type', () => {
    expect(carriesEvent({ 'ce-id': '1' })).toBe(true)
    expect(carriesEvent({ 'content-type': 'application/cloudevents+json' })).toBe(true)
    expect(carriesEvent({ 'content-type': 'application/json' })).toBe(false)
  })
})

describe('retry policy', () => {
  it('retries network-ish and server statuses only', () => {
    expect([500, 503, 404, 408, 409, 429].every(isRetryable)).toBe(true)
    expect([200, 202, 204, 301, 400, 401, 403, 410, 422].some(isRetryable)).toBe(false)
  })

  it('backs off linearly or exponentially from backoffDelay (50 ms by default)', () => {
    expect([1, 2, 3].map((n) => backoffMs({ backoffDelay: 100, backoffPolicy: 'linear' }, n))).toEqual([100, 200, 300])
    expect([1, 2, 3].map((n) => backoffMs({ backoffDelay: 100 }, n))).toEqual([200, 400, 800])
    expect(backoffMs(undefined, 1)).toBe(100)
  })
})
