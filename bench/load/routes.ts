/**
 * @module
 * Route templates: `GET /api/products/1b4e…` is counted as `GET /api/products/:id`, so that the
 * summary has one row per route the shop declares, not one per product.
 */

// The parameterised routes of the API (README's table), most specific first.
const TEMPLATES: [RegExp, string][] = [
  [/^\/api\/products\/[^/]+\/stock$/, '/api/products/:id/stock'],
  [/^\/api\/products\/[^/]+$/, '/api/products/:id'],
  [/^\/api\/cart\/items\/[^/]+$/, '/api/cart/items/:productId'],
  [/^\/api\/orders\/[^/]+\/cancel$/, '/api/orders/:id/cancel'],
  [/^\/api\/orders\/[^/]+$/, '/api/orders/:id'],
  [/^\/api\/payments\/[^/]+$/, '/api/payments/:orderId'],
]

// A path segment that names one thing rather than a route: a UUID or a number.
const ID_SEGMENT = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+)$/i

/** The path of a URL or path, without origin, query, fragment or trailing slash. */
export function pathOf(url: string): string {
  const path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/)[0]!
  const trimmed = path.replace(/\/+$/, '')
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`
}

/** `GET /api/products/:id` for `('get', 'http://host/api/products/1b4e…?x=1')`. */
export function routeOf(method: string, url: string): string {
  const path = pathOf(url)
  const known = TEMPLATES.find(([pattern]) => pattern.test(path))
  // Outside the API's table, ids are still folded, so that an unknown route cannot grow the summary without end.
  const template = known ? known[1] : path.split('/').map((s) => (ID_SEGMENT.test(s) ? ':id' : s)).join('/')
  return `${method.toUpperCase()} ${template || '/'}`
}
