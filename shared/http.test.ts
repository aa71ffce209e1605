import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import * as v from 'valibot'
import { appDeps, call, quietLog, testPool } from '../test/support.ts'
import { createPool } from './db.ts'
import { conflict } from './errors.ts'
import { createApp } from './http.ts'
import { validate } from './validate.ts'

const pool = testPool()

const makeApp = () => {
  const app = createApp({ ...appDeps(), pool })
  app.get('/things/:id', (c) => c.json({ id: c.req.param('id') }))
  app.post('/things', validate('json', v.strictObject({ name: v.string() })), (c) => c.json(c.req.valid('json'), 201))
  app.get('/conflict', () => {
    throw conflict('it is taken')
  })
  app.get('/boom', () => {
    throw new Error('secret internals: password=hunter2')
  })
  return { app }
}

describe('createApp', () => {
  it('answers a 404 problem for an unknown route', async () => {
    const res = await call(makeApp().app, 'GET', '/nope')
    expect(res.status).toBe(404)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.json).toMatchObject({ type: 'about:blank', title: 'Not Found', status: 404, instance: '/nope' })
  })

  it('answers 405 with Allow for a known path and another method', async () => {
    const res = await call(makeApp().app, 'DELETE', '/things/1')
    expect(res.status).toBe(405)
    expect(res.headers.get('Allow')).toContain('GET')
    expect(res.json.status).toBe(405)
  })

  it('renders thrown problems once, with their status and detail', async () => {
    const res = await call(makeApp().app, 'GET', '/conflict')
    expect(res.status).toBe(409)
    expect(res.json).toMatchObject({ title: 'Conflict', detail: 'it is taken' })
  })

  it('answers 500 without internals for an unexpected error', async () => {
    const res = await call(makeApp().app, 'GET', '/boom')
    expect(res.status).toBe(500)
    expect(res.text).not.toContain('hunter2')
    expect(res.json.request_id).toBeTruthy()
  })

  it('answers 413 for a body over 64 KiB, with and without Content-Length', async () => {
    const { app } = makeApp()
    const big = JSON.stringify({ name: 'x'.repeat(70 * 1024) })
    const refused = await call(app, 'POST', '/things', { body: big })
    expect(refused.status).toBe(413)
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 70; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(1024)))
        controller.close()
      },
    })
    const res = await app.request('/things', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit)
    expect(res.status).toBe(413)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
  })

  it('answers 400 for malformed JSON, 415 for another type, 400 with errors for unknown fields', async () => {
    const { app } = makeApp()
    expect((await call(app, 'POST', '/things', { body: '{"name":' })).status).toBe(400)
    expect((await call(app, 'POST', '/things', { body: 'name=x', headers: { 'Content-Type': 'text/plain' } })).status).toBe(415)
    expect((await app.request('/things', { method: 'POST', body: '{"name":"x"}' })).status).toBe(415)
    const res = await call(app, 'POST', '/things', { body: { name: 'x', admin: true } })
    expect(res.json.errors).toEqual([{ path: 'admin', message: 'is not a known field' }])
  })

  it('keeps a sane X-Request-Id and makes one otherwise', async () => {
    const { app } = makeApp()
    expect((await call(app, 'GET', '/things/1', { headers: { 'X-Request-Id': 'abc-123' } })).headers.get('X-Request-Id')).toBe('abc-123')
    expect((await call(app, 'GET', '/things/1')).headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('counts and times requests by route template, not raw path, in the format Prometheus scrapes', async () => {
    const { app } = makeApp()
    await call(app, 'GET', '/things/1')
    await call(app, 'GET', '/things/2')
    await call(app, 'GET', '/nope/123')
    const res = await app.request('/metrics')
    expect(res.status).toBe(200)
    expect(res.headers.get('Content-Type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    expect(text).toContain('http_requests_total{method="GET",route="/things/:id",status="200"} 2')
    expect(text).toContain('http_requests_total{method="GET",route="unmatched",status="404"} 1')
    expect(text).toContain('http_request_duration_seconds_count{method="GET",route="/things/:id",status="200"} 2')
    expect(text).not.toContain('/things/1')
  })
})

describe('GET /healthz', () => {
  it('answers 200 when the database answers', async () => {
    expect((await call(makeApp().app, 'GET', '/healthz')).status).toBe(200)
  })

  it('answers 503 problem+json when the database cannot be reached', async () => {
    // A port this test owns that accepts connections and never answers: a hung database.
    const sink = createServer(() => {})
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r))
    const { port } = sink.address() as { port: number }
    const dead = createPool({ connectionString: `postgres://postgres@127.0.0.1:${port}/x`, applicationName: 't', log: quietLog, connectionTimeoutMs: 500 })
    try {
      const app = createApp({ ...appDeps(), pool: dead })
      const res = await call(app, 'GET', '/healthz')
      expect(res.status).toBe(503)
      expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    } finally {
      await dead.end()
      sink.close()
    }
  })
})
