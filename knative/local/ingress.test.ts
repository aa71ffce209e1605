import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, request, type Server } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serve } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { functions } from '../../functions/catalog.ts'
import { createApp } from '../../shared/http.ts'
import { createLogger } from '../../shared/log.ts'
import { createMetrics } from '../../shared/metrics.ts'
import { INGRESS_CHOICES, loadGatewayRoutes, loadRoutes, matchRoute, requestIdOf, startIngress, type Route } from './ingress.ts'

const root = new URL('../..', import.meta.url).pathname
const table = (routes: Route[]) => routes.map(({ prefix, service }) => `${prefix} -> ${service}`).sort()

describe.each(INGRESS_CHOICES)('the routes of the %s choice', (choice) => {
  it('route each public function’s /api/<group> to its service, and nothing else but a storefront at /', async () => {
    const routes = await loadRoutes(root, choice)
    // Besides: the API documents, which auth serves.
    const expected = [...functions.filter((f) => f.group).map((f) => `/api/${f.group} -> ${f.name}`), '/api/openapi.json -> auth', '/api/asyncapi.json -> auth', '/api/docs -> auth']
    // A function without an API group may take `/` (the storefront); no other route is ours.
    const storefront = routes.filter((r) => r.prefix === '')
    expect(storefront.length).toBeLessThanOrEqual(1)
    for (const r of storefront) expect(functions.find((f) => f.name === r.service && !f.group), `/ -> ${r.service}`).toBeTruthy()
    expect(table(routes.filter((r) => r.prefix !== ''))).toEqual(expected.sort())
  })

  it('match whole path segments only, and send no internal or event route to the function it belongs to', async () => {
    const routes = await loadRoutes(root, choice)
    // What no longer prefix takes goes to the `/` route when there is one, else nowhere (404).
    const fallback = routes.find((r) => r.prefix === '')?.service
    expect(matchRoute(routes, '/api/cart')?.service).toBe('cart')
    expect(matchRoute(routes, '/api/cart/items/1')?.service).toBe('cart')
    expect(matchRoute(routes, '/api/carts')?.service).toBe(fallback)
    expect(matchRoute(routes, '/events/order.created')?.service).toBe(fallback)
    expect(matchRoute(routes, '/internal/outbox/flush')?.service).toBe(fallback)
  })
})

describe('the two ingress choices', () => {
  it('route the same paths to the same functions', async () => {
    expect(table(await loadRoutes(root, 'gateway'))).toEqual(table(await loadRoutes(root, 'nginx')))
  })
})

describe('loadGatewayRoutes', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })
  const load = async (yaml: string) => {
    const dir = await mkdtemp(join(tmpdir(), 'gateway-routes-'))
    dirs.push(dir)
    await writeFile(join(dir, 'routes.yaml'), yaml)
    return loadGatewayRoutes(dir)
  }
  const route = (name: string, rule: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name}, namespace: shop }
spec:
  parentRefs: [{ name: gw }]
  rules:
    - ${rule}
`
  const to = (fn: string, ns = 'shop') =>
    `filters: [{ type: URLRewrite, urlRewrite: { hostname: ${fn}.${ns}.svc.cluster.local } }], backendRefs: [{ name: kourier-internal, namespace: kourier-system, port: 80 }]`

  it('takes the function from the rewritten host, and a / route as the fallback of every longer prefix', async () => {
    const routes = await load(
      [route('web', `{ matches: [{ path: { type: PathPrefix, value: / } }], ${to('web')} }`), route('api', `{ matches: [{ path: { value: /api/things/ } }, { path: { value: /api/stuff } }], ${to('things')} }`)].join('---\n'),
    )
    expect(routes.map((r) => [r.prefix, r.service, r.ingress])).toEqual([
      ['/api/things', 'things', 'api'],
      ['/api/stuff', 'things', 'api'],
      ['', 'web', 'web'],
    ])
    expect(matchRoute(routes, '/api/things/1')?.service).toBe('things')
    expect(matchRoute(routes, '/api/thingsx')?.service).toBe('web')
    expect(matchRoute(routes, '/')?.service).toBe('web')
    expect(matchRoute(routes, '/cart')?.service).toBe('web')
  })

  it('takes a rule without matches as PathPrefix /, as Gateway API does', async () => {
    expect((await load(route('all', `{ ${to('web')} }`))).map((r) => r.prefix)).toEqual([''])
  })

  it.each([
    ['an Exact path', `{ matches: [{ path: { type: Exact, value: /api/x } }], ${to('x')} }`, /PathPrefix paths only/],
    ['a header match', `{ matches: [{ path: { value: /api/x }, headers: [{ name: a, value: b }] }], ${to('x')} }`, /matches/],
    ['no host rewrite', `{ matches: [{ path: { value: /api/x } }], backendRefs: [{ name: x, port: 80 }], filters: [] }`, /one URLRewrite filter/],
    ['a host that is not cluster-local', `{ matches: [{ path: { value: /api/x } }], filters: [{ type: URLRewrite, urlRewrite: { hostname: x.example.com } }], backendRefs: [{ name: x }] }`, /cluster-local/],
    ['a host in another namespace', `{ matches: [{ path: { value: /api/x } }], ${to('x', 'other')} }`, /namespace other/],
    ['a header filter', `{ matches: [{ path: { value: /api/x } }], filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: Host, value: x.shop.svc.cluster.local }] } }], backendRefs: [{ name: x }] }`, /URLRewrite filters only/],
  ])('refuses %s, naming the file and the route', async (_, rule, message) => {
    const failure = load(route('bad', rule))
    await expect(failure).rejects.toThrow(message)
    await expect(failure).rejects.toThrow(/routes\.yaml: HTTPRoute bad/)
  })
})

describe('requestIdOf', () => {
  it('keeps what the functions keep and makes a UUID otherwise', () => {
    expect(requestIdOf('abc-123_x=')).toBe('abc-123_x=')
    for (const bad of [undefined, '', 'has space', 'a/b', 'x'.repeat(256), ['a', 'b']]) expect(requestIdOf(bad)).toMatch(/^[0-9a-f-]{36}$/)
  })
})

describe('startIngress', () => {
  let upstream: Server
  let ingress: Awaited<ReturnType<typeof startIngress>>
  const seen: { url?: string; host?: string; forwarded?: string; forwardedFor?: string; requestId?: string; body: string }[] = []

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        const requestId = req.headers['x-request-id'] as string
        seen.push({ url: req.url, host: req.headers.host, forwarded: req.headers['x-forwarded-host'] as string, forwardedFor: req.headers['x-forwarded-for'] as string, requestId, body })
        if (req.url === '/api/things/hang-up') return req.socket.destroy()
        res.writeHead(201, { 'Content-Type': 'application/json', 'X-Upstream': 'yes' })
        res.end(JSON.stringify({ ok: true }))
      })
    })
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
    const port = (upstream.address() as { port: number }).port
    // `gone` resolves to a port nothing listens on: a function that died between two checks.
    const gone = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port
        s.close(() => resolve(p))
      })
    })
    const routes: Route[] = [
      { prefix: '/api/things', service: 'things', ingress: 'things' },
      { prefix: '/api/down', service: 'down', ingress: 'down' },
      { prefix: '/api/gone', service: 'gone', ingress: 'gone' },
    ]
    const bases: Record<string, string> = { things: `http://127.0.0.1:${port}`, gone: `http://127.0.0.1:${gone}` }
    ingress = await startIngress({ routes, port: 0, resolve: (s) => bases[s] })
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

  it('passes the client’s request id on, or a new one, and answers with it', async () => {
    const kept = await fetch(`${ingress.url}/api/things/1`, { headers: { 'X-Request-Id': 'client-id-1' } })
    expect(kept.headers.get('X-Request-Id')).toBe('client-id-1')
    expect(seen.at(-1)?.requestId).toBe('client-id-1')
    const made = await fetch(`${ingress.url}/api/things/1`, { headers: { 'X-Request-Id': 'not a kept id' } })
    expect(seen.at(-1)?.requestId).toMatch(/^[0-9a-f-]{36}$/)
    expect(made.headers.get('X-Request-Id')).toBe(seen.at(-1)?.requestId)
  })

  it('sends the address it saw as X-Forwarded-For, never what the client wrote there', async () => {
    await fetch(`${ingress.url}/api/things/1`, { headers: { 'X-Forwarded-For': '203.0.113.9' } })
    expect(seen.at(-1)?.forwardedFor).toBe('127.0.0.1')
  })

  /** A problem the ingress answered itself: its status, headers and body. */
  const problemOf = async (res: Response) => ({ status: res.status, type: res.headers.get('Content-Type'), id: res.headers.get('X-Request-Id'), retryAfter: res.headers.get('Retry-After'), body: (await res.json()) as Record<string, unknown> })

  it.each([
    [404, '/events/order.created?x=1', 'Not Found', /^no route for POST \/events\/order\.created$/],
    [503, '/api/down/1', 'Service Unavailable', /^down is not running/],
    [502, '/api/gone/1', 'Bad Gateway', /^gone did not answer$/],
    [502, '/api/things/hang-up', 'Bad Gateway', /^things did not answer$/],
  ])('answers %i for %s as problem+json in the functions’ shape, with the request id', async (status, path, title, detail) => {
    const res = await problemOf(await fetch(`${ingress.url}${path}`, { method: 'POST', headers: { 'X-Request-Id': `id-${status}` } }))
    expect(res).toMatchObject({ status, type: 'application/problem+json', id: `id-${status}` })
    expect(Object.keys(res.body)).toEqual(['type', 'title', 'status', 'detail', 'instance', 'request_id'])
    expect(res.body).toMatchObject({ type: 'about:blank', title, status, instance: path.split('?')[0], request_id: `id-${status}` })
    expect(res.body.detail).toMatch(detail)
    // As the functions' 503: the client (or the broker) may try again shortly.
    expect(res.retryAfter).toBe(status === 503 ? '2' : null)
  })

  it('answers 504 as problem+json when a function does not start its answer in time, as NGINX’s proxy_read_timeout does', async () => {
    // A function that takes the request and never answers (stopped, wedged).
    const silent = createServer(() => {})
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const base = `http://127.0.0.1:${(silent.address() as { port: number }).port}`
    const short = await startIngress({ routes: [{ prefix: '/api/slow', service: 'slow', ingress: 'slow' }], port: 0, resolve: () => base, upstreamTimeoutMs: 200 })
    try {
      const res = await problemOf(await fetch(`${short.url}/api/slow/1`, { headers: { 'X-Request-Id': 'id-504' } }))
      expect(res).toMatchObject({ status: 504, type: 'application/problem+json', id: 'id-504' })
      expect(res.body).toMatchObject({ title: 'Gateway Timeout', status: 504, detail: 'slow did not answer within 0.2 s', request_id: 'id-504' })
    } finally {
      await short.stop()
      silent.closeAllConnections()
      silent.close()
    }
  })

  /** Sends raw bytes and reads the whole answer (the ingress closes the connection after it). */
  const raw = (bytes: string) =>
    new Promise<{ status: number; headers: Record<string, string>; body: Record<string, unknown> }>((resolve, reject) => {
      const { port } = new URL(ingress.url)
      const socket = connect(Number(port), '127.0.0.1', () => socket.end(bytes))
      let text = ''
      socket.on('data', (c) => (text += c))
      socket.on('error', reject)
      socket.on('close', () => {
        const [head = '', body = ''] = text.split('\r\n\r\n')
        const [statusLine = '', ...lines] = head.split('\r\n')
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
        resolve({ status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) as Record<string, unknown> })
      })
    })

  it.each([
    [400, 'Bad Request', 'GARBAGE\r\n\r\n'],
    [400, 'Bad Request', 'GET /api/things HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'],
    [431, 'Request Header Fields Too Large', `GET /api/things HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
  ])('answers %i (%s) to a request Node cannot take, as problem+json with a request id', async (status, title, bytes) => {
    const before = seen.length
    const res = await raw(bytes)
    expect(res.status).toBe(status)
    expect(res.headers['content-type']).toBe('application/problem+json')
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    expect(res.body).toMatchObject({ type: 'about:blank', title, status, request_id: res.headers['x-request-id'] })
    expect(Object.keys(res.body)).toEqual(['type', 'title', 'status', 'detail', 'request_id'])
    expect(seen.length, 'nothing reached the function').toBe(before)
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

  it('answers its own 404 with the keys, key order and title of the function’s own 404', async () => {
    const port = (fn.address() as { port: number }).port
    const own = (await (await fetch(`${ingress.url}/nowhere`, { headers: { 'X-Request-Id': 'same' } })).json()) as Record<string, unknown>
    // The function's 404 (no such route in the app), reached past the ingress.
    const theirs = (await (await fetch(`http://127.0.0.1:${port}/api/things/none`, { headers: { 'X-Request-Id': 'same' } })).json()) as Record<string, unknown>
    expect(Object.keys(own)).toEqual(Object.keys(theirs))
    expect({ ...own, detail: undefined, instance: undefined }).toEqual({ ...theirs, detail: undefined, instance: undefined })
  })

  it('passes no connection headers on: the client learns the ingress’s keep-alive, not the function’s', async () => {
    const res = await fetch(`${ingress.url}/api/things`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })
    expect(res.status).toBe(201)
    expect(res.headers.get('Keep-Alive')).toBe('timeout=75') // the function here says timeout=5
  })
})
