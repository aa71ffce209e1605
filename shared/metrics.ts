/**
 * @module
 * Prometheus metrics: one registry per process (with Node's default metrics), HTTP request
 * count and duration by method, route template and status, and the event counters every
 * function shares. Domain metrics are registered by each function on the same registry.
 */
import type { MiddlewareHandler } from 'hono'
import { matchedRoutes } from 'hono/route'
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** What `createMetrics` answers: `registry`, the `http` middleware, the `/metrics` `handler`, and the `eventsReceived` and `eventsPublished` counters. */
export type Metrics = ReturnType<typeof createMetrics>

/**
 * A Prometheus registry of its own (prom-client), with Node's default process metrics unless
 * `defaults: false`, and the metrics every function exports:
 * - `http_requests_total{method, route, status}` and `http_request_duration_seconds{method, route,
 *   status}` (a histogram, seconds, buckets 5 ms to 10 s), both kept by the `http` middleware;
 * - `events_received_total{type, outcome}`, outcome `handled`, `duplicate`, `rejected` or `failed`;
 * - `events_published_total{type, outcome}`, outcome `sent` or `failed`.
 * `handler` answers the registry in the Prometheus text exposition format.
 *
 * @example
 * ```ts
 * const metrics = createMetrics()
 * app.use(metrics.http)
 * app.get('/metrics', metrics.handler)
 * ```
 */
export function createMetrics({ defaults = true }: { defaults?: boolean } = {}) {
  const registry = new Registry()
  if (defaults) collectDefaultMetrics({ register: registry })

  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  })
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer HTTP requests, by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  const eventsReceived = new Counter({
    name: 'events_received_total',
    help: 'CloudEvents received, by type and outcome (handled, duplicate, rejected, failed).',
    labelNames: ['type', 'outcome'] as const,
    registers: [registry],
  })
  const eventsPublished = new Counter({
    name: 'events_published_total',
    help: 'CloudEvents published to a broker, by type and outcome (sent, failed).',
    labelNames: ['type', 'outcome'] as const,
    registers: [registry],
  })

  const http: MiddlewareHandler = async function httpMetrics(c, next) {
    const start = performance.now()
    try {
      await next()
    } finally {
      const labels = { method: c.req.method, route: routeTemplate(c), status: String(c.res.status) }
      requests.inc(labels)
      duration.observe(labels, (performance.now() - start) / 1000)
    }
  }

  const handler: MiddlewareHandler = async (c) =>
    c.body(await registry.metrics(), 200, { 'Content-Type': registry.contentType })

  return { registry, http, handler, eventsReceived, eventsPublished }
}

/**
 * The template of the route that answered (`/api/products/:id`), never the raw path, so that
 * label values stay few. Requests no route matched are `unmatched`.
 */
export function routeTemplate(c: Parameters<MiddlewareHandler>[0]): string {
  const routes = matchedRoutes(c)
  for (let i = routes.length - 1; i >= 0; i--) {
    const route = routes[i]
    if (route && route.method !== 'ALL') return route.path
  }
  return 'unmatched'
}
