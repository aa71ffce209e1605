/**
 * The storefront: the shop's pages, rendered on the server with Hono's JSX, for shoppers and for
 * the shop's admins. It is the browser's backend: it logs in through the auth function and keeps
 * the access token in the session (session.ts), and reads and changes everything else through the
 * other functions' public APIs (shop.ts), like any client. Every page works without JavaScript:
 * forms post, and a success redirects (303) to the page that shows the result; a form with errors
 * is shown again, each error beside its field.
 */
import { requestId } from 'hono/request-id'
import { Hono, type Context } from 'hono'
import { secureHeaders } from 'hono/secure-headers'
import { HttpProblem, problemResponse } from '../../shared/errors.ts'
import { createApp } from '../../shared/http.ts'
import type { Pool } from '../../shared/db.ts'
import type { Logger } from '../../shared/log.ts'
import type { Metrics } from '../../shared/metrics.ts'
import { serveAssets } from './assets.ts'
import { accountPages } from './pages/account.tsx'
import { adminPages } from './pages/admin.tsx'
import { cartPages } from './pages/cart.tsx'
import { catalogPages } from './pages/catalog.tsx'
import { ErrorPage } from './pages/error.tsx'
import { orderPages } from './pages/orders.tsx'
import { clearSessionCookie, createSessionStore, sessionMiddleware, type SessionStore } from './session.ts'
import { SignedOut, type Shop } from './shop.ts'
import { render } from './views.tsx'

type WebDeps = {
  pool: Pool
  log: Logger
  metrics: Metrics
  /** The other functions' APIs (createShop over createApiClient). */
  shop: Shop
  /** Tests give sessions that last a few seconds; default: `createSessionStore` on `pool`. */
  sessions?: SessionStore
}

/** What every page module gets: the shop's API, the sessions and the log. */
export type PageDeps = { shop: Shop; sessions: SessionStore; log: Logger }

/**
 * The storefront's app. Pages (the public contract; each a bookmarkable address):
 * `GET /` (catalog; `?q=` search, `?page=`), `GET /products/:id`, `GET|POST /register`,
 * `GET|POST /login`, `POST /logout`, `GET /cart`, `POST /cart/items` (add),
 * `POST /cart/items/:id` (change the quantity, or remove with `action=remove`), `POST /checkout`,
 * `GET /orders`, `GET /orders/:id` (with `GET /orders/:id/status`, the JSON its script polls,
 * and `POST /orders/:id/cancel`), `GET|POST /admin/products` (and `/admin/products/:id`, its
 * `/stock` and `/delete`), `GET /admin/orders` (`?status=`, `?page=`); `/assets/*` the stylesheet,
 * the script and the icon.
 *
 * Every POST route must carry the session's CSRF token in the form field `_csrf` (403 otherwise). Every
 * answer has a Content-Security-Policy without inline script or style (`default-src 'self'`,
 * `frame-ancestors 'none'`), `Referrer-Policy: same-origin` and `X-Content-Type-Options: nosniff`.
 * Errors are pages: 404, 403, 503 (another function does not answer; with `Retry-After`), 500;
 * a 404 is problem+json, as the API's own, under `/api/` (no function of that group) and for a
 * client that does not ask for HTML. A session
 * whose access token is refused is ended, and the browser sent to the login page.
 * `/healthz` and `/metrics` answer only requests that did not come through a proxy (no
 * `X-Forwarded-For` or `X-Forwarded-Host`): the storefront is routed at `/`, and they are not
 * the public's.
 */
export function webApp({ pool, log, metrics, shop, sessions = createSessionStore({ pool, log }) }: WebDeps) {
  const app = createApp({ log, metrics, pool })
  const deps: PageDeps = { shop, sessions, log }

  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
      },
      referrerPolicy: 'same-origin',
      xFrameOptions: 'DENY',
    }),
  )
  serveAssets(app)
  app.use(sessionMiddleware(sessions))
  catalogPages(app, deps)
  accountPages(app, deps)
  cartPages(app, deps)
  orderPages(app, deps)
  adminPages(app, deps)

  // A browser asks for HTML and gets a page; any other client (the API's, a script) gets the
  // problem+json every function answers with, as does anything under /api/.
  const notFound = (c: Context) => {
    if (c.req.path.startsWith('/api/') || !/text\/html/.test(c.req.header('Accept') ?? '')) {
      return problemResponse(c, 404, `no route for ${c.req.method} ${c.req.path}`)
    }
    return render(c, <ErrorPage ctx={{ session: c.get('session'), path: c.req.path }} status={404} title="Page not found" message="There is nothing at this address. The product may have been taken out of the catalog." />, 404)
  }
  const onError = async (err: Error, c: Context) => {
    const ctx = { session: c.get('session'), path: c.req.path }
    if (err instanceof SignedOut) {
      // The access token was refused (it expired, or the account is gone): this session is over.
      const session = c.get('session')
      if (session) await sessions.end(session).catch((e: unknown) => log.warn('ending a session failed', { err: e }))
      clearSessionCookie(c)
      const next = c.req.method === 'GET' ? `?next=${encodeURIComponent(c.req.path + (new URL(c.req.url).search || ''))}` : ''
      return c.redirect(`/login${next}`, 303)
    }
    if (err instanceof HttpProblem && err.status === 403) return render(c, <ErrorPage ctx={ctx} status={403} title="Not for you" message="This page is for the shop’s admins." />, 403)
    if (err instanceof HttpProblem && err.status === 404) return render(c, <ErrorPage ctx={ctx} status={404} title="Page not found" message="There is nothing at this address." />, 404)
    if (err instanceof HttpProblem && err.status === 503) {
      log.warn('a function did not answer', { request_id: c.get('requestId'), path: c.req.path, err: err.cause ?? err })
      c.header('Retry-After', '2')
      return render(c, <ErrorPage ctx={ctx} status={503} title="The shop is busy" message="Part of the shop did not answer in time. Wait a moment and try again." />, 503)
    }
    log.error('unhandled error', { request_id: c.get('requestId'), method: c.req.method, path: c.req.path, err })
    return render(c, <ErrorPage ctx={ctx} status={500} title="Something went wrong" message="Something went wrong on our side. Try again; if it keeps happening, tell us." />, 500)
  }
  app.notFound(notFound)
  app.onError(onError)

  // /healthz and /metrics (from createApp) are for the cluster, not the public: the storefront is
  // routed at `/`, so they would otherwise be reachable through the ingress. Every proxy in front
  // (the ingress, Knative's) adds X-Forwarded-For; the readiness probe and Prometheus' scrape
  // reach the pod directly and do not.
  const outer = new Hono()
  // Their 404s get a request id like every other answer (the inner app's middleware does not run for them).
  outer.use('/healthz', requestId(), internalOnly)
  outer.use('/metrics', requestId(), internalOnly)
  outer.route('/', app)
  outer.notFound(notFound)
  outer.onError(onError)
  return outer
}

async function internalOnly(c: Context, next: () => Promise<void>) {
  if (c.req.header('X-Forwarded-For') !== undefined || c.req.header('X-Forwarded-Host') !== undefined) return c.notFound()
  await next()
}
