/**
 * An experiment, not the shop's code: Hono's bodyLimit reads `c.req.raw.body` on every request,
 * which makes @hono/node-server build a full undici Request (with an AbortController) even for a
 * GET. This variant decides from the Content-Length header when there is one (a GET has none) and
 * only counts bytes for chunked bodies. bench/run.mjs builds "experiment" bundles with it in place
 * of `hono/body-limit`, so that benchmark 1 shows what the change in shared/http.ts would buy.
 */
import type { MiddlewareHandler } from 'hono'
import { bodyLimit as honoBodyLimit } from 'hono/body-limit'

type Options = Parameters<typeof honoBodyLimit>[0]

export function bodyLimit(options: Options): MiddlewareHandler {
  const counting = honoBodyLimit(options)
  return async function bodyLimit(c, next) {
    if (c.req.header('transfer-encoding') !== undefined) return counting(c, next)
    const length = c.req.header('content-length')
    if (length === undefined || Number(length) <= options.maxSize) return next()
    return counting(c, next)
  }
}
