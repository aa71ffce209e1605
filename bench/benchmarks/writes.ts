/**
 * Benchmark 2, writes: `POST /api/cart/items` (cart bundle, which asks the product bundle about
 * the product) and `POST /api/orders` (order bundle: product lookups, a transaction with the
 * outbox row, a publish to a loopback sink that answers 202 as a broker's ingress does). There is
 * no baseline that does the same work; they are measured in turns with the read path of
 * benchmark 1 (`GET /api/products/:id`) as a yardstick, and no goal is set.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { inTurns, medianOf } from '../compare.ts'
import { startBundle, type BenchmarkResult, type Context } from '../context.ts'
import { failures, runLoad } from '../http-load.ts'
import { row, type Row } from '../report.ts'
import { ensureProducts, pick } from '../seed.ts'
import { show } from './overhead.ts'

const B = '2 writes'
const CONNECTIONS = 50
const USERS = 500

export async function writes(ctx: Context): Promise<BenchmarkResult> {
  const { options, say } = ctx
  const products = await ensureProducts(ctx.db.pool, 1000)
  const users = await ctx.keys.users(USERS)
  const sink = await startSink(ctx)

  const product = await startBundle(ctx, 'product')
  const cart = await startBundle(ctx, 'cart', { PRODUCT_URL: product.url })
  const order = await startBundle(ctx, 'order', { PRODUCT_URL: product.url, K_SINK: sink.url })

  const json = { 'Content-Type': 'application/json' }
  const auth = () => ({ ...json, Authorization: `Bearer ${pick(users).token}` })
  const common = { connections: CONNECTIONS, durationS: options.durationS, warmupS: options.warmupS }
  say(`  ${USERS} users with tokens, ${products.length} products, ${CONNECTIONS} connections; orders publish to a loopback sink answering 202`)
  const runs = await inTurns(
    {
      'POST /api/cart/items': () =>
        runLoad({
          ...common,
          url: cart.url,
          serverPid: cart.pid,
          request: { method: 'POST', path: '/api/cart/items' },
          next: () => ({ headers: auth(), body: JSON.stringify({ product_id: pick(products).id, quantity: 1 }) }),
        }),
      'POST /api/orders': () =>
        runLoad({
          ...common,
          url: order.url,
          serverPid: order.pid,
          request: { method: 'POST', path: '/api/orders' },
          next: () => ({
            headers: auth(),
            body: JSON.stringify({ items: [{ product_id: pick(products).id, quantity: 1 }, { product_id: pick(products).id, quantity: 2 }] }),
          }),
        }),
      'GET /api/products/:id (read path)': () =>
        runLoad({ ...common, url: product.url, serverPid: product.pid, next: () => ({ path: `/api/products/${pick(products).id}` }) }),
    },
    options.rounds,
    say,
    show,
  )
  const published = sink.count()
  for (const server of [order, cart, product]) await server.stop()
  await sink.close()

  const read = runs['GET /api/products/:id (read path)']
  const rows: Row[] = []
  for (const route of ['POST /api/cart/items', 'POST /api/orders'] as const) {
    const r = runs[route]
    const path = route.replace('/api', '')
    rows.push(
      row({ benchmark: B, metric: `${path} req/s (vs GET /products/:id)`, unit: 'req/s', subject: medianOf(r, (x) => x.rps), baseline: medianOf(read, (x) => x.rps) }),
      row({ benchmark: B, metric: `${path} p99 (vs GET /products/:id)`, unit: 'ms', subject: medianOf(r, (x) => x.p99), baseline: medianOf(read, (x) => x.p99) }),
      row({ benchmark: B, metric: `${path} server CPU/req (vs GET)`, unit: 'µs', subject: medianOf(r, (x) => x.cpuUs), baseline: medianOf(read, (x) => x.cpuUs) }),
    )
  }
  const notes = [
    `2: no baseline does the same work, so no ratio goal: the baseline column is the read path (GET /api/products/:id on the product bundle) measured in the same turns, as a yardstick. ` +
      `${CONNECTIONS} connections, tokens of ${USERS} users; cart lines of 1, orders of 2 lines. The product bundle serves the cart's and order's product lookups during those runs too (all servers share the server core). ` +
      `${published} order.created events reached the sink.`,
  ]
  for (const [what, rs] of Object.entries(runs)) {
    const bad = rs.map(failures).filter(Boolean)
    if (bad.length) notes.push(`2: ${what} had failed requests: ${bad.join('; ')}`)
  }
  return { rows, notes, raw: { runs, published } }
}

/** A broker ingress stand-in on loopback: takes any event with 202, counts them. */
async function startSink(ctx: Context) {
  let count = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      count++
      res.writeHead(202).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const close = ctx.cleanup.add('close the event sink', () => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, count: () => count, close }
}
