/**
 * The local ingress: what the cluster's ingress does, read from the same manifests a cluster
 * applies, so local routes and cluster routes cannot drift. It plays either choice the deploy
 * script offers: the NGINX Ingresses of knative/ingress-nginx, or the Gateway API HTTPRoutes of
 * knative/gateway. Prefix routes only, longest prefix first, no path rewrite. What it answers
 * itself (no route, a function down or failing, a request it cannot parse) is problem+json in
 * the functions' own shape, with the request's `X-Request-Id`, which it also passes on.
 */
import { randomUUID } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import { Agent, createServer, request, STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { pipeline, type Duplex } from 'node:stream'
import * as v from 'valibot'
import { parseAllDocuments } from 'yaml'
import { RETRY_AFTER_SECONDS } from '../../shared/errors.ts'

/** The two ingress choices of a deploy (`--ingress`), and of `npm start` (`INGRESS`). */
export const INGRESS_CHOICES = ['nginx', 'gateway'] as const
export type IngressChoice = (typeof INGRESS_CHOICES)[number]

/** Where each choice's manifests are, under the repository root. */
export const INGRESS_DIRS: Record<IngressChoice, string> = { nginx: 'knative/ingress-nginx', gateway: 'knative/gateway' }

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

// A Knative Service's cluster-local name: `<service>.<namespace>.svc.cluster.local`.
const CLUSTER_LOCAL_HOST = /^([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.svc\.cluster\.local$/

// Gateway API's defaults where a rule leaves them out: no match means every path (PathPrefix `/`).
const PathPrefix = v.object({
  type: v.optional(v.literal('PathPrefix', 'the local ingress plays PathPrefix paths only'), 'PathPrefix'),
  value: v.optional(v.pipe(v.string(), v.startsWith('/')), '/'),
})
const HttpRouteManifest = v.object({
  kind: v.literal('HTTPRoute'),
  metadata: v.object({ name: v.string(), namespace: v.optional(v.string()) }),
  spec: v.object({
    rules: v.array(
      v.object({
        // Strict: a header, query or method match would be ignored here and route what the cluster does not.
        matches: v.optional(v.array(v.strictObject({ path: v.optional(PathPrefix, {}) })), [{}]),
        filters: v.pipe(
          v.array(
            v.strictObject({
              type: v.literal('URLRewrite', 'the local ingress plays URLRewrite filters only'),
              urlRewrite: v.strictObject({ hostname: v.pipe(v.string(), v.regex(CLUSTER_LOCAL_HOST, 'must be a cluster-local Service name, <service>.<namespace>.svc.cluster.local')) }),
            }),
          ),
          v.length(1, 'needs one URLRewrite filter naming the function by its cluster-local host'),
        ),
        backendRefs: v.pipe(v.array(v.unknown()), v.minLength(1, 'needs a backendRef (Knative’s internal gateway)')),
      }),
    ),
  }),
})

/** One public route: a path prefix (`''` for `/`), the function it goes to, and the manifest it came from. */
export type Route = { prefix: string; service: string; ingress: string }

const byLongestPrefix = (routes: Route[]) => routes.sort((a, b) => b.prefix.length - a.prefix.length)

/** The YAML documents of every `*.yaml` in `dir` (not its subfolders) whose kind is `kind`. */
async function manifestsOf(dir: string, kind: string): Promise<{ file: string; doc: unknown }[]> {
  const found: { file: string; doc: unknown }[] = []
  for (const file of (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
      const manifest = doc.toJS() as { kind?: unknown } | null
      if (manifest?.kind === kind) found.push({ file, doc: manifest })
    }
  }
  return found
}

/** `v.parse` with the file, the object and the field at fault in the message. */
function parseManifest<S extends v.GenericSchema>(schema: S, file: string, doc: unknown): v.InferOutput<S> {
  const result = v.safeParse(schema, doc)
  if (result.success) return result.output
  const issue = result.issues[0]
  const name = (doc as { kind?: string; metadata?: { name?: string } }).metadata?.name
  throw new Error(`${file}: ${(doc as { kind?: string }).kind} ${name}: ${v.getDotPath(issue) ?? '(root)'}: ${issue.message}`)
}

/** Every path of every Ingress in `dir`, longest prefix first (the one NGINX would pick). */
export async function loadIngressRoutes(dir: string): Promise<Route[]> {
  const routes: Route[] = []
  for (const { file, doc } of await manifestsOf(dir, 'Ingress')) {
    const ingress = parseManifest(IngressManifest, file, doc)
    for (const rule of ingress.spec.rules) {
      for (const p of rule.http.paths) {
        routes.push({ prefix: p.path.replace(/\/+$/, ''), service: p.backend.service.name, ingress: ingress.metadata.name })
      }
    }
  }
  return byLongestPrefix(routes)
}

/**
 * Every path match of every HTTPRoute in `dir`, longest prefix first (Gateway API's precedence
 * among PathPrefix matches). The function a rule goes to is the one its URLRewrite filter names as
 * the Host (`product.shop.svc.cluster.local` → `product`), which is what Knative's internal gateway
 * routes by on a cluster. Anything the local ingress could not play as the cluster does (header or
 * method matches, other filters, a host in another namespace than the route's) is refused.
 */
export async function loadGatewayRoutes(dir: string): Promise<Route[]> {
  const routes: Route[] = []
  for (const { file, doc } of await manifestsOf(dir, 'HTTPRoute')) {
    const route = parseManifest(HttpRouteManifest, file, doc)
    for (const rule of route.spec.rules) {
      const [, service, namespace] = CLUSTER_LOCAL_HOST.exec(rule.filters[0]!.urlRewrite.hostname)!
      if (route.metadata.namespace && namespace !== route.metadata.namespace) {
        throw new Error(`${file}: HTTPRoute ${route.metadata.name}: its host names namespace ${namespace}, not the route’s own (${route.metadata.namespace})`)
      }
      for (const match of rule.matches) routes.push({ prefix: match.path.value.replace(/\/+$/, ''), service: service!, ingress: route.metadata.name })
    }
  }
  return byLongestPrefix(routes)
}

/** The routes of an ingress choice, read from its manifests under the repository `root`. */
export const loadRoutes = (root: string, choice: IngressChoice): Promise<Route[]> =>
  (choice === 'gateway' ? loadGatewayRoutes : loadIngressRoutes)(join(root, INGRESS_DIRS[choice]))

/**
 * The route for a path: `/api/cart` matches `/api/cart` and `/api/cart/items`, not `/api/carts`;
 * a `/` route (prefix `''`) matches every path no longer prefix takes.
 */
export const matchRoute = (routes: Route[], path: string) =>
  routes.find((r) => path === r.prefix || path.startsWith(`${r.prefix}/`) || path.startsWith(`${r.prefix}?`))

type IngressOptions = {
  routes: Route[]
  /** The base URL of a service, once it is up. */
  resolve: (service: string) => string | undefined
  port: number
  host?: string
  /** How long a function may take to start its answer, in ms: NGINX's proxy_read_timeout as the Ingresses set it (60 s); then 504. */
  upstreamTimeoutMs?: number
}

/**
 * Starts the ingress; resolves when it listens. `stop()` drains it: no new connection is taken,
 * the requests in flight get their answers (up to `graceMs`, default 10 s, then their connections
 * are cut), then its kept upstream connections close.
 */
export async function startIngress({ routes, resolve, port, host = '127.0.0.1', upstreamTimeoutMs = 60_000 }: IngressOptions) {
  const agent = new UpstreamAgent()
  const server: Server = createServer((req, res) => {
    // Routes are matched, and the request forwarded, on the normalised path, as NGINX matches
    // its locations: dot segments resolved, `%2E%2E` and `\` included. Matched on the raw path,
    // `/api/orders/%2E%2E/%2E%2E/internal/outbox/flush` passed the `/api/orders` prefix and then
    // reached `/internal/...` once resolved: internal and event routes must stay out of reach.
    // The request target is appended to a fixed origin, so `//host/...` stays a path.
    const url = new URL(`http://ingress.invalid${(req.url ?? '/').startsWith('/') ? req.url : '/'}`)
    const path = url.pathname
    // Kept from the client when the functions would keep it too, so the client's id, this
    // ingress's answer and the function's log line all carry the same one.
    const requestId = requestIdOf(req.headers['x-request-id'])
    const fail = (status: number, detail: string) => problem(res, status, detail, { requestId, instance: (req.url ?? '/').split('?')[0] ?? '/' })
    const route = matchRoute(routes, path)
    if (!route) return fail(404, `no route for ${req.method} ${path}`)
    const base = resolve(route.service)
    if (!base) return fail(503, `${route.service} is not running; retry shortly`)
    const target = new URL(path + url.search, base)
    const upstream = request(
      target,
      {
        agent,
        method: req.method,
        headers: {
          ...endToEnd(req.headers),
          host: target.host,
          'x-request-id': requestId,
          // The address this ingress saw, never what the client wrote: ingress-nginx's default
          // (compute-full-forwarded-for off), on which the functions' per-client limits rely.
          'x-forwarded-for': req.socket.remoteAddress ?? '',
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
        res.writeHead(up.statusCode ?? 502, { 'x-request-id': requestId, ...endToEnd(up.headers) })
        // Not up.pipe(res): a function whose connection closes mid-answer (it died, it was cut)
        // ends `up` without an 'error' to hear, and a pipe then leaves the client waiting for the
        // rest for ever. pipeline() cuts the client's connection too, so it knows the answer is
        // incomplete; a client gone first ends `up`. Either way there is nothing more to do.
        pipeline(up, res, () => {})
      },
    )
    // A function that stops answering (stopped, wedged) gets the client a 504, as NGINX gives,
    // not a wait for ever. The timer runs while the socket is idle: the answer's start, or a stall.
    let timedOut = false
    upstream.setTimeout(upstreamTimeoutMs, () => {
      timedOut = true
      upstream.destroy(new Error('no answer in time'))
    })
    upstream.on('error', () => {
      if (!res.headersSent) {
        req.unpipe(upstream)
        req.resume()
        if (timedOut) fail(504, `${route.service} did not answer within ${upstreamTimeoutMs / 1000} s`)
        else fail(502, `${route.service} did not answer`)
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
  // A request Node cannot parse never reaches the handler above; Node's own answer to it is a bare
  // status line. Answered here instead, in the same problem+json as every other error.
  server.on('clientError', answerClientError)
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

// The functions' rule for a request id they keep (hono/request-id): up to 255 of [A-Za-z0-9_=-].
const KEPT_REQUEST_ID = /^[\w\-=]{1,255}$/

/** The request's `X-Request-Id` when the functions would keep it, else a new one (a UUID, as theirs). */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && KEPT_REQUEST_ID.test(header) ? header : randomUUID()
}

/**
 * Writes what the ingress answers itself as problem details (RFC 9457), in the shape of the
 * functions' `problemResponse` (shared/errors.ts): `{ type: 'about:blank', title, status, detail,
 * instance, request_id }`, `X-Request-Id` set, and `Retry-After` on a 503 as the functions send it.
 */
function problem(res: ServerResponse, status: number, detail: string, { requestId, instance }: { requestId: string; instance: string }) {
  res.writeHead(status, problemHeaders(status, requestId))
  res.end(problemBody(status, detail, requestId, instance))
}

const problemHeaders = (status: number, requestId: string) => ({
  'Content-Type': 'application/problem+json',
  'X-Request-Id': requestId,
  ...(status === 503 ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {}),
})

// The key order of the functions' bodies; `instance` is left out only where there is no request line to take it from.
const problemBody = (status: number, detail: string, requestId: string, instance?: string) =>
  JSON.stringify({ type: 'about:blank', title: STATUS_CODES[status], status, detail, ...(instance !== undefined ? { instance } : {}), request_id: requestId })

/**
 * Node's `clientError`: a request it could not parse (400), headers over its limit (431), a
 * request not complete in time (408). The connection cannot be trusted after that: the answer
 * closes it, as Node's own does.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex) {
  const answered = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent
  if (err.code === 'ECONNRESET' || !socket.writable || answered) return socket.destroy()
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
  const requestId = randomUUID()
  const detail = status === 431 ? 'the request headers are too large' : status === 408 ? 'the request did not arrive in time' : 'the request is not valid HTTP/1.1'
  const body = problemBody(status, detail, requestId)
  const headers = { ...problemHeaders(status, requestId), 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' }
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${Object.entries(headers).map(([k, val]) => `${k}: ${val}`).join('\r\n')}\r\n\r\n${body}`)
}
