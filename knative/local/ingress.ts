/**
 * The local ingress: what NGINX does on a cluster, read from the same Ingress manifests in
 * knative/, so local routes and cluster routes cannot drift. Prefix routes only, no rewrite.
 */
import { readFile, readdir } from 'node:fs/promises'
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pipeline, type Duplex } from 'node:stream'
import * as v from 'valibot'
import { parseAllDocuments } from 'yaml'

const IngressManifest = v.object({
  kind: v.literal('Ingress'),
  metadata: v.object({ name: v.string() }),
  spec: v.object({
    rules: v.array(
      v.object({
        http: v.object({
          paths: v.array(
            v.object({
              path: v.pipe(v.string(), v.startsWith('/')),
              pathType: v.literal('Prefix', 'the local ingress plays Prefix paths only'),
              backend: v.object({ service: v.object({ name: v.string() }) }),
            }),
          ),
        }),
      }),
    ),
  }),
})

export type Route = { prefix: string; service: string; ingress: string }

/** Every path of every Ingress in `dir`, longest prefix first (the one NGINX would pick). */
export async function loadIngressRoutes(dir: string): Promise<Route[]> {
  const routes: Route[] = []
  for (const file of (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(await readFile(`${dir}/${file}`, 'utf8'))) {
      const manifest = doc.toJS() as { kind?: unknown } | null
      if (manifest?.kind !== 'Ingress') continue
      const ingress = v.parse(IngressManifest, manifest)
      for (const rule of ingress.spec.rules) {
        for (const p of rule.http.paths) {
          routes.push({ prefix: p.path.replace(/\/+$/, ''), service: p.backend.service.name, ingress: ingress.metadata.name })
        }
      }
    }
  }
  return routes.sort((a, b) => b.prefix.length - a.prefix.length)
}

/** The route for a path: `/api/cart` matches `/api/cart` and `/api/cart/items`, not `/api/carts`. */
export const matchRoute = (routes: Route[], path: string) =>
  routes.find((r) => path === r.prefix || path.startsWith(`${r.prefix}/`) || path.startsWith(`${r.prefix}?`))

type IngressOptions = {
  routes: Route[]
  /** The base URL of a service, once it is up. */
  resolve: (service: string) => string | undefined
  port: number
  host?: string
}

/**
 * Starts the ingress; resolves when it listens. `stop()` drains it: no new connection is taken,
 * the requests in flight get their answers (up to `graceMs`, default 10 s, then their connections
 * are cut), then its kept upstream connections close.
 */
export async function startIngress({ routes, resolve, port, host = '127.0.0.1' }: IngressOptions) {
  const agent = new UpstreamAgent()
  const server: Server = createServer((req, res) => {
    // Routes are matched, and the request forwarded, on the normalised path, as NGINX matches
    // its locations: dot segments resolved, `%2E%2E` and `\` included. Matched on the raw path,
    // `/api/orders/%2E%2E/%2E%2E/internal/outbox/flush` passed the `/api/orders` prefix and then
    // reached `/internal/...` once resolved: internal and event routes must stay out of reach.
    // The request target is appended to a fixed origin, so `//host/...` stays a path.
    const url = new URL(`http://ingress.invalid${(req.url ?? '/').startsWith('/') ? req.url : '/'}`)
    const path = url.pathname
    const route = matchRoute(routes, path)
    if (!route) return problem(req, res, 404, `no route for ${req.method} ${path}`)
    const base = resolve(route.service)
    if (!base) return problem(req, res, 503, `${route.service} is not running`)
    const target = new URL(path + url.search, base)
    const upstream = request(
      target,
      {
        agent,
        method: req.method,
        headers: {
          ...endToEnd(req.headers),
          host: target.host,
          'x-forwarded-for': [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', '),
          'x-forwarded-host': req.headers.host ?? '',
          'x-forwarded-proto': 'http',
        },
      },
      (up) => {
        // A function that answers before it has read the request's body (a 413 decided by
        // Content-Length, a 401 or 404 before any handler reads it) lets @hono/node-server drain
        // the rest for 500 ms and then close the connection, without a `Connection: close` to
        // say so. Kept for reuse, that connection carried our next request into the close: the
        // function never answered it, and the client got a 502. So such a connection is not kept;
        // the ingress cannot see whether the body was read, and takes any error answer to a
        // request with a body as unread.
        const early = !upstream.writableFinished
        if (early || (hasBody(req) && (up.statusCode ?? 500) >= 400)) agent.retire(upstream.socket)
        if (early) {
          // Answered while the body was still on its way: stop forwarding it, and read the rest of
          // the client's body into nothing, so that the client gets this answer (not a reset from
          // a half-read connection) and its connection is ready for its next request.
          req.unpipe(upstream)
          req.resume()
          // Never ended, the request would hold its connection: end it once the answer is relayed.
          up.once('end', () => upstream.destroy())
        }
        res.writeHead(up.statusCode ?? 502, endToEnd(up.headers))
        // Not up.pipe(res): a function whose connection closes mid-answer (it died, it was cut)
        // ends `up` without an 'error' to hear, and a pipe then leaves the client waiting for the
        // rest for ever. pipeline() cuts the client's connection too, so it knows the answer is
        // incomplete; a client gone first ends `up`. Either way there is nothing more to do.
        pipeline(up, res, () => {})
      },
    )
    upstream.on('error', () => {
      if (!res.headersSent) {
        req.unpipe(upstream)
        req.resume()
        problem(req, res, 502, `${route.service} did not answer`)
      } else if (!res.writableFinished) {
        // Cut off mid-answer: the client must not take a part of the body for all of it.
        res.destroy()
      }
    })
    // A client that goes away before its answer is complete: the function's work is for no one.
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.pipe(upstream)
  })
  // NGINX's keepalive_timeout. Idle client connections cannot hold a stop (stop() closes them), so
  // the only cost of a long timeout is an idle socket; a short one races busy clients: a request
  // sent on a kept connection just as the ingress closes it is reset (ECONNRESET), and under
  // load, with a client's event loop late by seconds, 5 s was short enough to lose that race.
  server.keepAliveTimeout = 75_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  // A failed accept (EMFILE under load) comes as 'error' on a listening server, which goes on
  // listening: that connection is lost, and an unheard 'error' would end the runner with it.
  server.on('error', () => {})
  const { port: bound } = server.address() as AddressInfo
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}`,
    stop: async (graceMs = 10_000) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      // A kept-alive client connection goes as soon as it is idle, one with a request in flight
      // once its answer is written: sweep them as they become idle.
      server.closeIdleConnections()
      const sweep = setInterval(() => server.closeIdleConnections(), 50)
      const deadline = setTimeout(() => server.closeAllConnections(), graceMs)
      await closed
      clearInterval(sweep)
      clearTimeout(deadline)
      agent.destroy()
    },
  }
}

/**
 * Upstream connections are kept for the next request, as NGINX's upstream keepalive keeps them,
 * and dropped after 5 s idle: well before a function closes an idle one itself (its keep-alive
 * timeout is 65 s), so an idle close never meets a reuse. `retire` marks a connection the
 * function may close at any moment: it is closed rather than kept once its answer is read.
 */
class UpstreamAgent extends Agent {
  private retired = new WeakSet<Duplex>()

  constructor() {
    super({ keepAlive: true, timeout: 5_000 })
  }

  retire(socket: Duplex | null): void {
    if (socket) this.retired.add(socket)
  }

  override keepSocketAlive(socket: Duplex): boolean {
    // Node's own agent decides on a kept socket by what this returns, typed `void` in @types/node.
    return !this.retired.has(socket) && (super.keepSocketAlive(socket) as unknown as boolean)
  }
}

/**
 * Headers about one connection rather than the message (RFC 9110 §7.6.1), which a proxy does not
 * pass on. Passed on, a function's `Keep-Alive: timeout=65` told clients they could reuse for 65 s
 * a connection that this ingress closes after 5 s.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = new Set(String(headers.connection ?? '').split(',').map((h) => h.trim().toLowerCase()))
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name) && !named.has(name)))
}

const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')

function problem(req: IncomingMessage, res: ServerResponse, status: number, detail: string) {
  const titles: Record<number, string> = { 404: 'Not Found', 502: 'Bad Gateway', 503: 'Service Unavailable' }
  res.writeHead(status, { 'Content-Type': 'application/problem+json' })
  res.end(JSON.stringify({ type: 'about:blank', title: titles[status], status, detail, instance: (req.url ?? '/').split('?')[0] }))
}
