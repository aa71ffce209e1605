/**
 * @module
 * What a route's middleware tells the API description about the route: which part of the request
 * it validates and with which valibot schema (`validate`), who may call it (`requireUser`,
 * `requireAdmin`), which CloudEvent type and data schema an event route takes (`onEvent`). The
 * description (shared/openapi.ts, shared/asyncapi.ts) reads it from each app's routes, so the
 * document says what the route runs, not what someone remembered to write. Only a symbol and
 * types: every function's bundle carries this module, and it costs nothing there.
 */
import type { GenericSchema } from 'valibot'

/** The key under which a middleware carries its `RouteMeta`. */
export const routeMeta: unique symbol = Symbol.for('shop.route-meta')

/**
 * One fact about a route:
 * - `request`: the part of the request (`json` body, `query`, `param` path parameters, `header`)
 *   that the middleware checks with `schema`;
 * - `auth`: a Bearer token is required (`user`), and an admin's (`admin`);
 * - `event`: the route takes CloudEvents of `type` whose `data` this consumer checks with `schema`.
 */
export type RouteMeta =
  | { kind: 'request'; target: 'json' | 'query' | 'param' | 'header'; schema: GenericSchema }
  | { kind: 'auth'; role: 'user' | 'admin' }
  | { kind: 'event'; type: string; schema: GenericSchema }

/** `handler` with `meta` attached (the same function, returned for chaining). */
export function withRouteMeta<F extends object>(handler: F, meta: RouteMeta): F {
  return Object.assign(handler, { [routeMeta]: meta })
}

/** The `RouteMeta` a handler carries, if any. */
export function routeMetaOf(handler: unknown): RouteMeta | undefined {
  return (handler as { [routeMeta]?: RouteMeta } | null)?.[routeMeta]
}
