import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { appDeps } from '../test/support.ts'
import { originsVar } from './config.ts'
import { CORS_EXPOSED_HEADERS, CORS_METHODS, CORS_REQUEST_HEADERS, withCors } from './cors.ts'
import { createApp } from './http.ts'

const SHOP = 'https://shop.example.com'

function app(origins: string[]) {
  const inner = createApp(appDeps())
  inner.get('/api/things', (c) => c.json({ ok: true }))
  inner.post('/api/things', (c) => c.json({ ok: true }, 201))
  return withCors(inner, origins)
}

const preflight = (origin: string, method = 'POST', headers = 'authorization,content-type') =>
  app([SHOP]).fetch(
    new Request('http://x/api/things', {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers },
    }),
  )

describe('CORS', () => {
  it('answers a preflight from a listed origin: the documented methods and headers, no credentials', async () => {
    const res = await preflight(SHOP)
    expect(res.status).toBe(204)
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe(SHOP)
    expect(res.headers.get('Access-Control-Allow-Methods')?.split(',')).toEqual([...CORS_METHODS])
    expect(res.headers.get('Access-Control-Allow-Headers')?.split(',')).toEqual([...CORS_REQUEST_HEADERS])
    expect(res.headers.get('Access-Control-Max-Age')).toBe('600')
    expect(res.headers.get('Access-Control-Allow-Credentials')).toBeNull()
    expect(res.headers.get('Vary')).toMatch(/Origin/)
  })

  it('lets a listed origin read the answer and our headers, never with credentials', async () => {
    const res = await app([SHOP]).fetch(new Request('http://x/api/things', { headers: { Origin: SHOP } }))
    expect(res.status).toBe(200)
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe(SHOP)
    expect(res.headers.get('Access-Control-Expose-Headers')?.split(',')).toEqual([...CORS_EXPOSED_HEADERS])
    expect(res.headers.get('Access-Control-Allow-Credentials')).toBeNull()
    expect(res.headers.get('Vary')).toMatch(/Origin/)
    expect(res.headers.get('X-Request-Id')).toBeTruthy()
    expect(await res.json()).toEqual({ ok: true })
  })

  it('gives another origin nothing: no CORS headers, and its preflight is a 405 like any OPTIONS', async () => {
    const res = await app([SHOP]).fetch(new Request('http://x/api/things', { headers: { Origin: 'https://evil.example' } }))
    expect(res.status).toBe(200)
    expect(res.headers.get('Access-Control-Allow-Origin')).toBeNull()
    expect(res.headers.get('Vary')).toMatch(/Origin/)
    const pre = await preflight('https://evil.example')
    expect(pre.status).toBe(405)
    expect(pre.headers.get('Access-Control-Allow-Origin')).toBeNull()
    expect(pre.headers.get('Content-Type')).toBe('application/problem+json')
  })

  it('is off without origins: OPTIONS is a 405 and no answer has a CORS header', async () => {
    const off = app([])
    const pre = await off.fetch(new Request('http://x/api/things', { method: 'OPTIONS', headers: { Origin: SHOP, 'Access-Control-Request-Method': 'POST' } }))
    expect(pre.status).toBe(405)
    const res = await off.fetch(new Request('http://x/api/things', { headers: { Origin: SHOP } }))
    expect([...res.headers.keys()].filter((h) => h.startsWith('access-control'))).toEqual([])
  })

  it('reads CORS_ORIGINS as a comma list of origins, none when unset, and refuses anything else', () => {
    expect(v.parse(originsVar(), undefined)).toEqual([])
    expect(v.parse(originsVar(), ' https://a.example , http://localhost:5173,')).toEqual(['https://a.example', 'http://localhost:5173'])
    for (const bad of ['https://a.example/', 'a.example', 'https://a.example/path', 'ftp://a.example', '*', 'https://A.example']) {
      expect(v.safeParse(originsVar(), bad).success, bad).toBe(false)
    }
  })
})
