/**
 * @module
 * Errors as RFC 9457 problem details. Code anywhere throws one of the helpers below;
 * `createApp`'s error handler renders it once as `application/problem+json`.
 */
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type {} from 'hono/request-id'
import type { ContentfulStatusCode } from 'hono/utils/http-status'

/** One problem with one input field, as listed in a 400's `errors`. */
export type FieldError = { path: string; message: string }

type ProblemOptions = {
  errors?: FieldError[]
  headers?: Record<string, string>
  cause?: unknown
}

/**
 * An HTTP error that knows how to render itself as problem details.
 *
 * @example
 * ```ts
 * throw new HttpProblem(409, 'stock would go below 0')
 * ```
 */
export class HttpProblem extends HTTPException {
  readonly errors: FieldError[] | undefined
  readonly headers: Record<string, string>

  constructor(status: ContentfulStatusCode, detail: string, { errors, headers = {}, cause }: ProblemOptions = {}) {
    super(status, { message: detail, cause })
    this.errors = errors
    this.headers = headers
  }
}

export const badRequest = (detail: string, errors?: FieldError[]) => new HttpProblem(400, detail, { errors })
export const unauthorized = (detail = 'a valid Bearer token is required') =>
  new HttpProblem(401, detail, { headers: { 'WWW-Authenticate': 'Bearer' } })
export const forbidden = (detail: string) => new HttpProblem(403, detail)
export const notFound = (what: string) => new HttpProblem(404, `${what} not found`)
export const conflict = (detail: string) => new HttpProblem(409, detail)
export const payloadTooLarge = (maxBytes: number) =>
  new HttpProblem(413, `the request body is larger than ${maxBytes} bytes`)
export const unsupportedMediaType = (expected: string) =>
  new HttpProblem(415, `the request body must be ${expected}`)
export const unprocessable = (detail: string, errors?: FieldError[]) => new HttpProblem(422, detail, { errors })
export const tooManyRequests = (detail: string, retryAfterSeconds: number) =>
  new HttpProblem(429, detail, { headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) } })
export const serviceUnavailable = (detail: string, cause?: unknown) => new HttpProblem(503, detail, { cause })

const titles: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Content Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Content',
  429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
}

/**
 * Renders problem details. `type` stays `about:blank`, so `title` is the status phrase and
 * `detail` says what went wrong with this request.
 */
export function problemResponse(
  c: Context,
  status: number,
  detail: string,
  { errors, headers = {} }: Pick<ProblemOptions, 'errors' | 'headers'> = {},
): Response {
  const body = {
    type: 'about:blank',
    title: titles[status] ?? 'Error',
    status,
    detail,
    instance: c.req.path,
    request_id: c.get('requestId'),
    ...(errors ? { errors } : {}),
  }
  return c.body(JSON.stringify(body), status as ContentfulStatusCode, {
    ...headers,
    'Content-Type': 'application/problem+json',
  })
}
