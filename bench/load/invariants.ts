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
  /** The catalog read after the run (undefined: it could not be read), and what was seen during it. */
  stock: { scanned: number | undefined; seen: number; negative: { id: string; stock: number }[] }
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

// The payment's status each final order status goes with ('cancelled' keeps whatever the payment became).
const PAYMENT_FOR: Record<string, readonly string[]> = {
  paid: ['succeeded'],
  payment_failed: ['failed'],
  cancelled: ['pending', 'succeeded', 'failed'],
}

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
    `${finalCount} of ${o.placed.length} orders paid, payment_failed or cancelled within ${seconds} of the end`,
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
    else if (order.status !== 'cancelled' && order.payment_id !== single.id) wrong.push(`${id}: the order names payment ${order.payment_id ?? 'none'}, not ${single.id}`)
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

  return [everyFinal, onePayment, no5xx, answered, stock, perCheckout, signedUp]
}
