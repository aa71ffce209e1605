/**
 * @module
 * The shop's API documents, made from the functions themselves: each function's part of the
 * OpenAPI 3.1 description (its app's routes, described by its openapi.ts), the merged document of
 * the whole API, the AsyncAPI 3.0 description of the events (the producers' schemas of
 * `functions/<name>/messages.ts`, the consumers found on the apps' event routes), and the docs page
 * (Swagger UI, served from our own files: nothing from a CDN).
 *
 * build.mjs runs `writePublicFiles` for each function it bundles: the files land in
 * `dist/<name>/public/`, and the function serves them as they are (shared/public-files.ts):
 * - every function with a group: `GET /api/<group>/openapi.json`, its part;
 * - auth, too: `GET /api/openapi.json`, `GET /api/asyncapi.json` and `GET /api/docs`.
 * The apps are made here with inert dependencies: only their routes are read, never run.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Hono } from 'hono'
import { asyncApiDocument, eventConsumers } from '../shared/asyncapi.ts'
import type { PublicJwks, TokenVerifier } from '../shared/auth.ts'
import type { Pool } from '../shared/db.ts'
import type { Publisher } from '../shared/events.ts'
import { createLogger } from '../shared/log.ts'
import { createMetrics } from '../shared/metrics.ts'
import { describeRoutes, openApiDocument, type ApiDescription, type AppRoute, type Json } from '../shared/openapi.ts'
import type { ProductClient } from '../shared/product-client.ts'
import { authApp } from './auth/app.ts'
import { authApi } from './auth/openapi.ts'
import { cartApp } from './cart/app.ts'
import { cartApi } from './cart/openapi.ts'
import { functions } from './catalog.ts'
import { deadLetterApp } from './dead-letter/app.ts'
import { orderApp } from './order/app.ts'
import { ORDER_SOURCE, OrderCancelledData, OrderCreatedData, orderEventExamples } from './order/messages.ts'
import { orderApi } from './order/openapi.ts'
import { paymentApp } from './payment/app.ts'
import { PAYMENT_SOURCE, PaymentStatusData, paymentEventExamples } from './payment/messages.ts'
import { paymentApi } from './payment/openapi.ts'
import { productApp } from './product/app.ts'
import { productApi } from './product/openapi.ts'

/** The function that serves the merged documents and the docs page. */
export const DOCS_FUNCTION = 'auth'

const VERSION = '1.0.0'

/** Each function with public routes, by name: its part of the description. */
export const descriptions: Record<string, ApiDescription> = {
  auth: authApi,
  product: productApi,
  cart: cartApi,
  order: orderApi,
  payment: paymentApi,
}

// Never called: the apps are made only for their routes.
const inert = () => {
  throw new Error('an app made for its description was asked to run')
}

/**
 * The apps of the functions with API routes or event routes, made with dependencies that are never
 * used (no database, no broker, no keys), for their routes: name → `app.routes`. (api-docs.test.ts
 * checks that every function of the catalog with a group is here and described.)
 */
export function appRoutes(): Record<string, readonly AppRoute[]> {
  const common = { pool: {} as Pool, log: createLogger({ name: 'api-docs', level: 'silent' }), metrics: createMetrics({ defaults: false }) }
  const verify = inert as TokenVerifier
  const products = { get: inert, reserve: inert } as unknown as ProductClient
  const publish = inert as Publisher
  const apps: Record<string, Hono> = {
    auth: authApp({
      ...common,
      hasher: { hash: inert, verify: inert, close: async () => {} },
      signer: { ttlSeconds: 86_400, sign: inert },
      verify,
      jwks: { keys: [] } as unknown as PublicJwks,
    }),
    product: productApp({ ...common, verify, expirySweepIntervalMs: 0 }),
    cart: cartApp({ ...common, verify, products }),
    order: orderApp({ ...common, verify, products, publish }),
    payment: paymentApp({ ...common, verify, publish, successRate: 1, delayMs: 0 }),
    'dead-letter': deadLetterApp({ ...common, brokerUrls: {} }),
  }
  return Object.fromEntries(Object.entries(apps).map(([name, app]) => [name, app.routes]))
}

const info = (title: string, description: string) => ({ title, version: VERSION, description })

const WHOLE = `An e-commerce backend: accounts, a catalog with stock, carts, orders and their payments.

Every body is JSON. Every error is an RFC 9457 problem (\`application/problem+json\`): \`type\` (\`about:blank\`, or a URI under https://shop.example/problems/ that identifies it), \`title\`, \`status\`, \`detail\`, \`instance\` (the path), \`request_id\` (the \`X-Request-Id\` of the answer), and \`errors\` (\`[{path, message}]\`) naming each bad field of a 400 or 422. Every answer carries \`X-Request-Id\`. A 503 carries \`Retry-After\`: the database or a function was out of reach for a moment; retry. Sign in with \`POST /api/auth/login\` and send its token as \`Authorization: Bearer <token>\`.

The events the functions exchange are described by the AsyncAPI document at /api/asyncapi.json.`

/** The OpenAPI 3.1 document of one function's routes (`name` one of `descriptions`). */
export function openApiPart(name: string, routes = appRoutes()): Json {
  const api = descriptions[name]
  if (!api) throw new Error(`${name} has no public routes`)
  return openApiDocument({
    info: info(`Shop API: ${api.tag.name}`, `${api.tag.description}\n\nThe part of the shop's API that the ${name} function serves; /api/openapi.json describes all of it.`),
    parts: [describeRoutes(routes[name] ?? [], api)],
  })
}

/** The OpenAPI 3.1 document of the whole API: every function's part. */
export function openApiWhole(routes = appRoutes()): Json {
  return openApiDocument({
    info: info('Shop API', WHOLE),
    parts: Object.entries(descriptions).map(([name, api]) => describeRoutes(routes[name] ?? [], api)),
  })
}

/** The AsyncAPI 3.0 document of the events: what order and payment publish, and who takes it. */
export function asyncApiWhole(routes = appRoutes()): Json {
  return asyncApiDocument({
    info: info(
      'Shop events',
      'CloudEvents 1.0, delivered in HTTP binary content mode through two Knative Brokers backed by RabbitMQ. Each Trigger delivers one type to `POST /events/<type>` of one function, with retries, a backoff and the dead-letter sink. Consumers are idempotent per order: a redelivery, or an order announced again, changes nothing twice. Each consumer reads only what it needs, with a looser schema of its own: producers may add fields.',
    ),
    channels: [
      { name: 'orders', description: 'The Knative Broker `orders`: what the order function publishes (its SinkBinding gives it the Broker as `K_SINK`).' },
      { name: 'payments', description: 'The Knative Broker `payments`: what the payment function publishes.' },
    ],
    messages: [
      {
        type: 'order.created',
        source: ORDER_SOURCE,
        channel: 'orders',
        producer: 'order',
        summary: 'An order was placed; it is pending until its payment is decided.',
        description: 'Written in the transaction that places the order (an outbox) and published after the commit; published again, with the same data and a new id, while the order stays pending (`ORDER_REANNOUNCE_AFTER_S`).',
        data: OrderCreatedData,
        examples: { placed: orderEventExamples['order.created'] },
      },
      {
        type: 'order.cancelled',
        source: ORDER_SOURCE,
        channel: 'orders',
        producer: 'order',
        summary: 'A pending order was cancelled by its user, or expired.',
        description: 'Payment then never charges the order (or refunds it), product gives the units back, cart the lines.',
        data: OrderCancelledData,
        examples: { cancelled: orderEventExamples['order.cancelled'], expired: { ...orderEventExamples['order.cancelled'], reason: 'expired' } },
      },
      {
        type: 'payment.status',
        source: PAYMENT_SOURCE,
        channel: 'payments',
        producer: 'payment',
        summary: 'What became of an order’s payment: succeeded, failed, or refunded.',
        description: 'The outcome has the payment’s id as its event id; a refund (after a cancel of a paid order) an id of its own. A redelivery of order.created publishes the same event again.',
        data: PaymentStatusData,
        examples: {
          succeeded: paymentEventExamples['payment.status'],
          failed: { ...paymentEventExamples['payment.status'], status: 'failed', reason: 'card declined' },
          refunded: { ...paymentEventExamples['payment.status'], status: 'refunded', reason: 'order cancelled' },
        },
      },
    ],
    consumers: eventConsumers(routes),
  })
}

// Swagger UI's files, from the swagger-ui-dist package, as they are.
const SWAGGER_UI_FILES = ['swagger-ui-bundle.js', 'swagger-ui.css', 'favicon-32x32.png']

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Shop API</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
  <p style="font-family: sans-serif; margin: 1em 2em">The documents: <a href="/api/openapi.json">OpenAPI 3.1</a> (the HTTP API) and <a href="/api/asyncapi.json">AsyncAPI 3.0</a> (the events).</p>
  <div id="ui"></div>
  <script src="/api/docs/swagger-ui-bundle.js"></script>
  <script src="/api/docs/docs.js"></script>
</body>
</html>
`

// In a file of its own: the page's Content-Security-Policy allows no inline script.
const DOCS_SCRIPT = `window.ui = SwaggerUIBundle({
  url: '/api/openapi.json',
  dom_id: '#ui',
  deepLinking: true,
  // The default would ask validator.swagger.io to judge the document: nothing leaves this origin.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
})
`

const json = (doc: Json) => JSON.stringify(doc, null, 2) + '\n'

/**
 * Writes the public files of function `name` into `dir` (its `dist/<name>/public/`): its part of
 * the OpenAPI description at `api/<group>/openapi.json`, and for `DOCS_FUNCTION` the merged
 * documents and the docs page. A function without API routes gets none. Answers the URL paths
 * written.
 */
export async function writePublicFiles(name: string, dir: string, routes = appRoutes()): Promise<string[]> {
  const group = functions.find((f) => f.name === name)?.group
  if (!group || !descriptions[name]) return []
  const files: Record<string, string | { from: string }> = { [`api/${group}/openapi.json`]: json(openApiPart(name, routes)) }
  if (name === DOCS_FUNCTION) {
    files['api/openapi.json'] = json(openApiWhole(routes))
    files['api/asyncapi.json'] = json(asyncApiWhole(routes))
    files['api/docs/index.html'] = DOCS_PAGE
    files['api/docs/docs.js'] = DOCS_SCRIPT
    const swagger = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))
    for (const f of SWAGGER_UI_FILES) files[`api/docs/${f}`] = { from: join(swagger, f) }
  }
  for (const [path, content] of Object.entries(files)) {
    const to = join(dir, path)
    await mkdir(dirname(to), { recursive: true })
    if (typeof content === 'string') await writeFile(to, content)
    else await copyFile(content.from, to)
  }
  return Object.keys(files).map((p) => `/${p}`)
}
