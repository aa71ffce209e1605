/**
 * @module
 * The app factory every function uses: request id, one JSON access-log line per request,
 * metrics, 405s, a body size limit, `/healthz`, `/metrics`, and errors rendered once as
 * problem details.
 */
import { Hono, type Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { methodNotAllowed } from 'hono/method-not-allowed'
import { requestId } from 'hono/request-id'
import { bodyLimit } from './body-limit.ts'
import { isDatabaseUnavailable, ping, type Pool } from './db.ts'
import { HttpProblem, databaseUnavailable, payloadTooLarge, problemResponse } from './errors.ts'
import type { Logger } from './log.ts'
import { routeTemplate, type Metrics } from './metrics.ts'
import { servePublicFiles } from './public-files.ts'

type AppOptions = {
  log: Logger
  metrics: Metrics
  /** Checked by `/healthz`; without one, `/healthz` only says the process is up. */
  pool?: Pool
  maxBodyBytes?: number
  /**
   * The files the build put beside the bundle for clients (its API documents, see
   * shared/public-files.ts): by default `public/` beside the running module, which in a bundle is
   * `dist/<name>/public/`; run from the sources there is none, and nothing is served.
   */
  publicDir?: URL | string
}

/**
 * A Hono app with what every function shares, in this order: an `X-Request-Id` (kept from the
 * request or made), an access-log line per request, the HTTP metrics, 405 with `Allow` for a known
 * path and another method, a body limit of `maxBodyBytes` (default 64 KiB; over it, 413),
 * `GET /healthz` (200 `{"status":"ok"}`, or 503 when `pool` does not answer), `GET /metrics`
 * (Prometheus text) and a `GET` route for each file under `publicDir` (the API documents). Every
 * error is answered as an RFC 9457 problem (`application/problem+json`): an `HttpProblem` as it says, Hono's own 4xx with their message, the database out of reach (see
 * `isDatabaseUnavailable`) 503 with `Retry-After` (as `/healthz` then says too), anything else 500
 * (and logged).
 *
 * @example
 * ```ts
 * const app = createApp({ log, metrics, pool })
 * app.get('/api/products', …)
 * ```
 */
export function createApp({ log, metrics, pool, maxBodyBytes = 64 * 1024, publicDir = new URL('./public/', import.meta.url) }: AppOptions) {
  const app = new Hono()

  app.use(requestId())
  app.use(accessLog(log))
  app.use(metrics.http)
  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) =>
        problemResponse(c, 405, `${c.req.method} is not allowed here`, { headers: { Allow: methods.join(', ') } }),
    }),
  )
  app.use(
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw payloadTooLarge(maxBodyBytes)
      },
    }),
  )

  app.get('/healthz', async (c) => {
    if (pool && !(await ping(pool))) return problemResponse(c, 503, 'the database does not answer')
    return c.json({ status: 'ok' })
  })
  app.get('/metrics', metrics.handler)
  // Before the function's own routes: `/api/products/openapi.json` is not a product id.
  servePublicFiles(app, publicDir)

  app.notFound((c) => problemResponse(c, 404, `no route for ${c.req.method} ${c.req.path}`))
  app.onError((err, c) => renderError(err, c, log))

  return app
}

/** The Hono app `createApp` makes; a function's app factory adds its routes to it and answers it. */
export type App = ReturnType<typeof createApp>

function renderError(err: Error, c: Context, log: Logger): Response {
  // The database out of reach is a state of the world, not a bug in this request: 503 with
  // Retry-After, so clients retry, and the pool reconnects by itself once the server is back.
  if (!(err instanceof HTTPException) && isDatabaseUnavailable(err)) {
    log.warn('database unavailable', { request_id: c.get('requestId'), method: c.req.method, path: c.req.path, err })
    const problem = databaseUnavailable(err)
    return problemResponse(c, problem.status, problem.message, { headers: problem.headers })
  }
  if (err instanceof HttpProblem) {
    // A 503 is a dependency out of reach for now (product, the broker): one warning line, no
    // stack; a client retry is the remedy. Any other 5xx is ours to fix, with its stack.
    if (err.status === 503) {
      const cause = err.cause instanceof Error ? err.cause.message : undefined
      log.warn('request failed: a dependency is unavailable', { request_id: c.get('requestId'), detail: err.message, ...(cause ? { cause } : {}) })
    } else if (err.status >= 500) log.error('request failed', { request_id: c.get('requestId'), err: err.cause ?? err })
    return problemResponse(c, err.status, err.message, { errors: err.errors, headers: err.headers, type: err.type, extensions: err.extensions })
  }
  // Hono's own (a malformed JSON body, …): their messages are written for clients.
  if (err instanceof HTTPException && err.status < 500) return problemResponse(c, err.status, err.message)
  log.error('unhandled error', { request_id: c.get('requestId'), method: c.req.method, path: c.req.path, err })
  return problemResponse(c, 500, 'something went wrong on our side; the request id identifies it in our logs')
}

/** One line per request, after it is answered. Health and metrics scrapes log at debug. */
function accessLog(log: Logger) {
  return async function accessLog(c: Context, next: () => Promise<void>) {
    const start = performance.now()
    await next()
    const path = c.req.path
    const quiet = path === '/healthz' || path === '/metrics'
    log[quiet ? 'debug' : 'info']('request', {
      request_id: c.get('requestId'),
      method: c.req.method,
      route: routeTemplate(c),
      path,
      status: c.res.status,
      ms: Math.round((performance.now() - start) * 10) / 10,
    })
  }
}
