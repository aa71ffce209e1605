import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { serve } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { catalogFixture, type CatalogFixture } from '../test/product-fixture.ts'
import { call, testPool } from '../test/support.ts'
import { HttpProblem, ProblemTypes } from './errors.ts'
import { createProductClient } from './product-client.ts'

const pool = testPool()
let { catalog, admin } = {} as CatalogFixture
let server: Server
let baseUrl: string
/** TCP connections product accepted: what the keep-alive pool is meant to keep few. */
let connections = 0

beforeAll(async () => {
  ;({ catalog, admin } = await catalogFixture(pool))
  server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: catalog.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server))
  })
  server.on('connection', () => connections++)
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`
})
afterAll(() => new Promise((r) => server.close(r)))

const product = async (stock: number) =>
  (await call(catalog, 'POST', '/api/products', { token: admin, body: { name: `Jar ${randomUUID().slice(0, 6)}`, price_cents: 450, stock } })).json as { id: string; name: string }

/** A server that answers every request with this status and body. */
async function answering(status: number, body: string, contentType = 'application/json') {
  const s = createServer((_req: IncomingMessage, res: ServerResponse) => res.writeHead(status, { 'Content-Type': contentType }).end(body))
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(s.address() as { port: number }).port}`, close: () => new Promise((r) => s.close(r)) }
}

const rejection = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(HttpProblem)
  return err as HttpProblem
}

describe('createProductClient over node:http', () => {
  it('reuses one keep-alive connection for calls one after another', async () => {
    const products = createProductClient({ baseUrl })
    const p = await product(100)
    const before = connections
    for (let i = 0; i < 10; i++) {
      expect((await products.get(p.id))?.id).toBe(p.id)
      expect((await products.reserve(randomUUID(), randomUUID(), [{ product_id: p.id, quantity: 1 }])).items).toHaveLength(1)
    }
    expect(connections - before).toBe(1)
  })

  it('reserves all lines priced, and answers the same for the same order id', async () => {
    const products = createProductClient({ baseUrl })
    const [a, b] = [await product(5), await product(5)]
    const orderId = randomUUID()
    const userId = randomUUID()
    const lines = [{ product_id: a.id, quantity: 2 }, { product_id: b.id, quantity: 1 }]
    const first = await products.reserve(orderId, userId, lines)
    expect(first).toMatchObject({ order_id: orderId, status: 'held' })
    expect(first.items).toContainEqual({ product_id: a.id, name: a.name, quantity: 2, unit_price_cents: 450 })
    expect(await products.reserve(orderId, userId, lines)).toEqual(first)
    expect((await products.get(a.id))?.stock).toBe(3)
  })

  it('passes on out-of-stock with its unavailable lines, and unknown products with their errors', async () => {
    const products = createProductClient({ baseUrl })
    const p = await product(1)
    const short = await rejection(products.reserve(randomUUID(), randomUUID(), [{ product_id: p.id, quantity: 2 }]))
    expect(short.status).toBe(409)
    expect(short.type).toBe(ProblemTypes.outOfStock)
    expect(short.extensions).toEqual({ unavailable: [{ product_id: p.id, requested: 2, available: 1 }] })
    const missing = randomUUID()
    const unknown = await rejection(products.reserve(randomUUID(), randomUUID(), [{ product_id: missing, quantity: 1 }]))
    expect(unknown.status).toBe(422)
    expect(unknown.type).toBe(ProblemTypes.unknownProduct)
    expect(unknown.errors).toEqual([{ path: 'items.0.product_id', message: `no product ${missing}` }])
  })

  it('answers 503 when product is unreachable, fails, or answers something else', async () => {
    const closed = await answering(200, '{}')
    await closed.close()
    const servers = await Promise.all([
      answering(500, '{"title":"oops"}'),
      answering(400, '{"type":"about:blank","detail":"bad"}', 'application/problem+json'),
      answering(409, '{"type":"about:blank","detail":"no"}', 'application/problem+json'),
      answering(201, '<html>'),
      answering(201, '{"order_id":1}'),
    ])
    try {
      for (const url of [closed.url, ...servers.map((s) => s.url)]) {
        const products = createProductClient({ baseUrl: url })
        expect((await rejection(products.reserve(randomUUID(), randomUUID(), [{ product_id: randomUUID(), quantity: 1 }]))).status, url).toBe(503)
      }
    } finally {
      await Promise.all(servers.map((s) => s.close()))
    }
  })

  it('gives up after its timeout with a 503', async () => {
    const silent = createServer(() => {})
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    try {
      const products = createProductClient({ baseUrl: `http://127.0.0.1:${(silent.address() as { port: number }).port}`, timeoutMs: 100 })
      expect((await rejection(products.reserve(randomUUID(), randomUUID(), [{ product_id: randomUUID(), quantity: 1 }]))).status).toBe(503)
    } finally {
      silent.closeAllConnections()
      silent.close()
    }
  })
})
