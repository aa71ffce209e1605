/**
 * The local ingress: what NGINX does on a cluster, read from the same Ingress manifests in
 * knative/, so local routes and cluster routes cannot drift. Prefix routes only, no rewrite.
 */
import { readFile, readdir } from 'node:fs/promises'
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
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

/** Starts the ingress; resolves when it listens. */
export async function startIngress({ routes, resolve, port, host = '127.0.0.1' }: IngressOptions) {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    const route = matchRoute(routes, path)
    if (!route) return problem(req, res, 404, `no route for ${req.method} ${path}`)
    const base = resolve(route.service)
    if (!base) return problem(req, res, 503, `${route.service} is not running`)
    const target = new URL(req.url ?? '/', base)
    const upstream = request(
      target,
      {
        method: req.method,
        headers: {
          ...req.headers,
          host: target.host,
          'x-forwarded-for': [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', '),
          'x-forwarded-host': req.headers.host ?? '',
          'x-forwarded-proto': 'http',
        },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
      },
    )
    upstream.on('error', () => {
      if (!res.headersSent) problem(req, res, 502, `${route.service} did not answer`)
      else res.destroy()
    })
    req.pipe(upstream)
  })
  // Keep-alive sockets of clients must not hold a stop.
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const { port: bound } = server.address() as AddressInfo
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function problem(req: IncomingMessage, res: ServerResponse, status: number, detail: string) {
  const titles: Record<number, string> = { 404: 'Not Found', 502: 'Bad Gateway', 503: 'Service Unavailable' }
  res.writeHead(status, { 'Content-Type': 'application/problem+json' })
  res.end(JSON.stringify({ type: 'about:blank', title: titles[status], status, detail, instance: (req.url ?? '/').split('?')[0] }))
}
