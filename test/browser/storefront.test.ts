/**
 * The storefront in a real browser (Debian's Chromium through playwright-core), against the whole
 * shop started as `npm start` starts it (bundles as processes, the local ingress, the local broker)
 * on free ports: a shopper's journey, a double click on checkout, a cancel, an admin's journey.
 * Each step asserts what the page shows; every page is checked with axe-core (no serious or
 * critical violation) and photographed into /tmp/web-shots.
 *
 * Where a step needs an order to stay pending (to see it change, or to cancel it), the payment
 * function's process is paused (SIGSTOP) and resumed after, so the test waits for the state
 * itself, never for a time.
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { startShop, type Shop } from '../../knative/local/runner.ts'
import { uniqueEmail } from '../support.ts'
import { checkPage, hasChromium, launch, mainText } from './browser.ts'

const root = new URL('../..', import.meta.url).pathname
const logs: string[] = []
const output = (source: string, line: string) => {
  logs.push(`${source} ${line}`)
  if (process.env.E2E_VERBOSE) process.stdout.write(`${source.padEnd(11)} ${line}\n`)
}
const PASSWORD = 'correct horse battery'

describe.skipIf(!hasChromium())('the storefront in a browser', () => {
  let shop: Shop
  let browser: Browser
  let base: string
  let adminToken: string
  const adminPassword = `admin-${randomUUID()}`
  const contexts: BrowserContext[] = []

  beforeAll(async () => {
    shop = await startShop({
      root,
      ingressPort: 0,
      functionPortBase: 0,
      dataDir: await mkdtemp(join(tmpdir(), 'shop-browser-')),
      databaseUrl: inject('databaseUrl'),
      brokerNamespace: `web${randomUUID().slice(0, 8)}`,
      demoCatalog: false,
      adminEmail: uniqueEmail('admin'),
      adminPassword,
      // Every payment succeeds, so the journey ends paid; short, so the tests wait little.
      functionEnv: { PAYMENT_DELAY_MS: '300', PAYMENT_SUCCESS_RATE: '1', BCRYPT_COST: '4', LOG_LEVEL: 'warn' },
      output,
    })
    base = shop.ingressUrl
    browser = await launch()
    const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email: shop.admin.email, password: adminPassword }) })
    adminToken = ((await login.json()) as { token: string }).token
  }, 180_000)

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {})
    await browser?.close()
    await shop?.stop()
  }, 60_000)

  /** A fresh browser profile (its own cookies) with one page; script errors and CSP reports fail the test. */
  const newPage = async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } })
    contexts.push(context)
    const page = await context.newPage()
    const problems: string[] = []
    page.on('pageerror', (err) => problems.push(`script error: ${err.message}`))
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`)
    })
    page.on('dialog', (d) => {
      problems.push(`a dialog opened: ${d.message()}`)
      void d.dismiss()
    })
    return { page, problems }
  }
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${adminToken}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    return (res.status === 204 ? undefined : await res.json()) as { id: string; name: string; stock: number }
  }
  const product = (name: string, price_cents: number, stock: number, description = '') => api('POST', '/api/products', { name, price_cents, stock, description })
  /** Runs `step` with the payment function paused: what it orders stays pending until it resumes. */
  const withPaymentPaused = async <T,>(step: () => Promise<T>) => {
    const pid = shop.pid('payment')!
    process.kill(pid, 'SIGSTOP')
    try {
      return await step()
    } finally {
      process.kill(pid, 'SIGCONT')
    }
  }
  const register = async (page: Page, name: string) => {
    const email = uniqueEmail('shopper')
    await page.goto(`${base}/register`)
    await page.getByLabel('Your name').fill(name)
    await page.getByLabel('Email address').fill(email)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Create account' }).click()
    await page.waitForURL(`${base}/`)
    return email
  }
  const addToCart = async (page: Page, productId: string, quantity: number) => {
    await page.goto(`${base}/products/${productId}`)
    await page.getByLabel('Quantity').fill(String(quantity))
    await page.getByRole('button', { name: 'Add to cart' }).click()
    await page.waitForURL(`${base}/cart`)
  }
  const statusOf = (page: Page) => page.locator('[data-status]').getAttribute('data-status')

  it('serves a shopper from registering to a paid order, every page accessible', async () => {
    const tag = randomUUID().slice(0, 6)
    const kettle = await product(`Kettle ${tag}`, 4500, 20, 'Gooseneck spout, 1 l')
    const beans = await product(`Beans ${tag}`, 1450, 3, '250 g, light roast')
    const { page, problems } = await newPage()

    // The catalog, and a search.
    await page.goto(`${base}/`)
    await checkPage(page, 'catalog')
    await page.getByLabel('Search the catalog').fill(tag)
    await page.getByRole('button', { name: 'Search' }).click()
    await page.waitForURL(`${base}/?q=${tag}`)
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(`Results for “${tag}”`)
    expect(await page.locator('.card').count()).toBe(2)
    await checkPage(page, 'search')

    // A product page, not signed in: the price, what is left, and a way to log in.
    await page.getByRole('link', { name: `Beans ${tag}` }).click()
    expect(await mainText(page)).toContain('€14.50 · 3 left')
    expect(await page.getByRole('link', { name: 'Log in to buy' }).count()).toBe(1)
    await checkPage(page, 'product')

    // Registering: an error beside the field that caused it, then an account.
    await page.goto(`${base}/register`)
    await page.getByLabel('Your name').fill('Grace')
    await page.getByLabel('Email address').fill('not an email')
    await page.getByLabel('Password').fill('short')
    await page.getByRole('button', { name: 'Create account' }).click()
    expect(await page.locator('#f-password-error').innerText()).toBe('Password must be at least 8 characters.')
    expect(await page.locator('#f-email-error').innerText()).toBe('Email must be an email address.')
    expect(await page.getByLabel('Email address').getAttribute('aria-invalid')).toBe('true')
    await checkPage(page, 'register-errors')
    const email = await register(page, 'Grace Hopper')
    expect(await mainText(page)).toContain('Welcome, Grace Hopper!')

    // The cart: two products, a quantity changed, the totals from the catalog.
    await addToCart(page, kettle.id, 1)
    expect(await mainText(page)).toContain(`Added 1 × Kettle ${tag} to your cart.`)
    await addToCart(page, beans.id, 2)
    await page.getByLabel(`Quantity of Kettle ${tag}`).fill('2')
    await page.getByRole('row', { name: new RegExp(`Kettle ${tag}`) }).getByRole('button', { name: 'Update' }).click()
    await page.waitForURL(`${base}/cart`)
    const cart = await mainText(page)
    expect(cart).toContain('Updated the quantity.')
    expect(cart).toContain('€90.00') // 2 × €45.00
    expect(cart).toContain('€29.00') // 2 × €14.50
    expect(cart).toContain('Total €119.00')
    expect(cart).toContain('Place order · €119.00')
    await checkPage(page, 'cart')

    // Checking out, and the status turning from pending to paid on the page, without a reload.
    let navigations = 0
    await withPaymentPaused(async () => {
      await page.getByRole('button', { name: /Place order/ }).click()
      await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/)
      expect(await mainText(page)).toContain('Thank you! Your order is placed')
      expect(await statusOf(page)).toBe('pending')
      expect(await page.locator('[data-status]').innerText()).toBe('Awaiting payment')
      await checkPage(page, 'order-pending')
      page.on('framenavigated', (frame) => void (frame === page.mainFrame() && navigations++))
    })
    await page.locator('[data-status="paid"]').waitFor({ timeout: 60_000 })
    expect(await page.locator('[data-status]').innerText()).toBe('Paid')
    expect(await page.locator('[data-payment-status]').innerText()).toBe('Charged')
    expect(await page.getByRole('button', { name: 'Cancel order' }).isVisible()).toBe(false)
    expect(navigations).toBe(0)
    await checkPage(page, 'order-paid')
    const orderUrl = page.url()

    // My orders: the order, paid.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'My orders' }).click()
    const orders = await mainText(page)
    expect(orders).toContain(`#${orderUrl.split('/').at(-1)!.slice(0, 8)}`)
    expect(orders).toContain(`2 × Beans ${tag}`)
    expect(orders).toContain('Paid')
    await checkPage(page, 'orders')

    // Out: the session ends, and the cart asks for a login again.
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.waitForURL(`${base}/`)
    await page.goto(`${base}/cart`)
    expect(page.url()).toBe(`${base}/login?next=%2Fcart`)
    await page.getByLabel('Email address').fill(email)
    await page.getByLabel('Password').fill('wrong password')
    await page.getByRole('button', { name: 'Log in' }).click()
    expect(await page.locator('.alert-error').innerText()).toBe('The email address or the password is wrong.')
    await checkPage(page, 'login-error')
    expect(problems).toEqual([])
  }, 180_000)

  it('places one order for a double click on checkout, and none more on a reload', async () => {
    const p = await product(`Grinder ${randomUUID().slice(0, 6)}`, 12900, 10)
    const { page, problems } = await newPage()
    await register(page, 'Double Clicker')
    await addToCart(page, p.id, 1)
    let posts = 0
    page.on('request', (r) => void (r.method() === 'POST' && r.url().endsWith('/checkout') && posts++))
    await page.getByRole('button', { name: /Place order/ }).dblclick()
    // The second click's submission aborts the first one's navigation, and waitForURL throws on an
    // aborted navigation: poll the address instead, then let the order page finish loading.
    await expect.poll(() => page.url(), { timeout: 60_000, interval: 100 }).toMatch(/\/orders\/[0-9a-f-]{36}$/)
    await page.waitForLoadState('load')
    const orderUrl = page.url()
    await page.reload()
    expect(page.url()).toBe(orderUrl)
    await page.goto(`${base}/orders`)
    expect(await page.locator('tbody tr').count()).toBe(1)
    expect(posts).toBeGreaterThanOrEqual(1)
    const stock = await api('GET', `/api/products/${p.id}`)
    expect(stock.stock).toBe(9)
    expect(problems).toEqual([])
  }, 120_000)

  it('checks out with the keyboard alone', async () => {
    const p = await product(`Filters ${randomUUID().slice(0, 6)}`, 650, 50)
    const { page, problems } = await newPage()
    await register(page, 'Keyboard User')
    await page.goto(`${base}/products/${p.id}`)
    // The quantity field has the focus first; Enter sends the form.
    await page.getByLabel('Quantity').focus()
    await page.keyboard.press('Enter')
    await page.waitForURL(`${base}/cart`)
    let reached = false
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab')
      reached = await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { textContent: string } | null } }).document.activeElement?.textContent?.startsWith('Place order') ?? false)
    }
    expect(reached).toBe(true)
    await page.keyboard.press('Enter')
    await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/)
    expect(await mainText(page)).toContain('Thank you! Your order is placed')
    expect(problems).toEqual([])
  }, 120_000)

  it('cancels an order while it is pending', async () => {
    const p = await product(`Jug ${randomUUID().slice(0, 6)}`, 1900, 10)
    const { page, problems } = await newPage()
    await register(page, 'Cancelling Shopper')
    await addToCart(page, p.id, 2)
    await withPaymentPaused(async () => {
      await page.getByRole('button', { name: /Place order/ }).click()
      await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/)
      expect(await statusOf(page)).toBe('pending')
      await page.getByRole('button', { name: 'Cancel order' }).click()
      await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/)
      expect(await mainText(page)).toContain('Your order is cancelled.')
      expect(await page.locator('[data-status]').innerText()).toBe('Cancelled')
      expect(await page.getByRole('button', { name: 'Cancel order' }).count()).toBe(0)
      await checkPage(page, 'order-cancelled')
    })
    // The units come back to the catalog once the cancel is announced.
    for (let stock = 0; stock !== 10; await new Promise((r) => setTimeout(r, 100))) stock = (await api('GET', `/api/products/${p.id}`)).stock
    expect(problems).toEqual([])
  }, 120_000)

  it('shows out of stock on the cart’s lines, at checkout too', async () => {
    const tag = randomUUID().slice(0, 6)
    const scarce = await product(`Scarce ${tag}`, 1000, 2)
    const plenty = await product(`Plenty ${tag}`, 500, 50)
    const { page, problems } = await newPage()
    await register(page, 'Unlucky Shopper')
    await addToCart(page, plenty.id, 1)
    await addToCart(page, scarce.id, 2)
    // Another shopper buys one meanwhile: the form on this page asks for more than is left.
    await api('POST', `/api/products/${scarce.id}/stock`, { delta: -1 })
    await page.getByRole('button', { name: /Place order/ }).click()
    const text = await mainText(page)
    expect(text).toContain('Nothing was ordered')
    expect(await page.getByRole('row', { name: new RegExp(`Scarce ${tag}`) }).innerText()).toContain('Only 1 left: lower the quantity.')
    expect(await page.getByRole('row', { name: new RegExp(`Plenty ${tag}`) }).innerText()).not.toContain('left')
    // Shown again, the cart marks the line and will not check out until it is changed.
    await page.goto(`${base}/cart`)
    expect(await page.getByRole('button', { name: /Place order/ }).isDisabled()).toBe(true)
    await checkPage(page, 'cart-out-of-stock')
    expect(problems).toEqual([])
  }, 120_000)

  it('lets an admin add a product, set its stock, see a shopper’s order of it, and see it sold out', async () => {
    const name = `Travel mug ${randomUUID().slice(0, 6)}`
    const admin = await newPage()
    const page = admin.page
    await page.goto(`${base}/login`)
    await page.getByLabel('Email address').fill(shop.admin.email)
    await page.getByLabel('Password').fill(adminPassword)
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.getByRole('link', { name: 'Products' }).click()
    await page.waitForURL(`${base}/admin/products`)

    // A product, first with a price that is not one.
    await page.getByLabel('Name', { exact: true }).fill(name)
    await page.getByLabel('Description').fill('Double wall, 300 ml')
    await page.getByLabel('Price (€)').fill('twelve')
    await page.getByLabel('Units in stock').fill('5')
    await page.getByRole('button', { name: 'Add product' }).click()
    expect(await page.locator('#f-price-error').innerText()).toBe('Enter a price like 12.50.')
    await checkPage(page, 'admin-product-error')
    await page.getByLabel('Price (€)').fill('24.00')
    await page.getByRole('button', { name: 'Add product' }).click()
    await page.waitForURL(`${base}/admin/products`)
    expect(await mainText(page)).toContain(`Added “${name}” to the catalog.`)

    // Its edit page: a new price.
    await page.getByRole('link', { name: `Edit ${name}` }).click()
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(`Edit “${name}”`)
    await checkPage(page, 'admin-product-edit')
    await page.getByLabel('Price (€)').fill('22.50')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.waitForURL(`${base}/admin/products`)
    expect(await mainText(page)).toContain(`Saved “${name}”.`)
    expect(await page.getByRole('row', { name: new RegExp(name) }).innerText()).toContain('€22.50')

    // Its stock set to 1, from the list.
    await page.getByLabel(`Stock of ${name}`, { exact: true }).fill('1')
    await page.getByRole('button', { name: `Set the stock of ${name}` }).click()
    await page.waitForURL(`${base}/admin/products`)
    expect(await mainText(page)).toContain(`The stock of “${name}” is 1.`)
    await checkPage(page, 'admin-products')

    // A shopper buys that one.
    const shopper = await newPage()
    const email = await register(shopper.page, 'Mug Buyer')
    await shopper.page.getByLabel('Search the catalog').fill(name)
    await shopper.page.keyboard.press('Enter')
    await shopper.page.getByRole('link', { name }).click()
    const productUrl = shopper.page.url()
    expect(await mainText(shopper.page)).toContain('1 left')
    await shopper.page.getByRole('button', { name: 'Add to cart' }).click()
    await shopper.page.getByRole('button', { name: /Place order/ }).click()
    await shopper.page.waitForURL(/\/orders\/[0-9a-f-]{36}$/)
    const orderId = shopper.page.url().split('/').at(-1)!

    // The admin sees it, with its buyer, among the paid orders once paid.
    await page.getByRole('link', { name: 'All orders' }).click()
    await page.getByLabel('Status').selectOption('paid')
    await page.getByRole('button', { name: 'Show' }).click()
    for (let seen = false; !seen; ) {
      seen = (await mainText(page)).includes(`#${orderId.slice(0, 8)}`)
      if (!seen) await page.reload()
    }
    const row = page.getByRole('row', { name: new RegExp(`#${orderId.slice(0, 8)}`) })
    expect(await row.innerText()).toContain(email)
    expect(await row.innerText()).toContain(`1 × ${name}`)
    expect(await row.innerText()).toContain('Paid')
    await checkPage(page, 'admin-orders')
    await page.getByLabel('Status').selectOption('cancelled')
    await page.getByRole('button', { name: 'Show' }).click()
    expect(await mainText(page)).not.toContain(`#${orderId.slice(0, 8)}`)

    // Sold out now, for everyone: the button is disabled.
    await shopper.page.goto(productUrl)
    expect(await mainText(shopper.page)).toContain('Sold out')
    expect(await shopper.page.getByRole('button', { name: 'Sold out' }).isDisabled()).toBe(true)
    await checkPage(shopper.page, 'product-sold-out')
    expect([...admin.problems, ...shopper.problems]).toEqual([])
  }, 180_000)

  it('pages through the catalog', async () => {
    const tag = `pg${randomUUID().slice(0, 6)}`
    for (let i = 1; i <= 14; i++) await product(`Cup ${tag} ${String(i).padStart(2, '0')}`, 900, 5)
    const { page, problems } = await newPage()
    await page.goto(`${base}/?q=${tag}`)
    expect(await page.locator('.card').count()).toBe(12)
    expect(await page.getByRole('navigation', { name: 'Catalog pages' }).innerText()).toContain('Page 1 of 2')
    await page.getByRole('link', { name: 'Next →' }).click()
    await page.waitForURL(`${base}/?q=${tag}&page=2`)
    // Newest first: the two made first are on the second page.
    expect(await page.locator('.card h2').allInnerTexts()).toEqual([`Cup ${tag} 02`, `Cup ${tag} 01`])
    await checkPage(page, 'catalog-page-2')
    await page.getByRole('link', { name: '← Previous' }).click()
    await page.waitForURL(`${base}/?q=${tag}`)
    expect(problems).toEqual([])
  }, 60_000)

  it('shows a hostile product name as text, and runs nothing of it', async () => {
    const tag = randomUUID().slice(0, 6)
    const hostile = await product(`<script>alert(1)</script><img src=x onerror=alert(2)> ${tag}`, 100, 1)
    const { page, problems } = await newPage()
    await page.goto(`${base}/?q=${tag}`)
    expect(await page.locator('.card h2').innerText()).toBe(`<script>alert(1)</script><img src=x onerror=alert(2)> ${tag}`)
    await page.goto(`${base}/products/${hostile.id}`)
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toContain('<script>alert(1)</script>')
    expect(await page.locator('main img').count()).toBe(0)
    const missing = await page.goto(`${base}/products/${randomUUID()}`)
    expect(missing?.status()).toBe(404)
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('Page not found')
    await checkPage(page, 'not-found')
    expect(problems).toEqual([])
  }, 60_000)
})
