import { describe, expect, it } from 'vitest'
import type { Order, Payment } from './answers.ts'
import { evaluateInvariants, type Observed } from './invariants.ts'

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`
const P1 = uuid(901)
const P2 = uuid(902)
// Order n buys n units of P1, or of P2 when n is 3 or more.
const order = (n: number, status: Order['status'], paymentN?: number): Order => ({
  id: uuid(n),
  status,
  payment_id: paymentN ? uuid(paymentN) : null,
  items: [{ product_id: n >= 3 ? P2 : P1, quantity: n }],
})
const payment = (n: number, orderN: number, status: Payment['status']): Payment => ({ id: uuid(n), order_id: uuid(orderN), status })

/**
 * Two shoppers, three orders: paid (1 unit of P1), payment_failed (2 of P1, given back), paid (3
 * of P2), each with its one payment; the stock before and after agrees.
 */
function healthy(): Observed {
  return {
    placed: [
      { owner: 'a', id: uuid(1) },
      { owner: 'a', id: uuid(2) },
      { owner: 'b', id: uuid(3) },
    ],
    lists: [
      { owner: 'a', orders: [order(1, 'paid', 101), order(2, 'payment_failed', 102)], payments: [payment(101, 1, 'succeeded'), payment(102, 2, 'failed')] },
      { owner: 'b', orders: [order(3, 'paid', 103)], payments: [payment(103, 3, 'succeeded')] },
    ],
    paymentOf: new Map([
      [uuid(1), payment(101, 1, 'succeeded')],
      [uuid(2), payment(102, 2, 'failed')],
      [uuid(3), payment(103, 3, 'succeeded')],
    ]),
    requests: { total: 500, serverErrors: 0, unanswered: 0 },
    stock: { scanned: 8, seen: 300, negative: [], before: new Map([[P1, 10], [P2, 5]]), after: new Map([[P1, 9], [P2, 2], [uuid(903), 7]]) },
    settleLimitMs: 60_000,
    shoppers: { signedUp: 2, of: 2 },
  }
}

const judge = (o: Observed) => Object.fromEntries(evaluateInvariants(o).map((r) => [r.name, r]))
const failing = (o: Observed) => evaluateInvariants(o).filter((r) => !r.pass).map((r) => r.name)

describe('the invariants', () => {
  it('all hold for a healthy run, with counts', () => {
    const r = judge(healthy())
    expect(Object.values(r).every((i) => i.pass)).toBe(true)
    expect(r['every order final']).toMatchObject({ count: 3, detail: '3 of 3 orders paid, payment_failed, cancelled or expired within 60s of the end' })
    expect(r['no order pending after the settle time']!.detail).toBe('0 of 3 orders in the shoppers’ lists still pending after the settle time (up to 60s)')
    expect(r['stock is what it was less the units sold']!.detail).toBe('2 of 2 products at their stock before the run less the units of paid and pending orders')
    expect(r['one payment per order']!.count).toBe(3)
    expect(r['no 5xx answered']).toMatchObject({ count: 0, detail: '0 of 500 requests answered 5xx' })
    expect(r['stock never negative']!.detail).toContain('8 in the catalog after the run, 300 product answers during it')
    expect(r['one order per checkout']!.detail).toBe('3 orders in the shoppers’ lists, 3 placed, 0 made without an answer')
    expect(Object.keys(r)).toEqual([
      'every order final',
      'no order pending after the settle time',
      'one payment per order',
      'no charge kept for a cancelled or expired order',
      'no 5xx answered',
      'every request answered',
      'stock never negative',
      'stock is what it was less the units sold',
      'one order per checkout',
      'every shopper signed up',
    ])
  })

  it('hold for a run without orders', () => {
    const none = healthy()
    expect(failing({ ...none, placed: [], lists: [{ owner: 'a', orders: [], payments: [] }], paymentOf: new Map(), stock: { ...none.stock, after: none.stock.before } })).toEqual([])
  })

  it('fail when an order is still pending, or missing from its owner’s list', () => {
    const o = healthy()
    o.lists[0]!.orders![0] = order(1, 'pending')
    o.lists[1]!.orders = []
    const r = judge(o)['every order final']!
    expect(r.pass).toBe(false)
    expect(r.count).toBe(1)
    expect(r.examples).toEqual([`${uuid(1)}: still pending`, `${uuid(3)}: not in its owner’s list of orders`])
    // A pending order is not judged for its payment: the first invariant already says it.
    expect(judge(o)['one payment per order']).toMatchObject({ pass: true, count: 1 })
    expect(judge(o)['no order pending after the settle time']).toMatchObject({ pass: false, count: 1, examples: [`${uuid(1)} (a): still pending`] })
  })

  it('fail on an order still pending that no shopper was answered for', () => {
    const o = healthy()
    o.lists[1]!.orders!.push(order(4, 'pending'))
    expect(failing(o)).toEqual(['no order pending after the settle time', 'stock is what it was less the units sold', 'one order per checkout'])
    // Held, its units count as taken.
    o.stock.after = new Map([[P1, 9], [P2, -2]])
    expect(judge(o)['stock is what it was less the units sold']!.pass).toBe(true)
  })

  it('count a cancelled or expired order as final, its payment never charged, failed or refunded', () => {
    for (const [status, paid] of [['cancelled', 'cancelled'], ['expired', 'refunded'], ['cancelled', 'failed']] as const) {
      const o = healthy()
      o.lists[0]!.orders![0] = order(1, status, 101)
      o.lists[0]!.payments![0] = payment(101, 1, paid)
      o.paymentOf.set(uuid(1), payment(101, 1, paid))
      // Its unit came back.
      o.stock.after = new Map([[P1, 10], [P2, 2]])
      expect(failing(o), `${status} with a payment ${paid}`).toEqual([])
    }
  })

  it('fail on a cancelled or expired order whose payment succeeded and was not refunded', () => {
    const o = healthy()
    o.lists[1]!.orders![0] = order(3, 'expired', 103)
    o.stock.after = new Map([[P1, 9], [P2, 5]])
    const r = judge(o)['no charge kept for a cancelled or expired order']!
    expect(r).toMatchObject({ pass: false, count: 1, examples: [`${uuid(3)}: expired, its payment succeeded and was not refunded`] })
    expect(r.detail).toBe('1 of 1 cancelled or expired orders with a payment that succeeded and was not refunded')
    expect(failing(o)).toEqual(['no charge kept for a cancelled or expired order'])
  })

  it('fail when a product’s stock is not what it was less the units sold', () => {
    // Order 2 failed, but its 2 units of P1 never came back.
    const o = healthy()
    o.stock.after = new Map([[P1, 7], [P2, 2]])
    expect(judge(o)['stock is what it was less the units sold']).toMatchObject({
      pass: false,
      count: 1,
      examples: [`product ${P1}: stock 7, expected 10 before − 1 sold = 9`],
    })
    // A product gone from the catalog, and a catalog that could not be read.
    o.stock.after = new Map([[P1, 9]])
    expect(judge(o)['stock is what it was less the units sold']!.examples).toEqual([`product ${P2}: stock not in the catalog, expected 5 before − 3 sold = 2`])
    o.stock.after = undefined
    expect(judge(o)['stock is what it was less the units sold']).toMatchObject({ pass: false, detail: 'the catalog could not be read after the run' })
  })

  it('fail on two payments for one order, or none', () => {
    const two = healthy()
    two.lists[0]!.payments!.push(payment(104, 1, 'failed'))
    expect(judge(two)['one payment per order']!.examples).toEqual([`${uuid(1)}: 2 payments listed`])

    const none = healthy()
    none.lists[1]!.payments = []
    none.paymentOf.set(uuid(3), null)
    expect(judge(none)['one payment per order']).toMatchObject({ pass: false, count: 2, examples: [`${uuid(3)}: 0 payments listed`] })
  })

  it('fail when the payment’s status does not match the order’s', () => {
    const o = healthy()
    o.lists[0]!.payments![0] = payment(101, 1, 'failed')
    o.paymentOf.set(uuid(1), payment(101, 1, 'failed'))
    expect(judge(o)['one payment per order']!.examples).toEqual([`${uuid(1)}: order paid, payment failed`])
  })

  it('fail when the single payment is not the listed one, or not the order’s', () => {
    const other = healthy()
    other.paymentOf.set(uuid(2), payment(999, 2, 'failed'))
    expect(failing(other)).toEqual(['one payment per order'])

    const named = healthy()
    named.lists[0]!.orders![1] = order(2, 'payment_failed', 555)
    expect(judge(named)['one payment per order']!.examples[0]).toMatch(/names payment .*555, not/)

    const unanswered = healthy()
    unanswered.paymentOf.set(uuid(3), undefined)
    expect(judge(unanswered)['one payment per order']!.examples).toEqual([`${uuid(3)}: GET /api/payments/${uuid(3)} did not answer with a payment`])
  })

  it('fail on a payment for an order nobody placed', () => {
    const o = healthy()
    o.lists[1]!.payments!.push(payment(200, 77, 'succeeded'))
    const r = judge(o)['one payment per order']!
    expect(r.pass).toBe(false)
    expect(r.detail).toMatch(/1 payments for orders nobody placed/)
  })

  it('fail on any 5xx, and on any request without an answer', () => {
    expect(failing({ ...healthy(), requests: { total: 500, serverErrors: 1, unanswered: 0 } })).toEqual(['no 5xx answered'])
    expect(failing({ ...healthy(), requests: { total: 500, serverErrors: 0, unanswered: 2 } })).toEqual(['every request answered'])
  })

  it('fail on negative stock, and when the catalog could not be read', () => {
    const o = healthy()
    const r = judge({ ...o, stock: { ...o.stock, seen: 10, negative: [{ id: uuid(9), stock: -2 }] } })['stock never negative']!
    expect(r).toMatchObject({ pass: false, count: 1, examples: [`product ${uuid(9)} at stock -2`] })
    expect(failing({ ...o, stock: { ...o.stock, scanned: undefined, after: undefined } })).toEqual(['stock never negative', 'stock is what it was less the units sold'])
  })

  it('fail on an order made without an answer, or lists that could not be read', () => {
    const extra = healthy()
    extra.lists[1]!.orders!.push(order(4, 'payment_failed', 104))
    expect(judge(extra)['one order per checkout']).toMatchObject({ pass: false, count: 1, examples: [`order ${uuid(4)} (b) was made but never answered`] })

    const unread = healthy()
    unread.lists[1] = { owner: 'b', orders: undefined, payments: undefined }
    expect(failing(unread)).toEqual(['every order final', 'no order pending after the settle time', 'stock is what it was less the units sold', 'one order per checkout'])
  })

  it('fail when a shopper never got in', () => {
    expect(failing({ ...healthy(), shoppers: { signedUp: 1, of: 2 } })).toEqual(['every shopper signed up'])
  })

  it('keep at most 5 examples', () => {
    const o = healthy()
    o.placed = Array.from({ length: 20 }, (_, i) => ({ owner: 'a', id: uuid(1000 + i) }))
    expect(judge(o)['every order final']!.examples).toHaveLength(5)
  })
})
