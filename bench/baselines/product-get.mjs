// Baseline of benchmark 1: GET /api/products/:id with nothing but node:http and pg. The same
// query as the product function (a named prepared statement `product-get`, or unnamed with
// NAMED=off), the same pool size (DATABASE_POOL_MAX, default 5 like the functions), the same
// database and the same JSON; no request id, log, metrics or validation library.
//
//   PORT=8090 DATABASE_URL=postgres://… [DATABASE_POOL_MAX=5] [NAMED=off] node bench/baselines/product-get.mjs
import { createServer } from 'node:http'
import pg from 'pg'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DATABASE_POOL_MAX || 5) })
pool.on('error', () => {})
const named = process.env.NAMED !== 'off'
const text = 'SELECT id, name, description, price_cents, stock, created_at, updated_at FROM product.products WHERE id = $1'
const ROUTE = /^\/api\/products\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i

const send = (res, status, body) => {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

const server = createServer((req, res) => {
  if (req.url === '/healthz') return send(res, 200, '{"status":"ok"}')
  const match = req.method === 'GET' ? ROUTE.exec(req.url ?? '') : null
  if (!match) return send(res, 404, '{"title":"not found"}')
  pool.query(named ? { name: 'product-get', text, values: [match[1]] } : { text, values: [match[1]] }).then(
    ({ rows }) => (rows[0] ? send(res, 200, JSON.stringify(rows[0])) : send(res, 404, '{"title":"no such product"}')),
    () => send(res, 500, '{"title":"the database failed"}'),
  )
})
// As the functions do (shared/server.ts).
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT || 8090), process.env.HOST || '127.0.0.1')

// SIGTERM from the bench, or the bench gone (its IPC channel closed): stop either way.
const stop = () => {
  server.close()
  server.closeAllConnections()
  pool.end().finally(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('disconnect', stop)
