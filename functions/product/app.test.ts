import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { appDeps, call, testKeys, testPool } from '../../test/support.ts'
import { productApp } from './app.ts'

const pool = testPool()
let keys: Awaited<ReturnType<typeof testKeys>>
let app: ReturnType<typeof productApp>
let admin: string
let customer: string

beforeAll(async () => {
  keys = await testKeys()
  app = productApp({ pool, ...appDeps(), verify: keys.verify })
  admin = await keys.tokenFor({ role: 'admin' })
  customer = await keys.tokenFor()
})

const tag = () => `t${randomUUID().slice(0, 8)}`
const create = async (body: Record<string, unknown> = {}) => {
  const res = await call(app, 'POST', '/api/products', {
    token: admin,
    body: { name: `Mug ${tag()}`, description: 'ceramic', price_cents: 1250, stock: 5, ...body },
  })
  expect(res.status).toBe(201)
  return res.json as { id: string; name: string; stock: number; price_cents: number }
}

describe('GET /api/products', () => {
  it('lists newest first with limit, offset and total, searching names case-insensitively', async () => {
    const t = tag()
    const a = await create({ name: `Alpha ${t} kettle` })
    const b = await create({ name: `beta ${t.toUpperCase()} KETTLE` })
    await create({ name: `Gamma ${t} spoon` })
    const res = await call(app, 'GET', `/api/products?q=${t}%20KeTtLe&limit=1`)
    expect(res.status).toBe(200)
    expect(res.json).toMatchObject({ total: 2, limit: 1, offset: 0 })
    expect(res.json.items.map((p: { id: string }) => p.id)).toEqual([b.id])
    const next = await call(app, 'GET', `/api/products?q=${t}%20kettle&limit=1&offset=1`)
    expect(next.json.items.map((p: { id: string }) => p.id)).toEqual([a.id])
  })

  it('treats % and _ in a search as characters, not wildcards', async () => {
    const t = tag()
    await create({ name: `${t} 50% off` })
    await create({ name: `${t} 50 percent` })
    const res = await call(app, 'GET', `/api/products?q=${encodeURIComponent(`${t} 50%`)}`)
    expect(res.json.total).toBe(1)
    expect((await call(app, 'GET', `/api/products?q=${t}_`)).json.total).toBe(0)
  })

  it('defaults to 20 items', async () => {
    const res = await call(app, 'GET', '/api/products')
    expect(res.json.limit).toBe(20)
    expect(res.json.items.length).toBeLessThanOrEqual(20)
  })

  it.each([
    ['limit=0'], ['limit=101'], ['limit=-1'], ['limit=abc'], ['limit=1.5'], ['offset=-1'], ['offset=99999999999'],
    ['limit=1&limit=2'], ['sort=price'], [`q=${'x'.repeat(101)}`],
  ])('answers 400 problem+json for ?%s', async (query) => {
    const res = await call(app, 'GET', `/api/products?${query}`)
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.json.errors.length).toBeGreaterThan(0)
  })
})

describe('text PostgreSQL cannot store, in a search', () => {
  it.each([
    ['a NUL', '%00', 'must not contain the NUL character (U+0000)'],
    ['a NUL inside a word', 'mu%00g', 'must not contain the NUL character (U+0000)'],
  ])('answers 400 naming q for %s (?q=%s), not 500', async (_, q, message) => {
    const res = await call(app, 'GET', `/api/products?q=${q}`)
    expect(res.status).toBe(400)
    expect(res.headers.get('Content-Type')).toBe('application/problem+json')
    expect(res.json.errors).toEqual([{ path: 'q', message }])
  })

  it('searches for bytes that are not UTF-8 (?q=%FF, an encoded surrogate) as the text they came as: no match, no error', async () => {
    for (const q of ['%FF', '%ED%A0%80', '%C0%80']) {
      const res = await call(app, 'GET', `/api/products?q=${q}`)
      expect(res.status).toBe(200)
      expect(res.json.total).toBe(0)
    }
  })

  it('says a query parameter given twice must be given once', async () => {
    const res = await call(app, 'GET', '/api/products?q=a&q=b')
    expect(res.status).toBe(400)
    expect(res.json.errors).toEqual([{ path: 'q', message: 'must be given once' }])
  })
})

describe('GET /api/products/:id', () => {
  it('returns a product with all its fields', async () => {
    const p = await create()
    const res = await call(app, 'GET', `/api/products/${p.id}`)
    expect(res.status).toBe(200)
    expect(Object.keys(res.json).sort()).toEqual(['created_at', 'description', 'id', 'name', 'price_cents', 'stock', 'updated_at'])
  })

  it('answers 404 for an unknown id and 400 for a bad one', async () => {
    expect((await call(app, 'GET', `/api/products/${randomUUID()}`)).status).toBe(404)
    expect((await call(app, 'GET', '/api/products/not-a-uuid')).status).toBe(400)
  })
})

describe('writes', () => {
  it('creates, replaces, patches and deletes as an admin', async () => {
    const p = await create({ stock: 3 })
    const put = await call(app, 'PUT', `/api/products/${p.id}`, { token: admin, body: { name: 'Teapot', description: '', price_cents: 3000, stock: 7 } })
    expect(put.json).toMatchObject({ id: p.id, name: 'Teapot', price_cents: 3000, stock: 7 })
    const patch = await call(app, 'PATCH', `/api/products/${p.id}`, { token: admin, body: { price_cents: 0 } })
    expect(patch.json).toMatchObject({ name: 'Teapot', price_cents: 0, stock: 7 })
    expect((await call(app, 'DELETE', `/api/products/${p.id}`, { token: admin })).status).toBe(204)
    expect((await call(app, 'GET', `/api/products/${p.id}`)).status).toBe(404)
    expect((await call(app, 'DELETE', `/api/products/${p.id}`, { token: admin })).status).toBe(404)
  })

  it('refuses writes from a customer (403) and from nobody (401)', async () => {
    const p = await create()
    const body = { name: 'x', price_cents: 1 }
    expect((await call(app, 'POST', '/api/products', { token: customer, body })).status).toBe(403)
    expect((await call(app, 'PATCH', `/api/products/${p.id}`, { token: customer, body })).status).toBe(403)
    expect((await call(app, 'DELETE', `/api/products/${p.id}`, { token: customer })).status).toBe(403)
    expect((await call(app, 'POST', `/api/products/${p.id}/stock`, { token: customer, body: { delta: 1 } })).status).toBe(403)
    expect((await call(app, 'POST', '/api/products', { body })).status).toBe(401)
    expect((await call(app, 'GET', `/api/products/${p.id}`)).json.name).toBe(p.name)
  })

  it.each([
    [{ name: 'x', price_cents: 1.5 }, 'price_cents'],
    [{ name: 'x', price_cents: -1 }, 'price_cents'],
    [{ name: 'x', price_cents: '100' }, 'price_cents'],
    [{ name: 'x', price_cents: 2 ** 31 }, 'price_cents'],
    [{ name: 'x', price_cents: 1, stock: -1 }, 'stock'],
    [{ name: 'x', price_cents: 1, stock: 0.5 }, 'stock'],
    [{ name: '', price_cents: 1 }, 'name'],
    [{ name: 'x' }, 'price_cents'],
    [{ name: 'x', price_cents: 1, id: randomUUID() }, 'id'],
    [{ name: 'x', price_cents: 1, created_at: '2020-01-01' }, 'created_at'],
    [{ name: 42, price_cents: 1 }, 'name'],
  ])('answers 400 naming the field for %j', async (body, field) => {
    const res = await call(app, 'POST', '/api/products', { token: admin, body })
    expect(res.status).toBe(400)
    expect(res.json.errors.map((e: { path: string }) => e.path)).toContain(field)
  })

  it.each([
    ['POST', 'name', 'a\u0000b'],
    ['POST', 'description', '\u0000'],
    ['PUT', 'name', '\u0000'],
    ['PUT', 'description', 'tea\u0000pot'],
    ['PATCH', 'name', 'x\u0000'],
    ['PATCH', 'description', '\u0000'],
  ])('%s with a NUL in %s answers 400 naming it, not 500, and changes nothing', async (method, field, value) => {
    const p = await create()
    const whole = { name: 'Kettle', description: 'steel', price_cents: 100, stock: 1 }
    const body = method === 'PATCH' ? { [field]: value } : { ...whole, [field]: value }
    const path = method === 'POST' ? '/api/products' : `/api/products/${p.id}`
    const res = await call(app, method, path, { token: admin, body })
    expect(res.status).toBe(400)
    expect(res.json.errors).toEqual([{ path: field, message: 'must not contain the NUL character (U+0000)' }])
    expect((await call(app, 'GET', `/api/products/${p.id}`)).json).toMatchObject({ name: p.name, description: 'ceramic' })
  })

  it('answers 400 for a lone surrogate, which PostgreSQL would silently store as U+FFFD', async () => {
    const res = await call(app, 'POST', '/api/products', { token: admin, body: '{"name":"mug \\ud800","price_cents":1}' })
    expect(res.status).toBe(400)
    expect(res.json.errors).toEqual([{ path: 'name', message: 'must be valid Unicode text (it has an unpaired surrogate)' }])
    // A pair is a character like any other.
    expect((await create({ name: `mug \ud83d\ude00 ${tag()}` })).name).toMatch(/^mug 😀/)
  })

  it('says "is required" for each missing field and "is not a known field" only for extra ones', async () => {
    const p = await create()
    const post = await call(app, 'POST', '/api/products', { token: admin, body: {} })
    expect(post.status).toBe(400)
    expect(post.json.errors).toEqual([
      { path: 'name', message: 'is required' },
      { path: 'price_cents', message: 'is required' },
    ])
    const stock = await call(app, 'POST', `/api/products/${p.id}/stock`, { token: admin, body: {} })
    expect(stock.json.errors).toEqual([{ path: 'delta', message: 'is required' }])
    const extra = await call(app, 'POST', '/api/products', { token: admin, body: { name: 'x', price_cents: 1, colour: 'red' } })
    expect(extra.json.errors).toEqual([{ path: 'colour', message: 'is not a known field' }])
    const body = await call(app, 'POST', '/api/products', { token: admin, body: '["name"]' })
    expect(body.status).toBe(400)
    const scalar = await call(app, 'POST', '/api/products', { token: admin, body: '"mug"' })
    expect(scalar.json.errors).toEqual([{ path: '(body)', message: 'must be an object' }])
  })

  it('PUT takes the whole product: 400 naming every missing field, and nothing is reset', async () => {
    const p = await create({ stock: 3, description: 'ceramic' })
    const res = await call(app, 'PUT', `/api/products/${p.id}`, { token: admin, body: { name: 'x', price_cents: 500 } })
    expect(res.status).toBe(400)
    expect(res.json.errors).toEqual([
      { path: 'description', message: 'is required' },
      { path: 'stock', message: 'is required' },
    ])
    const empty = await call(app, 'PUT', `/api/products/${p.id}`, { token: admin, body: {} })
    expect(empty.json.errors.map((e: { path: string }) => e.path)).toEqual(['name', 'description', 'price_cents', 'stock'])
    expect((await call(app, 'GET', `/api/products/${p.id}`)).json).toMatchObject({ name: p.name, description: 'ceramic', price_cents: 1250, stock: 3 })
    // PATCH is for parts.
    const patch = await call(app, 'PATCH', `/api/products/${p.id}`, { token: admin, body: { name: 'x', price_cents: 500 } })
    expect(patch.json).toMatchObject({ name: 'x', description: 'ceramic', price_cents: 500, stock: 3 })
  })

  it('answers for a product named by its id in upper case', async () => {
    const p = await create()
    const upper = p.id.toUpperCase()
    expect((await call(app, 'GET', `/api/products/${upper}`)).json.id).toBe(p.id)
    expect((await call(app, 'PATCH', `/api/products/${upper}`, { token: admin, body: { stock: 9 } })).json).toMatchObject({ id: p.id, stock: 9 })
  })

  it('answers 400 for an empty PATCH and 400 for malformed JSON, 415 for another content type', async () => {
    const p = await create()
    expect((await call(app, 'PATCH', `/api/products/${p.id}`, { token: admin, body: {} })).status).toBe(400)
    const bad = await call(app, 'POST', '/api/products', { token: admin, body: '{"name": "x",' })
    expect(bad.status).toBe(400)
    expect(bad.headers.get('Content-Type')).toBe('application/problem+json')
    const form = await call(app, 'POST', '/api/products', { token: admin, body: 'name=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })
    expect(form.status).toBe(415)
  })

  it('stores SQL-looking strings as text and changes nothing else', async () => {
    const before = (await pool.query('SELECT count(*)::int AS n FROM product.products')).rows[0].n
    const name = "x'); DROP TABLE product.products; --"
    const p = await create({ name, description: "' OR 1=1 --" })
    expect((await call(app, 'GET', `/api/products/${p.id}`)).json.name).toBe(name)
    expect((await call(app, 'GET', `/api/products?q=${encodeURIComponent("' OR 1=1 --")}`)).json.total).toBe(0)
    expect((await call(app, 'GET', `/api/products/${encodeURIComponent("1' OR '1'='1")}`)).status).toBe(400)
    expect((await pool.query('SELECT count(*)::int AS n FROM product.products')).rows[0].n).toBeGreaterThanOrEqual(before + 1)
  })
})

describe('POST /api/products/:id/stock', () => {
  it('adjusts stock and answers 409 when it would go below 0', async () => {
    const p = await create({ stock: 2 })
    expect((await call(app, 'POST', `/api/products/${p.id}/stock`, { token: admin, body: { delta: 3 } })).json.stock).toBe(5)
    expect((await call(app, 'POST', `/api/products/${p.id}/stock`, { token: admin, body: { delta: -5 } })).json.stock).toBe(0)
    const res = await call(app, 'POST', `/api/products/${p.id}/stock`, { token: admin, body: { delta: -1 } })
    expect(res.status).toBe(409)
    expect((await call(app, 'GET', `/api/products/${p.id}`)).json.stock).toBe(0)
  })

  it('answers 404 for an unknown product, 400 for a bad delta, 409 past the integer range', async () => {
    expect((await call(app, 'POST', `/api/products/${randomUUID()}/stock`, { token: admin, body: { delta: 1 } })).status).toBe(404)
    const p = await create({ stock: 2 ** 31 - 10 })
    for (const delta of [0, 1.5, '1', null]) {
      expect((await call(app, 'POST', `/api/products/${p.id}/stock`, { token: admin, body: { delta } })).status).toBe(400)
    }
    expect((await call(app, 'POST', `/api/products/${p.id}/stock`, { token: admin, body: { delta: 100 } })).status).toBe(409)
  })
})
