/**
 * @module
 * CORS (the Fetch standard's CORS protocol) for browser clients on other origins, only those the
 * operator lists (`CORS_ORIGINS`): preflights answered, no credentials (clients send their token in
 * `Authorization`, never a cookie), and only the methods and headers the API documents. With no
 * origins listed nothing changes: no CORS headers, and `OPTIONS` answers 405 like any method a
 * route does not take.
 */
import { Hono, type MiddlewareHandler } from 'hono'
import { cors } from 'hono/cors'

/** The methods of the API's operations (the OpenAPI document's; a test keeps them equal). */
export const CORS_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const

/** The request headers the API reads: `Authorization` (Bearer), `Content-Type`, and the header parameters of its document. */
export const CORS_REQUEST_HEADERS = ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id', 'X-User-ID'] as const

/** The response headers of the API's document that a script may read beyond the CORS-safelisted ones (`Content-Type`, `Cache-Control`, …). */
export const CORS_EXPOSED_HEADERS = ['Retry-After', 'WWW-Authenticate', 'X-Request-Id', 'X-User-ID'] as const

/** How long a browser may keep a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE_S = 600

/**
 * Hono middleware for the CORS protocol with `origins` (exact origins, `https://shop.example.com`;
 * compared as browsers send them). A request from one of them gets `Access-Control-Allow-Origin`
 * (its origin) and `Access-Control-Expose-Headers`; a preflight from one of them (`OPTIONS` with
 * `Origin` and `Access-Control-Request-Method`) is answered 204 with the allowed methods and
 * headers, cacheable `PREFLIGHT_MAX_AGE_S`. Never `Access-Control-Allow-Credentials`. Any other
 * `OPTIONS` goes on to the app (405). Every answer says `Vary: Origin`.
 */
export function corsMiddleware(origins: readonly string[]): MiddlewareHandler {
  const allowed = new Set(origins)
  const handle = cors({
    origin: (origin) => (allowed.has(origin) ? origin : null),
    allowMethods: [...CORS_METHODS],
    allowHeaders: [...CORS_REQUEST_HEADERS],
    exposeHeaders: [...CORS_EXPOSED_HEADERS],
    maxAge: PREFLIGHT_MAX_AGE_S,
    credentials: false,
  })
  return async function corsProtocol(c, next) {
    if (c.req.method === 'OPTIONS') {
      const origin = c.req.header('Origin')
      const preflight = origin !== undefined && allowed.has(origin) && c.req.header('Access-Control-Request-Method') !== undefined
      if (!preflight) {
        await next()
        c.header('Vary', 'Origin', { append: true })
        return
      }
    }
    return handle(c, next)
  }
}

type Fetcher = { fetch: (request: Request, env?: unknown) => Response | Promise<Response> }

/**
 * `app` behind `corsMiddleware(origins)`: a `fetch` that answers preflights itself and hands every
 * other request (and its `env`, the node server's socket) to `app`, adding the CORS headers to its
 * answer. With no `origins`, `app` as it is.
 */
export function withCors(app: Fetcher, origins: readonly string[]): Fetcher {
  if (origins.length === 0) return app
  const outer = new Hono()
  outer.use(corsMiddleware(origins))
  outer.all('*', (c) => app.fetch(c.req.raw, c.env))
  return outer
}
