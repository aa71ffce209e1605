/**
 * @module
 * Errors as RFC 9457 problem details. Code anywhere throws one of the helpers below;
 * `createApp`'s error handler renders it once as `application/problem+json`.
 */
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type {} from 'hono/request-id'
import type { ContentfulStatusCode } from 'hono/utils/http-status'

/** One problem with one input field, as listed in a 400's or 422's `errors`: `path` like `items.0.quantity`, `message` in words. */
export type FieldError = { path: string; message: string }

/**
 * A problem type of this API: its URI (the problem's `type`) and the short summary that goes with
 * it (`title`). Problems without one are `about:blank`, titled by their status phrase.
 */
export type ProblemType = { type: string; title: string }

/**
 * The prefix of the shop's problem type URIs (`…/problems/out-of-stock`); clients compare the whole
 * `type`. Under the reserved `.example` domain: the URIs identify a type, they are not pages to
 * fetch (RFC 9457 3.1.1). Change it here when the shop documents its problems at a real address.
 */
export const PROBLEM_TYPE_BASE = 'https://shop.example/problems/'

const problemType = (slug: string, title: string): ProblemType => ({ type: `${PROBLEM_TYPE_BASE}${slug}`, title })

/** The problem types the shop's routes answer with, beyond the plain status codes. */
export const ProblemTypes = {
  /** 409: a line asks for more units than are left; extension `unavailable` lists every such line. */
  outOfStock: problemType('out-of-stock', 'Out of Stock'),
  /** 422: a line names a product that does not exist; `errors` names each one. */
  unknownProduct: problemType('unknown-product', 'Unknown Product'),
  /** 409: the reservation of this order was released already (cancelled, failed, expired): it takes nothing again. */
  reservationReleased: problemType('reservation-released', 'Reservation Released'),
  /** 422: a reservation for this order exists with other lines or another user. */
  reservationMismatch: problemType('reservation-mismatch', 'Reservation Mismatch'),
} as const

/** One line an order cannot have: the units it asked for and the units left, both whole units. */
export type Unavailable = { product_id: string; requested: number; available: number }

type ProblemOptions = {
  errors?: FieldError[]
  headers?: Record<string, string>
  cause?: unknown
  /** Absent: `about:blank`. */
  type?: ProblemType
  /** Extension members of this problem type (RFC 9457 3.2), e.g. `unavailable`. */
  extensions?: Record<string, unknown>
}

/**
 * An HTTP error that knows how to render itself as problem details (RFC 9457): `status` the HTTP
 * status, `detail` (its `message`) what went wrong with this request, `errors` the bad fields,
 * `headers` sent with it (`WWW-Authenticate`, `Retry-After`), `cause` logged, never sent.
 *
 * @example
 * ```ts
 * throw new HttpProblem(409, 'stock would go below 0')
 * ```
 */
export class HttpProblem extends HTTPException {
  readonly errors: FieldError[] | undefined
  readonly headers: Record<string, string>
  readonly type: ProblemType | undefined
  readonly extensions: Record<string, unknown> | undefined

  constructor(status: ContentfulStatusCode, detail: string, { errors, headers = {}, cause, type, extensions }: ProblemOptions = {}) {
    super(status, { message: detail, cause })
    this.errors = errors
    this.headers = headers
    this.type = type
    this.extensions = extensions
  }
}

/** 400: the request is malformed; `errors` lists the bad fields. */
export const badRequest = (detail: string, errors?: FieldError[]) => new HttpProblem(400, detail, { errors })
/** 401 with `WWW-Authenticate: Bearer` (RFC 6750): no valid token. */
export const unauthorized = (detail = 'a valid Bearer token is required') =>
  new HttpProblem(401, detail, { headers: { 'WWW-Authenticate': 'Bearer' } })
/** 403: signed in, but not allowed this. */
export const forbidden = (detail: string) => new HttpProblem(403, detail)
/** 404, detail "<what> not found" (`what`: `'product'`, `'order'`, …). */
export const notFound = (what: string) => new HttpProblem(404, `${what} not found`)
/** 409: the request clashes with the current state (an email taken, stock below 0, an order no longer pending). */
export const conflict = (detail: string) => new HttpProblem(409, detail)
/**
 * 413: the body is over `maxBytes` bytes. Not `Connection: close`: Node would then close the socket
 * at once with the rest of the body unread, and the reset that follows can destroy the 413 itself
 * before the client (or the ingress) reads it.
 */
export const payloadTooLarge = (maxBytes: number) =>
  new HttpProblem(413, `the request body is larger than ${maxBytes} bytes`)
/** 415: the body is not of the `expected` media type (`'application/json'`). */
export const unsupportedMediaType = (expected: string) =>
  new HttpProblem(415, `the request body must be ${expected}`)
/** 422: well-formed, but it cannot be done as asked (an unknown product); `errors` lists the fields. */
export const unprocessable = (detail: string, errors?: FieldError[]) => new HttpProblem(422, detail, { errors })
/** 429 with `Retry-After` in whole seconds (at least 1, rounded up from `retryAfterSeconds`). */
export const tooManyRequests = (detail: string, retryAfterSeconds: number) =>
  new HttpProblem(429, detail, { headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) } })
/**
 * Seconds a 503 asks the client (or the broker) to wait before trying again: `Retry-After` on every
 * 503 problem. Short, because what makes a 503 here (the database or the product function out of
 * reach, a backend terminated) is usually over in seconds, and the retry is cheap.
 */
export const RETRY_AFTER_SECONDS = 2

/** 503 with `Retry-After`: a dependency (the database, the product function) did not answer; `cause` is logged. */
export const serviceUnavailable = (detail: string, cause?: unknown) =>
  new HttpProblem(503, detail, { cause, headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) } })
/**
 * 503 with `Retry-After`: the database cannot be reached now (see `isDatabaseUnavailable` in db.ts).
 * `cause` is the database's error, logged, never sent.
 */
export const databaseUnavailable = (cause?: unknown) => serviceUnavailable('the database cannot be reached now; retry shortly', cause)

/** 409 `…/out-of-stock`: nothing was taken; `unavailable` lists every line that is short. */
export const outOfStock = (unavailable: Unavailable[]) =>
  new HttpProblem(409, `not enough stock for ${unavailable.length === 1 ? '1 line' : `${unavailable.length} lines`}; nothing was taken`, {
    type: ProblemTypes.outOfStock,
    extensions: { unavailable },
  })
/** 422 `…/unknown-product`: `errors` has one entry per line whose product does not exist. */
export const unknownProduct = (errors: FieldError[]) =>
  new HttpProblem(422, 'the order names products that do not exist', { type: ProblemTypes.unknownProduct, errors })
/** 409 `…/reservation-released`. */
export const reservationReleased = (detail: string) => new HttpProblem(409, detail, { type: ProblemTypes.reservationReleased })
/** 422 `…/reservation-mismatch`. */
export const reservationMismatch = (detail: string) => new HttpProblem(422, detail, { type: ProblemTypes.reservationMismatch })

const titles: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Content Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Content',
  429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
}

/**
 * Renders problem details (RFC 9457) as `application/problem+json`: `{ type, title, status,
 * detail, instance, request_id, errors? }` plus a problem's extension members (which never replace
 * the standard ones). Without a problem `type` it is `about:blank`, so `title` is the status phrase;
 * `detail` says what went wrong with this request; `instance` is the request path and
 * `request_id` the `X-Request-Id` it was served under. A 503 always carries `Retry-After`
 * (`RETRY_AFTER_SECONDS` unless `headers` has one): clients, proxies and the broker retry it.
 */
export function problemResponse(
  c: Context,
  status: number,
  detail: string,
  { errors, headers = {}, type, extensions }: Pick<ProblemOptions, 'errors' | 'headers' | 'type' | 'extensions'> = {},
): Response {
  const body = {
    ...extensions,
    type: type?.type ?? 'about:blank',
    title: type?.title ?? titles[status] ?? 'Error',
    status,
    detail,
    instance: c.req.path,
    request_id: c.get('requestId'),
    ...(errors ? { errors } : {}),
  }
  return c.body(JSON.stringify(body), status as ContentfulStatusCode, {
    ...(status === 503 ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {}),
    ...headers,
    'Content-Type': 'application/problem+json',
  })
}
