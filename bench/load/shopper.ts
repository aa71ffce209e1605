/**
 * @module
 * One virtual shopper: signs up once, then browses, fills its cart and checks out in the mix of
 * mix.ts until the deadline, with a short think time between actions. It keeps what the shop told
 * it last about its cart, and checks now and then on its orders still pending.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cart, Login, Order, OrderPage, Product, ProductPage } from './answers.ts'
import type { Catalog } from './catalog.ts'
import { NO_ANSWER } from './recorder.ts'
import type { Client } from './client.ts'
import { createPicker, SHOPPER_MIX, type Action } from './mix.ts'
import type { OrderBook } from './order-book.ts'
import { between, pick, type Random } from './random.ts'
import type { StockWatch } from './stock.ts'

export type ShopperContext = {
  /** Unauthenticated; each shopper makes its own with its token. */
  api: Client
  catalog: Catalog
  book: OrderBook
  stock: StockWatch
  random: Random
  /** The longest pause between two actions, in ms (each pause is 0 to this). */
  thinkMs: number
  /** When to stop starting actions (Date.now() time); what is under way finishes. */
  deadline: number
  /** Makes the run's emails unique. */
  runId: string
}

/** Who a shopper is, for the checks after the run. */
export type Shopper = { owner: string; token: string }

const PASSWORD = 'correct horse battery'
// A cart of a few lines, like a person's; it also keeps an order far from its 50-line limit.
const MAX_LINES = 8
const LINE_MAX = 999
// Pending orders are looked up at most this often, so checking does not crowd out shopping.
const TRACK_EVERY_MS = 1_000
// How many checkouts, on average, for one that is cancelled right after it was placed.
const CANCEL_EVERY = 4
// A checkout that got no answer is sent again with the same Idempotency-Key: the shop makes one order of it.
const CHECKOUT_ATTEMPTS = 3

/** Runs one shopper to the deadline; undefined when it could not even sign up. */
export async function runShopper(n: number, ctx: ShopperContext): Promise<Shopper | undefined> {
  const { catalog, book, stock, random, deadline } = ctx
  const owner = `load-${ctx.runId}-${n}@example.test`
  const token = await signUp(ctx, owner)
  if (!token) return undefined
  const me = ctx.api.as(token)
  const next = createPicker(SHOPPER_MIX, random)
  // The cart as the shop last answered it; the order.created consumer may have emptied lines since.
  let cart: { product_id: string; quantity: number }[] = []
  let tracked = Date.now()

  const setCart = (answer: { data?: Cart }) => {
    if (answer.data) cart = answer.data.items.map(({ product_id, quantity }) => ({ product_id, quantity }))
  }

  const add = async (): Promise<void> => {
    if (cart.length >= MAX_LINES) return update()
    const product_id = pick(random, catalog.ids)
    const quantity = between(random, 1, 3)
    if ((cart.find((l) => l.product_id === product_id)?.quantity ?? 0) + quantity > LINE_MAX) return update()
    setCart(await me.request({ method: 'POST', path: '/api/cart/items', body: { product_id, quantity }, expect: [200], schema: Cart }))
  }
  const update = async (): Promise<void> => {
    if (cart.length === 0) return add()
    const line = pick(random, cart)
    setCart(await me.request({ method: 'PUT', path: `/api/cart/items/${line.product_id}`, body: { quantity: between(random, 1, 5) }, expect: [200], schema: Cart }))
  }
  const remove = async (): Promise<void> => {
    if (cart.length === 0) return add()
    const line = pick(random, cart)
    const answer = await me.request({ method: 'DELETE', path: `/api/cart/items/${line.product_id}`, expect: [200, 404], schema: Cart })
    if (answer.status === 404) cart = cart.filter((l) => l !== line)
    else setCart(answer)
  }
  const view = async () => setCart(await me.request({ method: 'GET', path: '/api/cart', expect: [200], schema: Cart }))

  const checkout = async () => {
    // What is in the cart now: the consumer of the last order may have taken lines out meanwhile.
    await view()
    if (cart.length === 0) await add()
    if (cart.length === 0) return
    const key = randomUUID()
    for (let attempt = 1; attempt <= CHECKOUT_ATTEMPTS; attempt++) {
      const placed = await me.request({ method: 'POST', path: '/api/orders', body: { items: cart }, headers: { 'Idempotency-Key': key }, expect: [201, 200], schema: Order })
      if (placed.data) {
        book.place(owner, placed.data.id, placed.data.status)
        cart = [] // what the shop does next, through order.created
        // One checkout in CANCEL_EVERY changes its mind at once, racing its payment: 200 while the
        // order is pending, 409 once it was paid or failed. Either way it must never stay charged.
        if (placed.data.status === 'pending' && random() < 1 / CANCEL_EVERY) {
          const cancelled = await me.request({ method: 'POST', path: `/api/orders/${placed.data.id}/cancel`, expect: [200, 409], schema: Order })
          if (cancelled.data) book.update(owner, cancelled.data.id, cancelled.data.status)
        }
      }
      if (placed.status !== NO_ANSWER) return
    }
  }

  const browseList = async () => {
    const limit = pick(random, [5, 10, 20, 50])
    const offset = random() < 0.7 ? 0 : between(random, 0, Math.max(0, catalog.total - limit))
    const q = random() < 0.25 && catalog.words.length ? `&q=${encodeURIComponent(pick(random, catalog.words))}` : ''
    const page = await me.request({ method: 'GET', path: `/api/products?limit=${limit}&offset=${offset}${q}`, expect: [200], schema: ProductPage })
    if (page.data) stock.observe(page.data.items)
  }
  const browseProduct = async () => {
    const product = await me.request({ method: 'GET', path: `/api/products/${pick(random, catalog.ids)}`, expect: [200], schema: Product })
    if (product.data) stock.observe([product.data])
  }

  const actions: Record<Action, () => Promise<void>> = {
    'browse.list': browseList,
    'browse.product': browseProduct,
    'cart.add': add,
    'cart.update': update,
    'cart.remove': remove,
    'cart.view': view,
    checkout,
  }

  while (Date.now() < deadline) {
    await actions[next()]()
    if (Date.now() - tracked >= TRACK_EVERY_MS && book.pending(owner).length > 0) {
      await refreshOrders(me, book, owner)
      tracked = Date.now()
    }
    await sleep(random() * ctx.thinkMs)
  }
  return { owner, token }
}

/** Registers and logs in, trying again each second until the deadline; the token, or undefined. */
async function signUp(ctx: ShopperContext, email: string): Promise<string | undefined> {
  let registered = false
  while (Date.now() < ctx.deadline) {
    if (!registered) {
      const made = await ctx.api.request({ method: 'POST', path: '/api/auth/register', body: { email, password: PASSWORD, name: 'Load shopper' }, expect: [201, 409] })
      registered = made.ok // 409: an earlier try went through but its answer was lost
    }
    if (registered) {
      const login = await ctx.api.request({ method: 'POST', path: '/api/auth/login', body: { email, password: PASSWORD }, expect: [200], schema: Login })
      if (login.data) return login.data.token
    }
    await sleep(1_000)
  }
  return undefined
}

/**
 * Looks up an owner's pending orders in its list of orders (newest first, where pending ones
 * are), page by page until each was seen, and notes their status.
 */
export async function refreshOrders(client: Client, book: OrderBook, owner: string): Promise<void> {
  const pending = new Set(book.pending(owner))
  for (let offset = 0; pending.size > 0; offset += 100) {
    const page = await client.request({ method: 'GET', path: `/api/orders?limit=100&offset=${offset}`, expect: [200], schema: OrderPage })
    if (!page.data) return
    for (const order of page.data.items) if (pending.delete(order.id)) book.update(owner, order.id, order.status)
    if (offset + 100 >= page.data.total) return
  }
}
