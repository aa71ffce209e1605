/**
 * @module
 * One load run against a shop's base URL: read the catalog, let the shoppers loose until the
 * deadline, wait for their orders to settle, read everything back, judge the invariants. Takes
 * values only (main.ts reads the command line and the environment), so the test runs it as is.
 */
import { randomBytes } from 'node:crypto'
import { loadCatalog } from './catalog.ts'
import { createClient } from './client.ts'
import { evaluateInvariants, expectedStock } from './invariants.ts'
import { createOrderBook } from './order-book.ts'
import { loadLine, type Progress } from './progress.ts'
import type { Random } from './random.ts'
import { createRecorder } from './recorder.ts'
import { readBack, settleOrders, settleStock } from './after-run.ts'
import { runShopper, type Shopper } from './shopper.ts'
import { createStockWatch } from './stock.ts'
import type { Summary } from './summary.ts'

export type RunOptions = {
  /** The shop's base URL (its ingress), without a trailing slash. */
  target: string
  users: number
  durationMs: number
  /** How long to wait after the run for orders to become final. */
  settleMs: number
  /** Used only to add products to an empty catalog. */
  admin?: { email: string; password: string }
  random?: Random
  /** The longest think time between a shopper's actions (default 50 ms). */
  thinkMs?: number
  /** Per request (default 30 s): one hung request must not hold the run past its bounds for long. */
  timeoutMs?: number
  /** Makes the progress line from its renderer; none when unset. */
  progress?: (render: () => string) => Progress
  /**
   * The products to buy (default: the catalog's first 1,000). The stock invariant takes the
   * shoppers for the only buyers of what they buy: on a shop that others use meanwhile, give the
   * run products of its own.
   */
  productIds?: readonly string[]
}

// The stock may follow the last final order by a moment: waited for this long at least.
const STOCK_SETTLE_MIN_MS = 5_000

export async function runLoad(o: RunOptions): Promise<Summary> {
  const load = createRecorder()
  const checks = createRecorder()
  const timeoutMs = o.timeoutMs ?? 30_000
  const api = createClient({ base: o.target, recorder: load, timeoutMs })
  const checkApi = createClient({ base: o.target, recorder: checks, timeoutMs })
  const catalog = await loadCatalog(checkApi, o.admin, o.productIds)

  const book = createOrderBook()
  const stock = createStockWatch()
  const startedAt = new Date()
  const started = performance.now()
  let phase = 'load  '
  const progress = o.progress?.(
    loadLine(() => ({
      phase,
      elapsedMs: performance.now() - started,
      requests: load.totals.requests + checks.totals.requests,
      errors: load.totals.errors + checks.totals.errors,
      placed: book.placed,
      final: book.final,
    })),
  )
  progress?.start()

  let shoppers: Shopper[]
  let loadMs: number
  let settledMs: number
  try {
    const ctx = {
      api,
      catalog,
      book,
      stock,
      random: o.random ?? Math.random,
      thinkMs: o.thinkMs ?? 50,
      deadline: Date.now() + o.durationMs,
      runId: randomBytes(4).toString('hex'),
    }
    const ran = await Promise.all(Array.from({ length: o.users }, (_, i) => runShopper(i + 1, ctx)))
    loadMs = performance.now() - started
    shoppers = ran.filter((s): s is Shopper => s !== undefined)
    phase = 'settle'
    settledMs = await settleOrders(checkApi, shoppers, book, o.settleMs)
  } finally {
    progress?.stop()
  }

  const back = await readBack(checkApi, shoppers, book)
  // The lists are the last word on each order's status.
  for (const l of back.lists) for (const order of l.orders ?? []) book.update(l.owner, order.id, order.status)
  const stockAfter = await settleStock(checkApi, expectedStock(catalog.stock, back.lists), back.stock, Date.now() + Math.max(o.settleMs - settledMs, STOCK_SETTLE_MIN_MS))
  const negativeAfter = [...(stockAfter ?? [])].filter(([, n]) => n < 0).map(([id, n]) => ({ id, stock: n }))

  const all = { total: load.totals.requests + checks.totals.requests, serverErrors: load.totals.serverErrors + checks.totals.serverErrors, unanswered: load.totals.unanswered + checks.totals.unanswered }
  const invariants = evaluateInvariants({
    placed: book.all(),
    lists: back.lists,
    paymentOf: back.paymentOf,
    requests: all,
    stock: { scanned: stockAfter?.size, seen: stock.seen, negative: [...stock.negative(), ...negativeAfter], before: catalog.stock, after: stockAfter },
    settleLimitMs: o.settleMs,
    shoppers: { signedUp: shoppers.length, of: o.users },
  })

  return {
    target: o.target,
    started_at: startedAt.toISOString(),
    users: o.users,
    duration_s: o.durationMs / 1000,
    load: {
      elapsed_s: loadMs / 1000,
      requests: load.totals.requests,
      errors: load.totals.errors,
      requests_per_s: load.totals.requests / (loadMs / 1000),
      latency_ms: load.latency(),
      routes: load.routes(),
      error_examples: [...load.examples],
    },
    checks: { requests: checks.totals.requests, errors: checks.totals.errors, routes: checks.routes(), error_examples: [...checks.examples] },
    orders: { placed: book.placed, by_status: book.byStatus(), settled_s: settledMs / 1000, settle_limit_s: o.settleMs / 1000 },
    invariants,
    passed: invariants.every((i) => i.pass),
  }
}
