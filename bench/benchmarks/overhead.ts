/**
 * Benchmark 1, function overhead: what the framework costs per request.
 * - `GET /api/products/:id` on the product bundle against bench/baselines/product-get.mjs (plain
 *   node:http + pg, the same named statement, pool size, database and JSON), and that baseline
 *   with unnamed statements: what named prepared statements buy on a hot read.
 * - A constant route behind the full middleware stack (bench/apps/trivial.ts) against a plain
 *   node:http hello world, and the same stack at LOG_LEVEL=warn: what the access log costs.
 */
import { inTurns, medianOf } from '../compare.ts'
import { functionEnv, startBundle, startNode, type BenchmarkResult, type Context } from '../context.ts'
import { failures, runLoad, type LoadResult } from '../http-load.ts'
import { goals, row, type Row } from '../report.ts'
import { ensureProducts, pick } from '../seed.ts'
import type { Server } from '../server.ts'

const B = '1 overhead'
const CONNECTIONS = 50
const POOL = '5'

export const show = (r: LoadResult) =>
  `${Math.round(r.rps)} req/s  p50 ${r.p50?.toFixed(2)} ms  p99 ${r.p99?.toFixed(2)} ms${r.cpuUs ? `  cpu ${Math.round(r.cpuUs)} µs/req` : ''}${failures(r) ? `  (${failures(r)})` : ''}`

export async function overhead(ctx: Context): Promise<BenchmarkResult> {
  const { options, say } = ctx
  const notes: string[] = []
  const rows: Row[] = []
  const products = await ensureProducts(ctx.db.pool, 1000)
  const load = (server: Server, path: () => string) => () =>
    runLoad({ url: server.url, connections: CONNECTIONS, durationS: options.durationS, warmupS: options.warmupS, next: () => ({ path: path() }), serverPid: server.pid })
  const randomProduct = () => `/api/products/${pick(products).id}`

  // Product reads.
  const fn = await startBundle(ctx, 'product', { DATABASE_POOL_MAX: POOL })
  const baseEnv = { DATABASE_URL: ctx.db.url, DATABASE_POOL_MAX: POOL }
  const plainNamed = await startNode(ctx, 'baseline-product-get', 'bench/baselines/product-get.mjs', { ...baseEnv, NAMED: 'on' })
  const plainUnnamed = await startNode(ctx, 'baseline-product-get-unnamed', 'bench/baselines/product-get.mjs', { ...baseEnv, NAMED: 'off' })
  await sameAnswer(randomProduct(), [fn, plainNamed, plainUnnamed])

  say(`  GET /api/products/:id, ${products.length} products, random ids, ${CONNECTIONS} connections, ${options.warmupS} s warm-up + ${options.durationS} s`)
  const reads = await inTurns(
    {
      'product bundle': load(fn, randomProduct),
      'node:http + pg, named': load(plainNamed, randomProduct),
      'node:http + pg, unnamed': load(plainUnnamed, randomProduct),
    },
    options.rounds,
    say,
    show,
  )
  for (const server of [fn, plainNamed, plainUnnamed]) await server.stop()

  const f = reads['product bundle']
  const b = reads['node:http + pg, named']
  rows.push(
    row({ benchmark: B, metric: 'GET /products/:id req/s: fn / http+pg', unit: 'req/s', subject: medianOf(f, (r) => r.rps), baseline: medianOf(b, (r) => r.rps), goal: goals.ratioAtLeast(0.9) }),
    row({ benchmark: B, metric: 'GET /products/:id p50: fn / http+pg', unit: 'ms', subject: medianOf(f, (r) => r.p50), baseline: medianOf(b, (r) => r.p50) }),
    row({ benchmark: B, metric: 'GET /products/:id p99: fn / http+pg', unit: 'ms', subject: medianOf(f, (r) => r.p99), baseline: medianOf(b, (r) => r.p99), goal: goals.ratioAtMost(1.5) }),
    row({ benchmark: B, metric: 'GET /products/:id server CPU/req: fn / http+pg', unit: 'µs', subject: medianOf(f, (r) => r.cpuUs), baseline: medianOf(b, (r) => r.cpuUs) }),
  )
  rows.push(
    row({
      benchmark: B,
      metric: 'http+pg req/s: named / unnamed stmt',
      unit: 'req/s',
      subject: medianOf(b, (r) => r.rps),
      baseline: medianOf(reads['node:http + pg, unnamed'], (r) => r.rps),
      goal: goals.ratioAtLeast(1.1),
    }),
  )
  notes.push(
    `1: subject = dist/product/index.mjs as deployed (NODE_ENV=production, LOG_LEVEL=info: one access-log line per request, to a file), pool ${POOL}; ` +
      `baseline = bench/baselines/product-get.mjs, plain node:http + pg with the same named statement product-get, pool ${POOL}, same database, same JSON (checked). ` +
      `${CONNECTIONS} connections, random ids of ${products.length} products.`,
  )

  // The middleware stack alone.
  const trivial = await startNode(ctx, 'trivial', 'dist/bench/apps/trivial.mjs', functionEnv(ctx))
  const quiet = await startNode(ctx, 'trivial-quiet', 'dist/bench/apps/trivial.mjs', functionEnv(ctx, { LOG_LEVEL: 'warn' }))
  const hello = await startNode(ctx, 'hello', 'bench/baselines/hello.mjs', {})
  await sameAnswer('/hello', [trivial, hello])
  say(`  a constant route: full middleware stack vs node:http, ${CONNECTIONS} connections`)
  const trivialRuns = await inTurns(
    {
      'stack, LOG_LEVEL=info': load(trivial, () => '/hello'),
      'node:http hello': load(hello, () => '/hello'),
      'stack, LOG_LEVEL=warn': load(quiet, () => '/hello'),
    },
    options.rounds,
    say,
    show,
  )
  for (const server of [trivial, quiet, hello]) await server.stop()
  const helloRps = medianOf(trivialRuns['node:http hello'], (r) => r.rps)
  rows.push(
    row({ benchmark: B, metric: 'constant route req/s: stack / node:http', unit: 'req/s', subject: medianOf(trivialRuns['stack, LOG_LEVEL=info'], (r) => r.rps), baseline: helloRps, goal: goals.ratioAtLeast(0.6) }),
    row({ benchmark: B, metric: 'same, access log off (LOG_LEVEL=warn)', unit: 'req/s', subject: medianOf(trivialRuns['stack, LOG_LEVEL=warn'], (r) => r.rps), baseline: helloRps }),
    row({ benchmark: B, metric: 'constant route p99: stack / node:http', unit: 'ms', subject: medianOf(trivialRuns['stack, LOG_LEVEL=info'], (r) => r.p99), baseline: medianOf(trivialRuns['node:http hello'], (r) => r.p99) }),
    row({ benchmark: B, metric: 'constant route server CPU/req: stack / node:http', unit: 'µs', subject: medianOf(trivialRuns['stack, LOG_LEVEL=info'], (r) => r.cpuUs), baseline: medianOf(trivialRuns['node:http hello'], (r) => r.cpuUs) }),
  )
  notes.push(
    '1: constant route = bench/apps/trivial.ts, createApp (request id, access log, metrics, 405s, body limit, errors) + startFunction, bundled like a function, answering {"status":"ok"}; ' +
      'baseline = bench/baselines/hello.mjs, plain node:http answering the same bytes. The LOG_LEVEL=warn row shows what the access-log line costs.',
    '1: CPU/req = the server process\'s user+system CPU time over the measured run ÷ requests answered (from /proc): steadier than req/s when other work shares the machine.',
  )

  for (const [what, runs] of [...Object.entries(reads), ...Object.entries(trivialRuns)]) {
    const bad = runs.map(failures).filter(Boolean)
    if (bad.length) notes.push(`1: ${what} had failed requests: ${bad.join('; ')}`)
  }
  return { rows, notes, raw: { reads, trivial: trivialRuns } }
}

/** The contenders must answer the same body, or the comparison is of different work. */
async function sameAnswer(path: string, servers: Server[]) {
  const bodies = await Promise.all(
    servers.map(async (s) => {
      const res = await fetch(`${s.url}${path}`)
      return { name: s.name, status: res.status, body: await res.text() }
    }),
  )
  const [first, ...rest] = bodies
  for (const other of rest) {
    if (other.status !== first!.status || other.body !== first!.body) {
      throw new Error(`${other.name} and ${first!.name} answer ${path} differently:\n  ${first!.status} ${first!.body}\n  ${other.status} ${other.body}`)
    }
  }
}
