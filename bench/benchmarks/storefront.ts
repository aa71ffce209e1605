/**
 * Benchmark 7, the storefront: the catalog page (`GET /?q=<word>`, the web function rendering
 * what it asked the product function for) against the JSON it is made of
 * (`GET /api/products?q=<word>&limit=12`, the same 12 products), both through the ingress of one
 * local shop (startShop), in turns; and the weight of each main page: its HTML and the CSS and JS
 * it links, in bytes as served before compression.
 */
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startShop } from '../../knative/local/runner.ts'
import { inTurns, medianOf } from '../compare.ts'
import type { BenchmarkResult, Context } from '../context.ts'
import { failures, runLoad } from '../http-load.ts'
import { goals, row, type Row } from '../report.ts'
import { ensureProducts, type SeededProduct } from '../seed.ts'
import { show } from './overhead.ts'

const B = '7 storefront'
const CONNECTIONS = 20
/** The search word: every seeded product's name has it, so both answers hold a full page of 12. */
const WORD = 'Bench'
/** The page weight goal, in KB (1,000 bytes) of HTML + CSS + JS. */
const WEIGHT_KB = 30

export async function storefront(ctx: Context): Promise<BenchmarkResult> {
  const { options, say } = ctx
  const products = await ensureProducts(ctx.db.pool, 200)
  const shop = await startStack(ctx)
  try {
    const common = { url: shop.ingressUrl, connections: CONNECTIONS, durationS: options.durationS, warmupS: options.warmupS }
    say(`  ${CONNECTIONS} connections through the ingress, q=${WORD} (${products.length} products match; 12 answered)`)
    const runs = await inTurns(
      {
        [`GET /?q=${WORD} (page)`]: () => runLoad({ ...common, serverPid: shop.pid('web'), request: { path: `/?q=${WORD}` } }),
        [`GET /api/products?q=${WORD}&limit=12`]: () => runLoad({ ...common, serverPid: shop.pid('product'), request: { path: `/api/products?q=${WORD}&limit=12` } }),
      },
      options.rounds,
      say,
      show,
    )
    const page = runs[`GET /?q=${WORD} (page)`]
    const api = runs[`GET /api/products?q=${WORD}&limit=12`]

    const weights = await pageWeights(shop.ingressUrl, products)
    for (const w of weights) say(`  ${w.page.padEnd(12)} ${w.path.padEnd(48)} HTML ${w.html} B + CSS ${w.css} B + JS ${w.js} B = ${w.total} B`)

    const rows: Row[] = [
      row({ benchmark: B, metric: 'catalog page req/s (vs GET /api/products)', unit: 'req/s', subject: medianOf(page, (r) => r.rps), baseline: medianOf(api, (r) => r.rps), goal: goals.ratioAtLeast(0.5) }),
      row({ benchmark: B, metric: 'catalog page p99 (vs GET /api/products)', unit: 'ms', subject: medianOf(page, (r) => r.p99), baseline: medianOf(api, (r) => r.p99) }),
      row({
        benchmark: B,
        metric: 'web CPU/req (vs product CPU/req for the JSON)',
        unit: 'µs',
        subject: medianOf(page, (r) => r.cpuUs),
        baseline: medianOf(api, (r) => r.cpuUs),
        note: 'the page costs the web process this much on top of the product function it asks (which does the same work as for the JSON)',
      }),
      ...weights.map((w) => row({ benchmark: B, metric: `page weight: ${w.page}`, unit: 'KB', subject: w.total / 1000, goal: goals.below(WEIGHT_KB, 'KB') })),
    ]
    const notes = [
      `7: one local shop (startShop: every bundle a process, the local ingress in the bench process, the in-memory broker), its catalog the bench's products. ` +
        `The catalog page GET /?q=${WORD} against GET /api/products?q=${WORD}&limit=12, both through the ingress, ${CONNECTIONS} connections, in turns over ${options.rounds} rounds; ` +
        `the page is the web function asking the product function for that same JSON, then rendering it. ` +
        `Page weight: the HTML of each page and every stylesheet and script it links, bytes as served before compression (the icon not counted); ` +
        `the cart of a shopper signed in through the pages, with 2 lines; the order page of an order of those 2 lines while it is pending (its live-status script included).`,
    ]
    for (const [what, rs] of Object.entries(runs)) {
      const bad = rs.map(failures).filter(Boolean)
      if (bad.length) notes.push(`7: ${what} had failed requests: ${bad.join('; ')}`)
    }
    return { rows, notes, raw: { runs, weights } }
  } finally {
    await shop.stop()
  }
}

/** startShop on the bench database, its own data directory, free ports, no demo catalog. */
async function startStack(ctx: Context) {
  const dataDir = await mkdtemp(join(tmpdir(), 'shop-bench-storefront-'))
  ctx.cleanup.add(`remove ${dataDir}`, () => rm(dataDir, { recursive: true, force: true }))
  const log = createWriteStream(join(ctx.scratch, 'shop-storefront.log'))
  const shop = await startShop({
    root: ctx.root,
    ingressPort: 0,
    functionPortBase: 0,
    dataDir,
    databaseUrl: ctx.db.url,
    demoCatalog: false,
    adminEmail: 'bench-admin@example.test',
    adminPassword: randomUUID(),
    // Migrated already; bcrypt at cost 4 so that starting and the one sign-up are quick (no login is measured here).
    functionEnv: { MIGRATE: 'off', BCRYPT_COST: '4' },
    output: (source, line) => log.write(`${source} ${line}\n`),
  })
  const stop = ctx.cleanup.add('stop the storefront stack', async () => {
    await shop.stop()
    log.end()
  })
  return { ingressUrl: shop.ingressUrl, pid: shop.pid, stop }
}

export type PageWeight = { page: string; path: string; html: number; css: number; js: number; total: number }

/**
 * The weight of the catalog, a product, the register page, a cart of 2 lines and an order, as a
 * shopper who signed up through the pages sees them. Throws when a page does not answer 200.
 */
async function pageWeights(base: string, products: SeededProduct[]): Promise<PageWeight[]> {
  const weights: PageWeight[] = []
  const weigh = async (page: string, path: string, cookie?: string) => weights.push({ page, path, ...(await weightOf(base, path, cookie)) })

  await weigh('catalog', `/?q=${WORD}`)
  await weigh('product', `/products/${products[0]!.id}`)
  await weigh('register', '/register')

  // A shopper: signs up through the register form (which signs in), adds 2 products to the cart.
  const email = `bench-${randomUUID()}@example.test`
  const password = randomUUID()
  const anonymous = await get(base, '/register')
  let cookie = sessionCookie(anonymous.res, undefined)
  const registered = await post(base, '/register', cookie, { name: 'Bench shopper', email, password, _csrf: csrfOf(anonymous.text) })
  if (registered.status !== 303) throw new Error(`POST /register answered ${registered.status}`)
  cookie = sessionCookie(registered, cookie)
  const lines = products.slice(1, 3)
  for (const [i, product] of lines.entries()) {
    const form = await get(base, `/products/${product.id}`, cookie)
    const added = await post(base, '/cart/items', cookie, { product_id: product.id, quantity: String(i + 1), _csrf: csrfOf(form.text) })
    if (added.status !== 303) throw new Error(`POST /cart/items answered ${added.status}`)
  }
  await weigh('cart', '/cart', cookie)

  // Their order of the same 2 lines, placed through the API with their own token.
  const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email, password }) })
  if (login.status !== 200) throw new Error(`POST /api/auth/login answered ${login.status}`)
  const { token } = (await login.json()) as { token: string }
  const placed = await fetch(`${base}/api/orders`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, 'Idempotency-Key': randomUUID() },
    body: JSON.stringify({ items: lines.map((p, i) => ({ product_id: p.id, quantity: i + 1 })) }),
  })
  if (placed.status !== 201) throw new Error(`POST /api/orders answered ${placed.status}`)
  const { id } = (await placed.json()) as { id: string }
  await weigh('order', `/orders/${id}`, cookie)
  return weights
}

/** A page's HTML and the stylesheets and scripts it links, in bytes (bodies as decoded, so before compression). */
async function weightOf(base: string, path: string, cookie?: string): Promise<Omit<PageWeight, 'page' | 'path'>> {
  const page = await get(base, path, cookie)
  if (page.res.status !== 200) throw new Error(`GET ${path} answered ${page.res.status}`)
  const bytesOf = async (href: string) => {
    const asset = await fetch(new URL(href, `${base}${path}`), { headers: { 'Accept-Encoding': 'identity' } })
    if (asset.status !== 200) throw new Error(`GET ${href} (linked by ${path}) answered ${asset.status}`)
    return (await asset.arrayBuffer()).byteLength
  }
  let css = 0
  let js = 0
  for (const tag of page.text.match(/<link\b[^>]*>/g) ?? []) {
    const href = attribute(tag, 'href')
    if (href && /\brel="stylesheet"/.test(tag)) css += await bytesOf(href)
  }
  for (const tag of page.text.match(/<script\b[^>]*>/g) ?? []) {
    const src = attribute(tag, 'src')
    if (src) js += await bytesOf(src)
  }
  const html = Buffer.byteLength(page.text)
  return { html, css, js, total: html + css + js }
}

const attribute = (tag: string, name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(tag)?.[1]?.replaceAll('&amp;', '&')

async function get(base: string, path: string, cookie?: string) {
  const res = await fetch(`${base}${path}`, { headers: { 'Accept-Encoding': 'identity', ...(cookie ? { Cookie: cookie } : {}) }, redirect: 'manual' })
  return { res, text: await res.text() }
}

async function post(base: string, path: string, cookie: string | undefined, form: Record<string, string>) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...(cookie ? { Cookie: cookie } : {}) },
    body: new URLSearchParams(form).toString(),
    redirect: 'manual',
  })
  await res.arrayBuffer()
  return res
}

/** The `shop_session` cookie a response sets, or the one held before. */
function sessionCookie(res: Response, held: string | undefined): string | undefined {
  for (const line of res.headers.getSetCookie()) {
    const match = /^(shop_session=[^;]*)/.exec(line)
    if (match) return match[1]
  }
  return held
}

function csrfOf(html: string): string {
  const tag = /<input\b[^>]*\bname="_csrf"[^>]*>/.exec(html)?.[0]
  const value = tag ? attribute(tag, 'value') : undefined
  if (!value) throw new Error('found no _csrf field on the page')
  return value
}
