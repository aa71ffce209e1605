import { createServer, request, type Server } from 'node:http'
import { serve } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { functions } from '../../functions/catalog.ts'
import { createApp } from '../../shared/http.ts'
import { createLogger } from '../../shared/log.ts'
import { createMetrics } from '../../shared/metrics.ts'
import { loadIngressRoutes, matchRoute, startIngress, type Route } from './ingress.ts'

const dir = new URL('../infra', import.meta.url).pathname

describe('loadIngressRoutes', () => {
  it('routes each public function’s /api/<group> to its service, and nothing else', async () => {
    const routes = await loadIngressRoutes(dir)
    const expected = functions.filter((f) => f.group).map((f) => ({ prefix: `/api/${f.group}`, service: f.name }))
    expect(routes.map(({ prefix, service }) => ({ prefix, service })).sort((a, b) => a.prefix.localeCompare(b.prefix))).toEqual(
      expected.sort((a, b) => a.prefix.localeCompare(b.prefix)),
    )
  })

  it('matches whole path segments only', async () => {
    const routes = await loadIngressRoutes(dir)
    expect(matchRoute(routes, '/api/cart')?.service).toBe('cart')
    expect(matchRoute(routes, '/api/cart/items/1')?.service).toBe('cart')
    expect(matchRoute(routes, '/api/carts')).toBeUndefined()
    expect(matchRoute(routes, '/events/order.created')).toBeUndefined()
    expect(matchRoute(routes, '/internal/outbox/flush')).toBeUndefined()
  })
})

describe('startIngress', () => {
  let upstream: Server
  let ingress: Awaited<ReturnType<typeof startIngress>>
  const seen: { url?: string; host?: string; forwarded?: string; body: string }[] = []

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        seen.push({ url: req.url, host: req.headers.host, forwarded: req.headers['x-forwarded-host'] as string, body })
        res.writeHead(201, { 'Content-Type': 'application/json', 'X-Upstream': 'yes' })
        res.end(JSON.stringify({ ok: true }))
      })
    })
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
    const port = (upstream.address() as { port: number }).port
    const routes: Route[] = [{ prefix: '/api/things', service: 'things', ingress: 'things' }, { prefix: '/api/down', service: 'down', ingress: 'down' }]
    ingress = await startIngress({ routes, port: 0, resolve: (s) => (s === 'things' ? `http://127.0.0.1:${port}` : undefined) })
  })
  afterAll(async () => {
    await ingress.stop()
    upstream.close()
  })

  it('matches and forwards the normalised path, so no dot segment leaves the routed prefix', async () => {
    // fetch would normalise these itself; node:http sends the request target as written.
    const raw = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${ingress.url}/`, { method: 'POST', path }, (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        })
        req.on('error', reject)
        req.end()
      })
    const before = seen.length
    for (const path of ['/api/things/%2E%2E/%2E%2E/internal/outbox/flush', '/api/things/.%2e/.%2e/metrics', '/api/things/../../events/payment.status', '/api/things/..\\..\\healthz', '//api/things/x', '//127.0.0.1/internal/x']) {
      expect(await raw(path), path).toBe(404)
    }
    expect(seen.length, 'nothing reached the function').toBe(before)
    expect(await raw('/api/things/a/%2e%2e/b?q=1')).toBe(201)
    expect(seen.at(-1)?.url).toBe('/api/things/b?q=1')
  })

  it('proxies method, path, query, body, status and headers, keeping the prefix', async () => {
    const res = await fetch(`${ingress.url}/api/things/42?x=1`, { method: 'POST', body: 'hello', headers: { 'Content-Type': 'text/plain' } })
    expect(res.status).toBe(201)
    expect(res.headers.get('X-Upstream')).toBe('yes')
    expect(seen.at(-1)).toMatchObject({ url: '/api/things/42?x=1', body: 'hello' })
    expect(seen.at(-1)?.forwarded).toBe(new URL(ingress.url).host)
  })

  it('answers a 404 problem for a path no Ingress routes, and 503 for a service that is down', async () => {
    const res = await fetch(`${ingress.url}/events/order.created`, { method: 'POST' })
    expect(res.status).toBe(404)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect((await fetch(`${ingress.url}/api/down`)).status).toBe(503)
  })
})

describe('startIngress in front of a function’s own HTTP stack', () => {
  let fn: Server
  let ingress: Awaited<ReturnType<typeof startIngress>>

  beforeAll(async () => {
    // The functions' own stack: its body limit answers 413 from Content-Length, before reading.
    const app = createApp({ log: createLogger({ name: 'test', level: 'silent' }), metrics: createMetrics({ defaults: false }) })
    app.post('/api/things', async (c) => c.json(await c.req.json(), 201))
    fn = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server))
    })
    // As shared/server.ts sets it.
    fn.keepAliveTimeout = 65_000
    const port = (fn.address() as { port: number }).port
    ingress = await startIngress({ routes: [{ prefix: '/api/things', service: 'things', ingress: 'things' }], port: 0, resolve: () => `http://127.0.0.1:${port}` })
  })
  afterAll(async () => {
    await ingress.stop()
    fn.closeAllConnections()
    await new Promise((r) => fn.close(r))
  })

  it('answers 413 as problem+json to a 2 MB body, then the next request normally, 10 rounds out of 10', async () => {
    const big = JSON.stringify({ data: 'x'.repeat(2 * 1024 * 1024) })
    const post = (body: string) =>
      fetch(`${ingress.url}/api/things`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }).then(
        async (res) => ({ status: res.status, type: res.headers.get('Content-Type'), body: await res.text() }),
        (err: Error) => ({ status: 0, type: null, body: String((err.cause as Error | undefined)?.message ?? err.message) }),
      )
    const rounds: string[] = []
    for (let i = 0; i < 10; i++) {
      const refused = await post(big)
      const next = await post(JSON.stringify({ round: i }))
      rounds.push(`${refused.status} ${refused.type} / ${next.status} ${next.body}`)
    }
    expect(rounds).toEqual(Array.from({ length: 10 }, (_, i) => `413 application/problem+json / 201 {"round":${i}}`))
  }, 60_000)

  it('passes no connection headers on: the client learns the ingress’s keep-alive, not the function’s', async () => {
    const res = await fetch(`${ingress.url}/api/things`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })
    expect(res.status).toBe(201)
    expect(res.headers.get('Keep-Alive')).toBe('timeout=75') // the function here says timeout=5
  })
})
