/**
 * @module
 * What there is to buy: the product ids the shoppers pick from, their stock before the run and a
 * few words to search for, read once before the run. An empty catalog gets products of its own
 * when an admin is given.
 */
import { Login, Product, ProductPage } from './answers.ts'
import { describeAnswer, type Client } from './client.ts'

/**
 * `ids` the shoppers pick from, `stock` of each before the run (what the stock after it is judged
 * against), `words` to search for, `total` products in the shop.
 */
export type Catalog = { ids: string[]; stock: Map<string, number>; words: string[]; total: number }

// Enough ids to spread the load over; a cluster's catalog may be far bigger and need not be read whole.
const MAX_PRODUCTS = 1_000

// Added only to an empty catalog, with stock to spare: the run is about the shop, not about selling out.
const LOAD_PRODUCTS = [
  ['Espresso cup', 900],
  ['Pour-over kettle', 4500],
  ['Burr grinder', 12900],
  ['Coffee beans, Ethiopia', 1450],
  ['Coffee beans, Brazil', 1150],
  ['Paper filters', 650],
  ['Milk jug', 1900],
  ['Travel mug', 2400],
  ['Tea pot', 3200],
  ['Green tea, sencha', 1250],
] as const

/**
 * Reads the catalog, adding products to an empty one with `admin`. With `only`, the shoppers keep
 * to those products (a shop that others shop at too: only the run's own products have a stock
 * that the run alone moves); each must be in the catalog.
 */
export async function loadCatalog(api: Client, admin?: { email: string; password: string }, only?: readonly string[]): Promise<Catalog> {
  if (only) {
    if (only.length === 0) throw new Error('no products to shop for were given')
    // Browsing still sees the whole catalog (its words, its size); buying keeps to these.
    const catalog = await readCatalog(api)
    const stock = new Map<string, number>()
    for (const id of new Set(only)) {
      const product = await api.request({ method: 'GET', path: `/api/products/${id}`, expect: [200], schema: Product })
      if (!product.data) throw new Error(`the product ${id} to shop for: ${describeAnswer(product)}`)
      stock.set(id, product.data.stock)
    }
    return { ...catalog, ids: [...stock.keys()], stock }
  }
  let catalog = await readCatalog(api)
  if (catalog.total > 0) return catalog
  if (!admin) throw new Error(`the catalog at ${api.base} is empty: give --admin-email and --admin-password to add products to it`)
  const login = await api.request({ method: 'POST', path: '/api/auth/login', body: admin, expect: [200], schema: Login })
  if (!login.data) throw new Error(`the admin login at ${api.base}: ${describeAnswer(login)}`)
  const asAdmin = api.as(login.data.token)
  for (const [name, price_cents] of LOAD_PRODUCTS) {
    const made = await asAdmin.request({ method: 'POST', path: '/api/products', body: { name, price_cents, stock: 1_000, description: 'added by npm run load' }, expect: [201] })
    if (!made.ok) throw new Error(`adding the product ${name}: ${describeAnswer(made)}`)
  }
  catalog = await readCatalog(api)
  if (catalog.total === 0) throw new Error(`the catalog at ${api.base} is still empty after adding products`)
  return catalog
}

async function readCatalog(api: Client): Promise<Catalog> {
  const products: Product[] = []
  let total = 0
  for (let offset = 0; offset < MAX_PRODUCTS; offset += 100) {
    const page = await api.request({ method: 'GET', path: `/api/products?limit=100&offset=${offset}`, expect: [200], schema: ProductPage })
    if (!page.data) throw new Error(`GET ${api.base}/api/products: ${describeAnswer(page)}`)
    products.push(...page.data.items)
    total = page.data.total
    if (offset + 100 >= total) break
  }
  return { ids: products.map((p) => p.id), stock: new Map(products.map((p) => [p.id, p.stock])), words: searchWords(products.map((p) => p.name)), total }
}

/** Words of at least 3 letters from the names, lower case, each once: what people type into a search box. */
export function searchWords(names: readonly string[]): string[] {
  const words = new Set<string>()
  for (const name of names) for (const w of name.toLowerCase().split(/[^\p{L}\p{N}]+/u)) if (w.length >= 3) words.add(w)
  return [...words].slice(0, 100)
}
