/**
 * @module
 * How the storefront talks to the other functions: over HTTP, through their public `/api` routes,
 * like any client (never their databases). Each function gets its own keep-alive connection pool
 * (a node:http Agent), so a page's calls cost requests on open sockets, not TCP handshakes.
 */
import { serviceUnavailable } from '../../shared/errors.ts'
import { agentTransport, fetchTransport, type RawAnswer, type Transport } from '../../shared/http-transport.ts'

/** The functions the storefront calls. */
export type Service = 'auth' | 'product' | 'cart' | 'order'

/** A function's answer: its status and its body, parsed when it was JSON (`undefined` otherwise, or when empty). */
export type Answer = { status: number; body: unknown }

type SendOptions = {
  /** The shopper's access token, sent as `Authorization: Bearer …`. */
  token?: string
  /** Sent as JSON. */
  body?: unknown
  headers?: Record<string, string>
}

/** Sends one request to one function; see `createApiClient`. */
export type ApiClient = (service: Service, method: string, path: string, options?: SendOptions) => Promise<Answer>

type ClientOptions = {
  /** Base URL of each function (`AUTH_URL`, `PRODUCT_URL`, `CART_URL`, `ORDER_URL`). */
  urls: Record<Service, string>
  /** Per call, in milliseconds (default 5,000). */
  timeoutMs?: number
  /** Sockets open at once to each function (default 64). */
  maxSockets?: number
  /** Tests hand a function's requests to its in-process app with this; unset, calls go over the keep-alive pools. */
  fetch?: Partial<Record<Service, typeof globalThis.fetch>>
}


/**
 * A client of the other functions' HTTP APIs. `send(service, method, path, { token, body, headers })`
 * resolves to every answer the function gives, 4xx and 5xx included (the caller decides what each
 * means); a network error or no answer within `timeoutMs` rejects with a 503 `HttpProblem`
 * ("… does not answer"), so the page fails with 503 and the shopper may try again.
 *
 * @example
 * ```ts
 * const send = createApiClient({ urls: { auth, product, cart, order } })
 * const { status, body } = await send('product', 'GET', '/api/products?limit=12')
 * ```
 */
export function createApiClient({ urls, timeoutMs = 5_000, maxSockets = 64, fetch = {} }: ClientOptions): ApiClient {
  const transports = Object.fromEntries(
    (Object.keys(urls) as Service[]).map((service) => {
      const viaFetch = fetch[service]
      return [service, viaFetch ? fetchTransport(urls[service], timeoutMs, viaFetch) : agentTransport(urls[service], { timeoutMs, maxSockets })]
    }),
  ) as Record<Service, Transport>

  return async (service, method, path, { token, body, headers = {} } = {}) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const all: Record<string, string> = {
      Accept: 'application/json',
      ...(payload === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...headers,
    }
    let raw: RawAnswer
    try {
      raw = await transports[service](method, path, all, payload)
    } catch (err) {
      throw serviceUnavailable(`the ${service} function does not answer; try again shortly`, err)
    }
    return { status: raw.status, body: /json/.test(raw.type) && raw.text ? parseJson(raw.text) : undefined }
  }
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
