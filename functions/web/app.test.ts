/**
 * The storefront in-process (`app.request`), against the real functions it calls (auth, product,
 * cart, order, each in-process on the test database): what each page shows, what each form does,
 * the session, the CSRF check, the security headers and the escaping.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { OutgoingEvent } from '../../shared/events.ts'
import { createProductClient } from '../../shared/product-client.ts'
import { catalogFixture, type CatalogFixture } from '../../test/product-fixture.ts'
import { appDeps, call, fetchVia, postEvent, testPool, uniqueEmail } from '../../test/support.ts'
import { ensureAdmin } from '../auth/admin.ts'
import { authApp } from '../auth/app.ts'
import { createPasswordHasher } from '../auth/password.ts'
import { cartApp } from '../cart/app.ts'
import { orderApp } from '../order/app.ts'
import { createApiClient } from './api.ts'
import { webApp } from './app.tsx'
import { assets } from './assets.ts'
import { localPath } from './forms.ts'
import { liveStatusOf } from './pages/orders.tsx'
import { createShop } from './shop.ts'

const pool = testPool()
const hasher = createPasswordHasher({ cost: 4 })
afterAll(() => hasher.close())
let { keys, catalog, admin } = {} as CatalogFixture
let orders: ReturnType<typeof orderApp>
let web: ReturnType<typeof webApp>
const published: OutgoingEvent[] = []
const adminLogin = { email: uniqueEmail('admin'), password: 'admin password 1' }

beforeAll(async () => {
  ;({ keys, catalog, admin } = await catalogFixture(pool))
  const products = createProductClient({ baseUrl: 'http://product', fetch: fetchVia(catalog) })
  const auth = authApp({ pool, ...appDeps(), hasher, signer: keys.signer, verify: keys.verify, jwks: keys.jwks as never })
  const cart = cartApp({ pool, ...appDeps(), verify: keys.verify, products })
  orders = orderApp({ pool, ...appDeps(), verify: keys.verify, products, publish: async (e) => void published.push(e) })
  const send = createApiClient({
    urls: { auth: 'http://auth', product: 'http://product', cart: 'http://cart', order: 'http://order' },
    fetch: { auth: fetchVia(auth), product: fetchVia(catalog), cart: fetchVia(cart), order: fetchVia(orders) },
  })
  web = webApp({ pool, ...appDeps(), shop: createShop(send) })
  await ensureAdmin({ pool, hasher, email: adminLogin.email, password: adminLogin.password })
})

type Page = { status: number; headers: Headers; text: string; location: string | null }

/** A browser of the in-process storefront: keeps its cookies, and sends each form with the `_csrf` of the last page it read. */
function browser(extraHeaders: Record<string, string> = {}) {
  // Each browser its own address, passed on to auth: its login limits count per client.
  const headers = { 'X-Forwarded-For': `10.${[0, 0, 0].map(() => Math.floor(Math.random() * 250) + 1).join('.')}`, ...extraHeaders }
  const jar = new Map<string, string>()
  let lastHtml = ''
  const request = async (method: string, path: string, form?: Record<string, string | string[] | undefined>, extra: Record<string, string> = {}): Promise<Page> => {
    const h: Record<string, string> = { Accept: 'text/html,application/xhtml+xml', ...headers, ...extra, Cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') }
    let body: string | undefined
    if (form) {
      const params = new URLSearchParams()
      for (const [k, v] of Object.entries(form)) for (const x of v === undefined ? [] : [v].flat()) params.append(k, x)
      body = params.toString()
      h['Content-Type'] = 'application/x-www-form-urlencoded'
    }
    const res = await web.request(path, { method, headers: h, ...(body === undefined ? {} : { body }) })
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';')
      const [name = '', value = ''] = pair.split('=')
      if (/max-age=0/i.test(cookie) || value === '') jar.delete(name)
      else jar.set(name, value)
    }
    const text = await res.text()
    if (/html/.test(res.headers.get('Content-Type') ?? '')) lastHtml = text
    return { status: res.status, headers: res.headers, text, location: res.headers.get('Location') }
  }
  const csrf = () => /name="_csrf" value="([^"]*)"/.exec(lastHtml)?.[1]
  const self = {
    jar,
    get: (path: string, extra?: Record<string, string>) => request('GET', path, undefined, extra),
    /** Posts a form with the last page's CSRF token (unless the form gives its own `_csrf`). */
    post: (path: string, form: Record<string, string | string[] | undefined> = {}, extra?: Record<string, string>) => request('POST', path, { _csrf: csrf(), ...form }, extra),
    /** Follows a redirect answer to the page it names. */
    follow: async (page: Page) => {
      expect(page.status, page.text.slice(0, 300)).toBe(303)
      return self.get(page.location!)
    },
    async register(name = 'Ada Shopper') {
      const email = uniqueEmail('shopper')
      await self.get('/register')
      const done = await self.post('/register', { name, email, password: 'correct horse battery' })
      // The page it goes to carries the new session's CSRF token.
      await self.follow(done)
      const { rows } = await pool.query<{ id: string }>('SELECT id FROM auth.users WHERE email = $1', [email])
      return { email, id: rows[0]!.id }
    },
    async login(email: string, password: string) {
      await self.get('/login')
      const done = await self.post('/login', { email, password })
      if (done.status === 303) await self.follow(done)
      return done
    },
  }
  return self
}

const newProduct = async (fields: { name?: string; price_cents?: number; stock?: number; description?: string } = {}) => {
  const res = await call(catalog, 'POST', '/api/products', {
    token: admin,
    body: { name: `Mug ${randomUUID().slice(0, 8)}`, price_cents: 1250, stock: 10, ...fields },
  })
  expect(res.status).toBe(201)
  return res.json as { id: string; name: string; price_cents: number; stock: number }
}

/** The text of the page without its tags, spaces squeezed: what a person reads. */
const shown = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/&amp;/g, '&').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/\s+/g, ' ')
const csrfOf = (html: string) => /name="_csrf" value="([^"]*)"/.exec(html)?.[1]


/** The checkout form of a cart page, as the browser would send it: every line's product and quantity, the total shown, the key. */
const checkoutForm = (html: string) => {
  const all = (field: string) => [...html.matchAll(new RegExp(`name="${field}" value="([^"]+)"`, 'g'))].map((m) => m[1]!)
  return { idempotency_key: all('idempotency_key')[0]!, total_cents: all('total_cents')[0]!, product_id: all('product_id'), quantity: all('quantity') }
}
describe('every page', () => {
  it('carries a Content-Security-Policy without inline script or style, and the other security headers', async () => {
    const page = await browser().get('/')
    expect(page.status).toBe(200)
    const csp = page.headers.get('Content-Security-Policy')!
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("style-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(page.headers.get('Referrer-Policy')).toBe('same-origin')
    expect(page.headers.get('X-Content-Type-Options')).toBe('nosniff')
    expect(page.headers.get('X-Frame-Options')).toBe('DENY')
    expect(page.headers.get('Cache-Control')).toBe('no-store')
    // No inline script or style for the policy to refuse: every script and sheet is a file of ours.
    expect(page.text).not.toMatch(/<script(?![^>]*\ssrc=)/)
    expect(page.text).not.toMatch(/<style|\sstyle=/)
  })

  it('escapes what the catalog holds: a product named <script> is text', async () => {
    const tag = randomUUID().slice(0, 8)
    const hostile = await newProduct({ name: `<script>alert(1)</script> ${tag}`, description: `<img src=x onerror=alert(2)> "quoted" & more` })
    const list = await browser().get(`/?q=${tag}`)
    const one = await browser().get(`/products/${hostile.id}`)
    for (const page of [list, one]) {
      expect(page.text).not.toContain('<script>alert(1)</script>')
      expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
      expect(page.text).not.toContain('<img src=x')
    }
    expect(one.text).toContain('&lt;img src=x onerror=alert(2)&gt;')
  })

  it('serves its stylesheet and script from this origin, cacheable for good', async () => {
    for (const a of Object.values(assets)) {
      const res = await web.request(a.path)
      expect(res.status).toBe(200)
      expect(res.headers.get('Cache-Control')).toContain('immutable')
      expect(res.headers.get('Content-Type')).toBe(a.type)
    }
    const script = await (await web.request(assets.liveStatus.path)).text()
    expect(script).toContain('data-status-url')
    // Valid JavaScript on its own: nothing of the server's module leaked into it.
    expect(() => new Function(script)).not.toThrow()
  })

  it('answers an unknown address with a 404 page, and one under /api/ as problem+json', async () => {
    const page = await browser().get('/no/such/page')
    expect(page.status).toBe(404)
    expect(shown(page.text)).toContain('Page not found')
    const api = await web.request('/api/nothing-here', { headers: { 'X-Request-Id': 'test-404' } })
    expect(api.status).toBe(404)
    expect(api.headers.get('Content-Type')).toBe('application/problem+json')
    expect(await api.json()).toMatchObject({ status: 404, instance: '/api/nothing-here', request_id: 'test-404' })
    // A client that does not ask for HTML gets the same, wherever it asks.
    expect((await web.request('/nope', { method: 'POST' })).headers.get('Content-Type')).toBe('application/problem+json')
  })

  it('keeps /healthz and /metrics from requests that came through a proxy', async () => {
    expect((await web.request('/healthz')).status).toBe(200)
    expect((await web.request('/metrics')).status).toBe(200)
    const hidden = await web.request('/healthz', { headers: { 'X-Forwarded-For': '203.0.113.9', 'X-Request-Id': 'probe-1' } })
    expect(hidden.status).toBe(404)
    // A 404 like every other, its request id in the body too.
    expect(await hidden.json()).toMatchObject({ status: 404, request_id: 'probe-1' })
    expect((await web.request('/metrics', { headers: { 'X-Forwarded-Host': 'shop.example' } })).status).toBe(404)
  })
})

describe('the catalog', () => {
  it('searches and pages: twelve to a page, with links to the next and previous', async () => {
    const tag = `pg${randomUUID().slice(0, 8)}`
    for (let i = 0; i < 13; i++) await newProduct({ name: `Kettle ${tag} ${String(i).padStart(2, '0')}` })
    const b = browser()
    const first = await b.get(`/?q=${tag}`)
    expect(first.status).toBe(200)
    expect(shown(first.text)).toContain(`Results for “${tag}”`)
    expect(shown(first.text)).toContain('13 products')
    expect(first.text.match(/class="card"/g)).toHaveLength(12)
    expect(shown(first.text)).toContain('Page 1 of 2')
    expect(first.text).toContain(`href="/?q=${tag}&amp;page=2"`)
    const second = await b.get(`/?q=${tag}&page=2`)
    expect(second.text.match(/class="card"/g)).toHaveLength(1)
    expect(second.text).toContain(`href="/?q=${tag}"`)
    const none = await b.get(`/?q=${tag}nothing`)
    expect(shown(none.text)).toContain('No product matches your search.')
  })

  it('shows a search the API refuses beside the search field', async () => {
    const page = await browser().get(`/?q=${'x'.repeat(150)}`)
    expect(page.status).toBe(400)
    expect(page.text).toMatch(/<p class="error" id="f-q-error">Q must be at most 100 characters\.<\/p>/)
    expect(page.text).toContain('aria-describedby="f-q-error"')
  })

  it('shows a product’s price and what is left: “3 left”, or “Sold out” with the button disabled', async () => {
    const few = await newProduct({ stock: 3, price_cents: 1999 })
    const none = await newProduct({ stock: 0 })
    const b = browser()
    await b.register()
    const fewPage = shown((await b.get(`/products/${few.id}`)).text)
    expect(fewPage).toContain('€19.99')
    expect(fewPage).toContain('3 left')
    const nonePage = await b.get(`/products/${none.id}`)
    expect(shown(nonePage.text)).toContain('Sold out')
    expect(nonePage.text).toMatch(/<button type="button" class="big" disabled="">Sold out<\/button>/)
    expect(nonePage.text).not.toContain('action="/cart/items"')
    // Someone not signed in is asked to log in first, and comes back here after.
    const anonymous = await browser().get(`/products/${few.id}`)
    expect(anonymous.text).toContain(`href="/login?next=%2Fproducts%2F${few.id}"`)
  })

  it('answers 404 for a product that does not exist, or an address that is not one', async () => {
    expect((await browser().get(`/products/${randomUUID()}`)).status).toBe(404)
    expect((await browser().get('/products/not-a-uuid')).status).toBe(404)
  })
})

describe('accounts', () => {
  it('registers, logs in at once with an HttpOnly SameSite=Lax cookie, and greets the user by name', async () => {
    const b = browser()
    await b.get('/register')
    const email = uniqueEmail('ada')
    const res = await b.post('/register', { name: 'Ada Lovelace', email, password: 'correct horse battery' })
    expect(res.status).toBe(303)
    expect(res.location).toBe('/')
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('shop_session='))!
    expect(cookie).toContain('HttpOnly')
    expect(cookie).toContain('SameSite=Lax')
    expect(cookie).toContain('Path=/')
    expect(cookie).not.toContain('Secure')
    const home = shown((await b.follow(res)).text)
    expect(home).toContain('Welcome, Ada Lovelace! Your account is ready.')
    expect(home).toContain('Log out')
    // The notice shows once.
    expect(shown((await b.get('/')).text)).not.toContain('Welcome, Ada')
  })

  it('keeps no token in the browser: the cookie is a random key, the access token stays in the database', async () => {
    const b = browser()
    await b.register()
    const token = b.jar.get('shop_session')!
    expect(token).toMatch(/^[\w-]{43}$/)
    const { rows } = await pool.query<{ access_token: string }>("SELECT access_token FROM web.sessions WHERE token_hash = sha256(convert_to($1, 'UTF8'))", [token])
    expect(rows[0]!.access_token.split('.')).toHaveLength(3)
  })

  it('marks the cookie Secure when the request came over TLS', async () => {
    const res = await browser({ 'X-Forwarded-Proto': 'https' }).get('/login')
    expect(res.headers.getSetCookie().find((c) => c.startsWith('shop_session='))).toContain('Secure')
  })

  it('shows each error beside its field: a missing name, a short password, a taken email', async () => {
    const b = browser()
    await b.get('/register')
    const missing = await b.post('/register', { name: ' ', email: uniqueEmail(), password: 'correct horse' })
    expect(missing.status).toBe(400)
    expect(missing.text).toMatch(/<p class="error" id="f-name-error">Enter your name\.<\/p>/)
    expect(missing.text).toMatch(/id="f-name"[^>]*aria-invalid="true"[^>]*aria-describedby="f-name-error"|aria-invalid="true" aria-describedby="f-name-error"[^>]*id="f-name"/)
    const short = await b.post('/register', { name: 'Ada', email: uniqueEmail(), password: 'short' })
    expect(short.status).toBe(400)
    expect(short.text).toMatch(/<p class="error" id="f-password-error">Password must be at least 8 characters\.<\/p>/)
    const taken = (await b.register()).email
    const again = browser()
    await again.get('/register')
    const clash = await again.post('/register', { name: 'Ada', email: taken, password: 'correct horse battery' })
    expect(clash.status).toBe(409)
    expect(clash.text).toMatch(/<p class="error" id="f-email-error">An account with this email address exists already/)
    // What was typed is kept; the password never is.
    expect(clash.text).toContain(`value="${taken}"`)
    expect(clash.text).not.toContain('correct horse battery')
  })

  it('refuses a wrong password with an error, and logs in to the page it was sent from', async () => {
    const b = browser()
    const { email } = await b.register()
    await b.post('/logout')
    const wrong = await b.login(email, 'not the password')
    expect(wrong.status).toBe(400)
    expect(shown(wrong.text)).toContain('The email address or the password is wrong.')
    const sent = await b.get('/orders')
    expect(sent.status).toBe(303)
    expect(sent.location).toBe('/login?next=%2Forders')
    await b.get(sent.location!)
    const back = await b.post('/login', { email, password: 'correct horse battery', next: '/orders' })
    expect(back.location).toBe('/orders')
    expect(shown((await b.follow(back)).text)).toContain('My orders')
  })

  it('says so when auth locks the logins of an email from this address', async () => {
    const b = browser()
    const { email } = await b.register()
    await b.post('/logout')
    for (let i = 0; i < 10; i++) expect((await b.login(email, `wrong password ${i}`)).status).toBe(400)
    const locked = await b.login(email, 'correct horse battery')
    expect(locked.status).toBe(429)
    expect(shown(locked.text)).toContain('Too many failed logins for this email from this address; try again later.')
    // Another address is not locked out.
    expect((await browser().login(email, 'correct horse battery')).status).toBe(303)
  })

  it('never sends a login to another site', () => {
    expect(localPath('/cart?x=1')).toBe('/cart?x=1')
    for (const evil of ['//evil.example/x', 'https://evil.example', '/\\evil.example', 'javascript:alert(1)', undefined, '/.//evil.example/x', '/a/..//evil.example', '/%2e//evil.example', '/%2e%2e//evil.example']) expect(localPath(evil)).toBe('/')
  })

  it('ends the session on logout: the old cookie opens nothing, and its row is gone', async () => {
    const b = browser()
    await b.register()
    const token = b.jar.get('shop_session')!
    const out = await b.post('/logout')
    expect(out.status).toBe(303)
    expect(out.headers.getSetCookie().join()).toMatch(/shop_session=;.*Max-Age=0/)
    const stolen = await web.request('/cart', { headers: { Cookie: `shop_session=${token}` } })
    expect(stolen.status).toBe(303)
    expect(stolen.headers.get('Location')).toBe('/login?next=%2Fcart')
    const { rowCount } = await pool.query("SELECT 1 FROM web.sessions WHERE token_hash = sha256(convert_to($1, 'UTF8'))", [token])
    expect(rowCount).toBe(0)
  })

  it('gives a new session key and CSRF token at login: one known before it is worth nothing after', async () => {
    const b = browser()
    const { email } = await b.register()
    await b.post('/logout')
    const before = await b.get('/login')
    const fixed = b.jar.get('shop_session')
    await b.post('/login', { email, password: 'correct horse battery' })
    expect(b.jar.get('shop_session')).not.toBe(fixed)
    const old = await web.request('/cart', { headers: { Cookie: `shop_session=${fixed}` } })
    expect(old.status).toBe(303)
    expect(csrfOf((await b.get('/')).text)).not.toBe(csrfOf(before.text))
  })
})

describe('the CSRF check', () => {
  it('refuses a form without the session’s token, or with another’s, and changes nothing', async () => {
    const p = await newProduct()
    const b = browser()
    await b.register()
    const other = browser()
    await other.register()
    const stranger = csrfOf((await other.get('/')).text)
    for (const token of [undefined, '', 'x'.repeat(43), stranger]) {
      const forged = await b.post('/cart/items', { _csrf: token, product_id: p.id, quantity: '1' })
      expect(forged.status).toBe(403)
      expect(shown(forged.text)).toContain('This form has expired')
    }
    expect(shown((await b.get('/cart')).text)).toContain('Your cart is empty.')
  })

  it('guards every POST route of the app, whoever is signed in', async () => {
    const b = browser()
    await b.login(adminLogin.email, adminLogin.password)
    const posts = [...new Set(web.routes.filter((r) => r.method === 'POST' && r.path !== '/*').map((r) => r.path))]
    expect(posts.length).toBeGreaterThanOrEqual(11)
    for (const path of posts) {
      const res = await b.post(path.replace(/:id\b/, randomUUID()), { _csrf: undefined, quantity: '1', stock: '1', name: 'x', price: '1' })
      expect(res.status, path).toBe(403)
      expect(shown(res.text), path).toContain('This form has expired')
    }
  })

  it('refuses a login or a logout posted without a token', async () => {
    const b = browser()
    await b.register()
    expect((await b.post('/logout', { _csrf: undefined })).status).toBe(403)
    expect(shown((await b.get('/')).text)).toContain('Log out')
    expect((await browser().post('/login', { _csrf: undefined, email: 'a@example.test', password: 'x' })).status).toBe(403)
  })

  it('puts the token in every form that posts', async () => {
    const p = await newProduct()
    const b = browser()
    await b.register()
    await b.get(`/products/${p.id}`)
    await b.post('/cart/items', { product_id: p.id, quantity: '1' })
    for (const path of ['/', `/products/${p.id}`, '/cart']) {
      const html = (await b.get(path)).text
      const forms = html.match(/<form[^>]*method="post"[\s\S]*?<\/form>/g) ?? []
      expect(forms.length, path).toBeGreaterThan(0)
      for (const form of forms) expect(form, path).toMatch(/name="_csrf" value="[\w-]{43}"/)
    }
  })
})

describe('the cart', () => {
  it('adds, changes and removes lines, with names, prices, line totals and the total from the catalog', async () => {
    const mug = await newProduct({ price_cents: 1250 })
    const jug = await newProduct({ price_cents: 300 })
    const b = browser()
    await b.register()
    await b.get(`/products/${mug.id}`)
    const added = await b.post('/cart/items', { product_id: mug.id, quantity: '2' })
    expect(added.location).toBe('/cart')
    let cart = shown((await b.follow(added)).text)
    expect(cart).toContain(`Added 2 × ${mug.name} to your cart.`)
    await b.post('/cart/items', { product_id: jug.id, quantity: '1' })
    cart = shown((await b.get('/cart')).text)
    expect(cart).toContain(mug.name)
    expect(cart).toContain(jug.name)
    expect(cart).toContain('€25.00') // 2 × €12.50
    expect(cart).toContain('Total €28.00')
    const changed = await b.post(`/cart/items/${jug.id}`, { action: 'update', quantity: '3' })
    cart = shown((await b.follow(changed)).text)
    expect(cart).toContain('Updated the quantity.')
    expect(cart).toContain('Total €34.00')
    // The catalog's price now, not the one when the line was added.
    await call(catalog, 'PATCH', `/api/products/${mug.id}`, { token: admin, body: { price_cents: 1000 } })
    expect(shown((await b.get('/cart')).text)).toContain('Total €29.00')
    const removed = await b.post(`/cart/items/${mug.id}`, { action: 'remove' })
    cart = shown((await b.follow(removed)).text)
    expect(cart).toContain('Removed the line from your cart.')
    expect(cart).not.toContain(mug.name)
    expect(cart).toContain('Total €9.00')
  })

  it('shows a bad quantity beside its line, and an add of more than is left beside the quantity', async () => {
    const p = await newProduct({ stock: 2 })
    const b = browser()
    await b.register()
    await b.get(`/products/${p.id}`)
    const tooMany = await b.post('/cart/items', { product_id: p.id, quantity: '5' })
    expect(tooMany.status).toBe(409)
    expect(tooMany.text).toMatch(/<p class="error" id="f-quantity-error">Only 2 left: choose 2 or fewer\.<\/p>/)
    const notANumber = await b.post('/cart/items', { product_id: p.id, quantity: 'lots' })
    expect(notANumber.status).toBe(400)
    expect(notANumber.text).toContain('Enter a quantity from 1 to 999.')
    await b.post('/cart/items', { product_id: p.id, quantity: '1' })
    await b.get('/cart')
    const bad = await b.post(`/cart/items/${p.id}`, { action: 'update', quantity: '-4' })
    expect(bad.status).toBe(400)
    expect(bad.text).toMatch(new RegExp(`<p class="error" id="q-${p.id}-error">Enter a quantity from 0 to 999\\.</p>`))
  })

  it('marks a product sold out, short or gone, and will not check out until the line is changed', async () => {
    const [short, gone, fine] = [await newProduct({ stock: 5 }), await newProduct(), await newProduct()]
    const b = browser()
    await b.register()
    await b.get('/')
    for (const p of [short, gone, fine]) await b.post('/cart/items', { product_id: p.id, quantity: '2' })
    await call(catalog, 'POST', `/api/products/${short.id}/stock`, { token: admin, body: { delta: -4 } })
    await call(catalog, 'DELETE', `/api/products/${gone.id}`, { token: admin })
    const page = await b.get('/cart')
    const text = shown(page.text)
    expect(text).toContain('Only 1 left: lower the quantity.')
    expect(text).toContain('A product no longer sold')
    expect(text).toContain('No longer sold: remove it to check out.')
    expect(text).toContain('Change or remove the marked lines to check out.')
    expect(page.text).toMatch(/<button type="submit" class="big" disabled=""/)
  })
})

describe('checking out', () => {
  it('places one order for one checkout form, however many times it is sent', async () => {
    const p = await newProduct({ stock: 10, price_cents: 700 })
    const b = browser()
    const { id: userId } = await b.register()
    await b.get('/')
    await b.post('/cart/items', { product_id: p.id, quantity: '2' })
    const cart = await b.get('/cart')
    const form = checkoutForm(cart.text)
    const [first, second] = await Promise.all([b.post('/checkout', form), b.post('/checkout', form)])
    const third = await b.post('/checkout', form)
    for (const r of [first, second, third]) expect(r.status, r.text.slice(0, 300)).toBe(303)
    expect(new Set([first.location, second.location, third.location]).size).toBe(1)
    const { rows } = await pool.query('SELECT id FROM orders.orders WHERE user_id = $1', [userId])
    expect(rows).toHaveLength(1)
    const order = shown((await b.get(first.location!)).text)
    expect(order).toContain('Thank you! Your order is placed')
    expect(order).toContain('Awaiting payment')
    expect(order).toContain('€14.00')
    const { rows: stock } = await pool.query('SELECT stock FROM product.products WHERE id = $1', [p.id])
    expect(stock[0].stock).toBe(8)
  })

  it('orders nothing at a price the cart did not show: a price changed after the page was shown', async () => {
    const p = await newProduct({ stock: 10, price_cents: 100 })
    const b = browser()
    const { id: userId } = await b.register()
    await b.get('/')
    await b.post('/cart/items', { product_id: p.id, quantity: '1' })
    const cart = await b.get('/cart')
    const form = checkoutForm(cart.text)
    expect(form.total_cents).toBe('100')
    await call(catalog, 'PATCH', `/api/products/${p.id}`, { token: admin, body: { price_cents: 50_000 } })
    const res = await b.post('/checkout', form)
    expect(res.status).toBe(409)
    expect(shown(res.text)).toContain('The prices changed since the cart was shown: the order came to €500.00, not €1.00. Nothing was ordered')
    const { rows } = await pool.query('SELECT status FROM orders.orders WHERE user_id = $1', [userId])
    expect(rows.map((r) => r.status)).toEqual(['cancelled'])
    // The form sent again says the same, and charges nothing.
    expect((await b.post('/checkout', form)).status).toBe(409)
  })

  it('shows out of stock on the lines that caused it, and orders nothing', async () => {
    const [a, b2] = [await newProduct({ stock: 3 }), await newProduct({ stock: 3 })]
    const b = browser()
    const { id: userId } = await b.register()
    await b.get('/')
    await b.post('/cart/items', { product_id: a.id, quantity: '2' })
    await b.post('/cart/items', { product_id: b2.id, quantity: '1' })
    await b.get('/cart')
    // Someone else buys meanwhile: what the form says is no longer there.
    await call(catalog, 'POST', `/api/products/${a.id}/stock`, { token: admin, body: { delta: -2 } })
    const res = await b.post('/checkout', {
      idempotency_key: randomUUID(),
      total_cents: '0',
      product_id: [a.id, b2.id],
      quantity: ['2', '1'],
    })
    expect(res.status).toBe(409)
    const text = shown(res.text)
    expect(text).toContain('Nothing was ordered')
    expect(text).toContain('Only 1 left: lower the quantity.')
    expect((await pool.query('SELECT 1 FROM orders.orders WHERE user_id = $1', [userId])).rowCount).toBe(0)
  })
})

describe('orders', () => {
  const placeOrder = async (b: ReturnType<typeof browser>, price_cents = 500) => {
    const p = await newProduct({ price_cents })
    await b.get('/')
    await b.post('/cart/items', { product_id: p.id, quantity: '1' })
    const cart = await b.get('/cart')
    const form = checkoutForm(cart.text)
    const placed = await b.post('/checkout', form)
    return placed.location!.split('/').at(-1)!
  }
  const pay = (orderId: string, userId: string, status: 'succeeded' | 'failed') =>
    postEvent(orders, '/events/payment.status', {
      type: 'payment.status',
      source: '/shop/payment',
      data: { payment_id: randomUUID(), order_id: orderId, user_id: userId, status, amount_cents: 500, processed_at: new Date().toISOString() },
    })

  it('gives the order page a live status: the script, and the JSON it polls, from pending to paid', async () => {
    const b = browser()
    const { id: userId } = await b.register()
    const id = await placeOrder(b)
    const page = await b.get(`/orders/${id}`)
    expect(page.text).toContain(`data-status-url="/orders/${id}/status"`)
    expect(page.text).toContain(`<script src="${assets.liveStatus.path}" defer="">`)
    expect(page.text).toContain(`action="/orders/${id}/cancel"`)
    const before = JSON.parse((await b.get(`/orders/${id}/status`)).text)
    expect(before).toEqual({ status: 'pending', label: 'Awaiting payment', payment: 'Being processed', pending: true, final: false })
    expect((await pay(id, userId, 'succeeded')).status).toBe(204)
    const after = await b.get(`/orders/${id}/status`)
    expect(after.headers.get('Cache-Control')).toBe('no-store')
    expect(JSON.parse(after.text)).toEqual({ status: 'paid', label: 'Paid', payment: 'Charged', pending: false, final: true })
    const paid = await b.get(`/orders/${id}`)
    expect(shown(paid.text)).toContain('Status: Paid')
    // Final: no script, no cancel.
    expect(paid.text).not.toContain('<script')
    expect(paid.text).not.toContain('/cancel')
  })

  it('answers the status only to the order’s owner', async () => {
    const b = browser()
    await b.register()
    const id = await placeOrder(b)
    const other = browser()
    await other.register()
    expect((await other.get(`/orders/${id}/status`)).status).toBe(404)
    expect((await other.get(`/orders/${id}`)).status).toBe(404)
    expect((await browser().get(`/orders/${id}/status`)).status).toBe(401)
  })

  it('cancels while pending, and says so when it is too late', async () => {
    const b = browser()
    const { id: userId } = await b.register()
    const id = await placeOrder(b)
    await b.get(`/orders/${id}`)
    const cancelled = await b.post(`/orders/${id}/cancel`)
    const page = shown((await b.follow(cancelled)).text)
    expect(page).toContain('Your order is cancelled.')
    expect(page).toContain('Status: Cancelled')
    const late = await placeOrder(b)
    await pay(late, userId, 'failed')
    await b.get(`/orders/${late}`)
    const refused = await b.post(`/orders/${late}/cancel`)
    const latePage = shown((await b.follow(refused)).text)
    expect(latePage).toContain('This order can no longer be cancelled')
    expect(latePage).toContain('Status: Payment failed')
  })

  it('keeps watching a cancelled order until its charge is refunded, and says what became of the payment', () => {
    expect(liveStatusOf({ status: 'cancelled', payment_status: 'succeeded' })).toEqual({ status: 'cancelled', label: 'Cancelled', payment: 'Charged; a refund is on its way', pending: false, final: false })
    expect(liveStatusOf({ status: 'cancelled', payment_status: 'refunded' })).toEqual({ status: 'cancelled', label: 'Cancelled', payment: 'Refunded', pending: false, final: true })
    expect(liveStatusOf({ status: 'cancelled', payment_status: null })).toMatchObject({ payment: 'Not charged', final: true })
    expect(liveStatusOf({ status: 'expired', payment_status: null })).toMatchObject({ label: 'Expired', final: true })
    expect(liveStatusOf({ status: 'payment_failed', payment_status: 'failed' })).toMatchObject({ label: 'Payment failed', payment: 'Declined', final: true })
  })

  it('lists my orders, newest first, and no one else’s', async () => {
    const b = browser()
    await b.register()
    const first = await placeOrder(b, 300)
    const second = await placeOrder(b, 400)
    const other = browser()
    await other.register()
    await placeOrder(other)
    const list = await b.get('/orders')
    const text = shown(list.text)
    expect(text.indexOf(`#${second.slice(0, 8)}`)).toBeLessThan(text.indexOf(`#${first.slice(0, 8)}`))
    expect(list.text.match(/href="\/orders\/[0-9a-f-]{36}"/g)).toHaveLength(2)
  })
})

describe('the admin’s pages', () => {
  const adminBrowser = async () => {
    const b = browser()
    await b.login(adminLogin.email, adminLogin.password)
    return b
  }

  it('are for admins: a customer gets 403, someone not signed in the login page', async () => {
    const b = browser()
    await b.register()
    for (const path of ['/admin/products', '/admin/orders']) {
      const page = await b.get(path)
      expect(page.status).toBe(403)
      expect(shown(page.text)).toContain('This page is for the shop’s admins.')
      expect((await browser().get(path)).location).toBe(`/login?next=${encodeURIComponent(path)}`)
    }
    const p = await newProduct()
    await b.get('/')
    expect((await b.post(`/admin/products/${p.id}/delete`)).status).toBe(403)
    expect((await call(catalog, 'GET', `/api/products/${p.id}`)).status).toBe(200)
  })

  it('create, edit, set the stock of and delete a product, with errors beside their fields', async () => {
    const b = await adminBrowser()
    const name = `Grinder ${randomUUID().slice(0, 8)}`
    await b.get('/admin/products')
    const bad = await b.post('/admin/products', { name: '', description: '', price: 'cheap', stock: '-1' })
    expect(bad.status).toBe(400)
    expect(bad.text).toMatch(/<p class="error" id="f-name-error">Enter the product’s name\.<\/p>/)
    expect(bad.text).toMatch(/<p class="error" id="f-price-error">Enter a price like 12\.50\.<\/p>/)
    expect(bad.text).toMatch(/<p class="error" id="f-stock-error">Enter the units in stock/)
    const made = await b.post('/admin/products', { name, description: 'Conical burrs', price: '129.5', stock: '4' })
    expect(shown((await b.follow(made)).text)).toContain(`Added “${name}” to the catalog.`)
    const { rows } = await pool.query('SELECT id, price_cents, stock FROM product.products WHERE name = $1', [name])
    expect(rows[0]).toMatchObject({ price_cents: 12950, stock: 4 })
    const id = rows[0].id as string

    await b.get(`/admin/products/${id}`)
    const edited = await b.post(`/admin/products/${id}`, { name: `${name} Pro`, description: 'Steel burrs', price: '149,00' })
    expect(shown((await b.follow(edited)).text)).toContain(`Saved “${name} Pro”.`)
    const stocked = await b.post(`/admin/products/${id}/stock`, { stock: '1' })
    expect(shown((await b.follow(stocked)).text)).toContain(`The stock of “${name} Pro” is 1.`)
    // The same form again sets the same stock, not twice the change.
    await b.post(`/admin/products/${id}/stock`, { stock: '1' })
    expect((await pool.query('SELECT name, price_cents, stock FROM product.products WHERE id = $1', [id])).rows[0]).toEqual({ name: `${name} Pro`, price_cents: 14900, stock: 1 })
    expect(shown((await browser().get(`/products/${id}`)).text)).toContain('1 left')

    await b.get(`/admin/products/${id}`)
    const deleted = await b.post(`/admin/products/${id}/delete`)
    expect(shown((await b.follow(deleted)).text)).toContain(`Deleted “${name} Pro”.`)
    expect((await browser().get(`/products/${id}`)).status).toBe(404)
  })

  it('list every user’s orders with their buyer and status, filtered by status', async () => {
    const shopper = browser()
    const { email } = await shopper.register()
    const p = await newProduct({ price_cents: 4200 })
    await shopper.get('/')
    await shopper.post('/cart/items', { product_id: p.id, quantity: '1' })
    const cart = await shopper.get('/cart')
    const form = checkoutForm(cart.text)
    const orderId = (await shopper.post('/checkout', form)).location!.split('/').at(-1)!

    const b = await adminBrowser()
    const pending = shown((await b.get('/admin/orders?status=pending')).text)
    expect(pending).toContain(`#${orderId.slice(0, 8)}`)
    expect(pending).toContain(email)
    expect(pending).toContain(`1 × ${p.name}`)
    expect(pending).toContain('Awaiting payment')
    const paid = shown((await b.get('/admin/orders?status=paid')).text)
    expect(paid).not.toContain(`#${orderId.slice(0, 8)}`)
    const page = await b.get('/admin/orders?status=pending')
    expect(page.text).toMatch(/<option value="pending" selected="">Awaiting payment<\/option>/)
  })
})
