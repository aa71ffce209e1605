/**
 * @module
 * After the shoppers stop: wait for their orders to become final, then read back what the shop
 * holds (each shopper's orders and payments, every payment by order, the whole catalog) for the
 * invariants, and wait for the stock to follow the orders. Each shopper's reads go one after
 * another and shoppers run side by side, so this never has more requests in flight than the run had.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import * as v from 'valibot'
import { OrderPage, Payment, PaymentPage, ProductPage, type Order } from './answers.ts'
import type { Client } from './client.ts'
import { stockMatches, type Observed } from './invariants.ts'
import type { OrderBook } from './order-book.ts'
import { refreshOrders, type Shopper } from './shopper.ts'

const POLL_MS = 250

/** Polls the shoppers' pending orders until none is left or `limitMs` passed; how long it took (ms). */
export async function settleOrders(api: Client, shoppers: Shopper[], book: OrderBook, limitMs: number): Promise<number> {
  const started = Date.now()
  for (;;) {
    const waiting = shoppers.filter((s) => book.pending(s.owner).length > 0)
    if (waiting.length === 0) return Date.now() - started
    await Promise.all(waiting.map((s) => refreshOrders(api.as(s.token), book, s.owner)))
    if (shoppers.every((s) => book.pending(s.owner).length === 0)) return Date.now() - started
    if (Date.now() - started >= limitMs) return Date.now() - started
    await sleep(POLL_MS)
  }
}

/** Every item of a paged list (`?limit=100&offset=…`); undefined when a page could not be read. */
export async function readAll<T>(client: Client, path: string, schema: v.GenericSchema<unknown, { items: T[]; total: number }>): Promise<T[] | undefined> {
  const items: T[] = []
  for (let offset = 0; ; offset += 100) {
    const page = await client.request({ method: 'GET', path: `${path}?limit=100&offset=${offset}`, expect: [200], schema })
    if (!page.data) return undefined
    items.push(...page.data.items)
    if (offset + 100 >= page.data.total || page.data.items.length === 0) return items
  }
}

/** The whole catalog's stock, product by product; undefined when a page could not be read. */
export async function readStock(api: Client): Promise<Map<string, number> | undefined> {
  const products = await readAll(api, '/api/products', ProductPage)
  return products && new Map(products.map((p) => [p.id, p.stock]))
}

/**
 * Reads the stock again until every product in `expected` has the stock it says, or `untilMs`
 * (Date.now() time) passed: the product function hears of a failed payment on its own, so its
 * units may come back a moment after the order became final. Answers the last stock read.
 */
export async function settleStock(api: Client, expected: ReadonlyMap<string, number> | undefined, first: Map<string, number> | undefined, untilMs: number): Promise<Map<string, number> | undefined> {
  let stock = first
  while (expected && !(stock && stockMatches(expected, stock)) && Date.now() < untilMs) {
    await sleep(POLL_MS * 2)
    stock = (await readStock(api)) ?? stock
  }
  return stock
}

/** What the invariants need from the shop, read through each shopper's own token. */
export async function readBack(api: Client, shoppers: Shopper[], book: OrderBook): Promise<Pick<Observed, 'lists' | 'paymentOf'> & { stock: Map<string, number> | undefined }> {
  const paymentOf = new Map<string, Payment | null | undefined>()
  const placed = book.all()
  const lists = await Promise.all(
    shoppers.map(async (s) => {
      const me = api.as(s.token)
      const orders: Order[] | undefined = await readAll(me, '/api/orders', OrderPage)
      const payments = await readAll(me, '/api/payments', PaymentPage)
      for (const { id } of placed.filter((p) => p.owner === s.owner)) {
        const answer = await me.request({ method: 'GET', path: `/api/payments/${id}`, expect: [200, 404], schema: Payment })
        paymentOf.set(id, answer.data ?? (answer.status === 404 ? null : undefined))
      }
      return { owner: s.owner, orders, payments }
    }),
  )
  return { lists, paymentOf, stock: await readStock(api) }
}
