/**
 * @module
 * The invariants a run must keep, judged from what was recorded: pure, so tests can hand it
 * made-up observations. Each gives PASS or FAIL with a count, and a few examples when it fails.
 */
import type { Order, Payment } from './answers.ts'
import { isFinal } from './order-book.ts'

export type Observed = {
  /** Orders the shoppers were answered for (201, or 200 for a replay). */
  placed: { owner: string; id: string }[]
  /** Each shopper's own lists after the run, as the shop gave them; undefined when a page could not be read. */
  lists: { owner: string; orders: Order[] | undefined; payments: Payment[] | undefined }[]
  /** GET /api/payments/:orderId for each placed order: the payment, null for a 404, undefined when not answered. */
  paymentOf: Map<string, Payment | null | undefined>
  requests: { total: number; serverErrors: number; unanswered: number }
  /**
   * Products in the catalog read after the run (undefined: it could not be read), product answers
   * seen during it, products ever seen below 0; the stock of each product the shoppers bought
   * from before the run, and the whole catalog's after it (undefined: it could not be read).
   */
  stock: {
    scanned: number | undefined
    seen: number
    negative: { id: string; stock: number }[]
    before: ReadonlyMap<string, number>
    after: ReadonlyMap<string, number> | undefined
  }
  /** How long orders were given to become final after the run. */
  settleLimitMs: number
  /** Shoppers that registered and logged in, of those started. */
  shoppers: { signedUp: number; of: number }
}

export type InvariantResult = {
  name: string
  pass: boolean
  /** How many things were found wrong, or (for the counting invariants) right. */
  count: number
  detail: string
  /** Up to 5 of the cases that broke it. */
  examples: string[]
}

// The payment's status each final order status goes with. A cancelled or expired order's payment
// was never charged, failed, or was refunded; one still succeeded is the charge-kept invariant's.
const PAYMENT_FOR: Record<string, readonly string[]> = {
  paid: ['succeeded'],
  payment_failed: ['failed'],
  cancelled: ['cancelled', 'failed', 'refunded', 'succeeded'],
  expired: ['cancelled', 'failed', 'refunded', 'succeeded'],
}

// Orders whose units stay taken: sold, or held while the order waits for its payment. The others
// (payment_failed, cancelled, expired) gave theirs back.
const HOLDS_UNITS = new Set(['paid', 'pending'])

/**
 * The stock each product of `before` should have now: its stock before the run less the units of
 * the shoppers' orders that keep them (paid, or still pending). Undefined when a shopper's orders
 * could not be read.
 */
export function expectedStock(before: ReadonlyMap<string, number>, lists: Observed['lists']): Map<string, number> | undefined {
  if (lists.some((l) => !l.orders)) return undefined
  const expected = new Map(before)
  for (const l of lists) {
    for (const order of l.orders ?? []) {
      if (!HOLDS_UNITS.has(order.status)) continue
      for (const line of order.items) {
        const left = expected.get(line.product_id)
        if (left !== undefined) expected.set(line.product_id, left - line.quantity)
      }
    }
  }
  return expected
}

/** Whether every product in `expected` has that stock in `actual`. */
export const stockMatches = (expected: ReadonlyMap<string, number>, actual: ReadonlyMap<string, number>) =>
  [...expected].every(([id, n]) => actual.get(id) === n)

const result = (name: string, pass: boolean, count: number, detail: string, examples: string[] = []): InvariantResult => ({
  name,
  pass,
  count,
  detail,
  examples: examples.slice(0, 5),
})

export function evaluateInvariants(o: Observed): InvariantResult[] {
  const listOf = new Map(o.lists.map((l) => [l.owner, l]))
  const orderOf = new Map<string, Order>()
  for (const l of o.lists) for (const order of l.orders ?? []) orderOf.set(order.id, order)
  const placedIds = new Set(o.placed.map((p) => p.id))

  // 1. Every order placed became final within the settle time.
  const notFinal: string[] = []
  for (const { owner, id } of o.placed) {
    const order = orderOf.get(id)
    if (!order) notFinal.push(`${id}: ${listOf.get(owner)?.orders ? 'not in its owner’s list of orders' : 'its owner’s orders could not be read'}`)
    else if (!isFinal(order.status)) notFinal.push(`${id}: still ${order.status}`)
  }
  const finalCount = o.placed.length - notFinal.length
  const seconds = `${Math.round(o.settleLimitMs / 100) / 10}s`
  const everyFinal = result(
    'every order final',
    notFinal.length === 0,
    finalCount,
    `${finalCount} of ${o.placed.length} orders paid, payment_failed, cancelled or expired within ${seconds} of the end`,
    notFinal,
  )

  // 2. Exactly one payment per order, its status matching the order's.
  const wrong: string[] = []
  const paymentsByOrder = new Map<string, Payment[]>()
  const orphans: string[] = []
  for (const l of o.lists) {
    for (const p of l.payments ?? []) {
      const same = paymentsByOrder.get(p.order_id)
      if (same) same.push(p)
      else paymentsByOrder.set(p.order_id, [p])
      if (!placedIds.has(p.order_id)) orphans.push(`payment ${p.id} is for order ${p.order_id}, which no shopper placed`)
    }
  }
  let judged = 0
  for (const { owner, id } of o.placed) {
    const order = orderOf.get(id)
    if (!order || !isFinal(order.status)) continue // already counted by the first invariant
    judged += 1
    if (!listOf.get(owner)?.payments) {
      wrong.push(`${id}: its owner’s payments could not be read`)
      continue
    }
    const listed = paymentsByOrder.get(id) ?? []
    const single = o.paymentOf.get(id)
    if (listed.length !== 1) wrong.push(`${id}: ${listed.length} payments listed`)
    else if (single === undefined) wrong.push(`${id}: GET /api/payments/${id} did not answer with a payment`)
    else if (single === null) wrong.push(`${id}: GET /api/payments/${id} answered 404`)
    else if (single.id !== listed[0]!.id) wrong.push(`${id}: the payment listed (${listed[0]!.id}) is not the one answered (${single.id})`)
    else if (!PAYMENT_FOR[order.status]!.includes(single.status)) wrong.push(`${id}: order ${order.status}, payment ${single.status}`)
    else if ((order.status === 'paid' || order.status === 'payment_failed') && order.payment_id !== single.id) wrong.push(`${id}: the order names payment ${order.payment_id ?? 'none'}, not ${single.id}`)
  }
  const onePayment = result(
    'one payment per order',
    wrong.length === 0 && orphans.length === 0,
    judged - wrong.length,
    `${judged - wrong.length} of ${judged} final orders with exactly one payment in a matching status (paid ↔ succeeded, payment_failed ↔ failed)` +
      (orphans.length ? `; ${orphans.length} payments for orders nobody placed` : ''),
    [...wrong, ...orphans],
  )

  // 3. and 4. The shop answered every request, and never with a 5xx.
  const no5xx = result('no 5xx answered', o.requests.serverErrors === 0, o.requests.serverErrors, `${o.requests.serverErrors} of ${o.requests.total} requests answered 5xx`)
  const answered = result(
    'every request answered',
    o.requests.unanswered === 0,
    o.requests.unanswered,
    `${o.requests.unanswered} of ${o.requests.total} requests got no answer (refused, reset or timed out)`,
  )

  // 5. Stock never below 0, in the catalog after the run or in any answer during it.
  const negative = o.stock.negative.map((n) => `product ${n.id} at stock ${n.stock}`)
  const stock = result(
    'stock never negative',
    o.stock.scanned !== undefined && negative.length === 0,
    negative.length,
    o.stock.scanned === undefined
      ? 'the catalog could not be read after the run'
      : `${negative.length} products below 0 (${o.stock.scanned} in the catalog after the run, ${o.stock.seen} product answers during it)`,
    negative,
  )

  // 6. The shop made one order per checkout: none that no shopper was answered for (Idempotency-Key).
  const unread = o.lists.filter((l) => !l.orders).length
  const extra = o.lists.flatMap((l) => (l.orders ?? []).filter((order) => !placedIds.has(order.id)).map((order) => `order ${order.id} (${l.owner}) was made but never answered`))
  const listedCount = o.lists.reduce((n, l) => n + (l.orders?.length ?? 0), 0)
  const perCheckout = result(
    'one order per checkout',
    extra.length === 0 && unread === 0,
    extra.length,
    unread
      ? `the orders of ${unread} shoppers could not be read`
      : `${listedCount} orders in the shoppers’ lists, ${o.placed.length} placed, ${extra.length} made without an answer`,
    extra,
  )

  // Not about the shop's data, but a shopper that never got in would quietly shrink the load.
  const signedUp = result(
    'every shopper signed up',
    o.shoppers.signedUp === o.shoppers.of,
    o.shoppers.signedUp,
    `${o.shoppers.signedUp} of ${o.shoppers.of} shoppers registered and logged in`,
  )

  // 8. Nothing the shop holds for the shoppers is still pending: the orders answered, and those
  // made without an answer too, which the first invariant cannot see.
  const allOrders = o.lists.flatMap((l) => (l.orders ?? []).map((order) => ({ owner: l.owner, order })))
  const stillPending = allOrders.filter(({ order }) => order.status === 'pending').map(({ order, owner }) => `${order.id} (${owner}): still pending`)
  const nonePending = result(
    'no order pending after the settle time',
    stillPending.length === 0 && unread === 0,
    stillPending.length,
    unread
      ? `the orders of ${unread} shoppers could not be read`
      : `${stillPending.length} of ${allOrders.length} orders in the shoppers’ lists still pending after the settle time (up to ${seconds})`,
    stillPending,
  )

  // 9. A cancelled or expired order is never charged for good: its payment was never charged,
  // failed, or was refunded.
  const undone = allOrders.filter(({ order }) => order.status === 'cancelled' || order.status === 'expired')
  const charged = undone.flatMap(({ order }) => {
    const payments = [...(paymentsByOrder.get(order.id) ?? []), ...[o.paymentOf.get(order.id)].filter((p): p is Payment => Boolean(p))]
    return payments.some((p) => p.status === 'succeeded') ? [`${order.id}: ${order.status}, its payment succeeded and was not refunded`] : []
  })
  const notCharged = result(
    'no charge kept for a cancelled or expired order',
    charged.length === 0,
    charged.length,
    `${charged.length} of ${undone.length} cancelled or expired orders with a payment that succeeded and was not refunded`,
    charged,
  )

  // 10. The stock is what it was before the run less the units sold (and held by orders still
  // pending): a unit given back twice, or never, shows here. Assumes the shoppers are the only
  // ones buying these products during the run.
  const expected = expectedStock(o.stock.before, o.lists)
  const after = o.stock.after
  const off = expected && after ? [...expected].filter(([id, n]) => after.get(id) !== n) : []
  const offExamples = off.map(([id, n]) => {
    const now = after?.get(id)
    const before = o.stock.before.get(id)!
    return `product ${id}: stock ${now ?? 'not in the catalog'}, expected ${before} before − ${before - n} sold = ${n}`
  })
  const stockSold = result(
    'stock is what it was less the units sold',
    expected !== undefined && after !== undefined && off.length === 0,
    off.length,
    !expected
      ? 'the orders of some shoppers could not be read'
      : !after
        ? 'the catalog could not be read after the run'
        : `${expected.size - off.length} of ${expected.size} products at their stock before the run less the units of paid and pending orders`,
    offExamples,
  )

  return [everyFinal, nonePending, onePayment, notCharged, no5xx, answered, stock, stockSold, perCheckout, signedUp]
}
