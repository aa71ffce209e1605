/**
 * @module
 * The orders the shoppers placed, by shopper, with the last status each was seen in: what the
 * progress line counts and what the invariants check against the shop's own lists.
 */
import { FINAL_STATUSES, type OrderStatus } from './answers.ts'

export type PlacedOrder = { owner: string; id: string; status: OrderStatus }

export type OrderBook = ReturnType<typeof createOrderBook>

const STATUS_ORDER = ['paid', 'payment_failed', 'cancelled', 'expired', 'pending']
const rank = (status: string) => (STATUS_ORDER.includes(status) ? STATUS_ORDER.indexOf(status) : STATUS_ORDER.length)

export const isFinal = (status: string) => (FINAL_STATUSES as readonly string[]).includes(status)

export function createOrderBook() {
  const byOwner = new Map<string, Map<string, OrderStatus>>()
  let placed = 0
  let final = 0

  const ordersOf = (owner: string) => {
    let orders = byOwner.get(owner)
    if (!orders) byOwner.set(owner, (orders = new Map()))
    return orders
  }

  return {
    /** An order a shopper was answered 201 (or 200, a replay) for. Placing the same id again changes nothing. */
    place(owner: string, id: string, status: OrderStatus) {
      const orders = ordersOf(owner)
      if (orders.has(id)) return
      orders.set(id, status)
      placed += 1
      if (isFinal(status)) final += 1
    },
    /** A status seen later; orders never go back from final, so only the first final one counts. */
    update(owner: string, id: string, status: OrderStatus) {
      const orders = byOwner.get(owner)
      const was = orders?.get(id)
      if (!orders || was === undefined) return
      orders.set(id, status)
      if (!isFinal(was) && isFinal(status)) final += 1
    },
    /** The ids of an owner's orders not yet seen final. */
    pending(owner: string): string[] {
      return [...(byOwner.get(owner) ?? [])].filter(([, s]) => !isFinal(s)).map(([id]) => id)
    },
    get placed() {
      return placed
    },
    get final() {
      return final
    },
    all(): PlacedOrder[] {
      return [...byOwner].flatMap(([owner, orders]) => [...orders].map(([id, status]) => ({ owner, id, status })))
    },
    /** How many orders are in each status (as last seen), in the order of STATUS_ORDER. */
    byStatus(): Record<string, number> {
      const counts: Record<string, number> = {}
      for (const orders of byOwner.values()) for (const s of orders.values()) counts[s] = (counts[s] ?? 0) + 1
      // A fixed order, so that summaries of two runs read alike.
      return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => rank(a) - rank(b)))
    },
  }
}
