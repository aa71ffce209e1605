/**
 * The API documents as the built bundles serve them: each function its part, auth the merged
 * documents and the docs page, all equal to what the sources describe; and CORS_ORIGINS read by a
 * bundle at start.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { appRoutes, asyncApiWhole, descriptions, openApiPart, openApiWhole } from '../functions/api-docs.ts'
import { functions } from '../functions/catalog.ts'
import { buildIfStale } from '../knative/local/runner.ts'

const root = new URL('..', import.meta.url).pathname
const jwks = JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: 'k' }] })

beforeAll(async () => {
  await buildIfStale(root, () => {})
}, 60_000)

const running: ReturnType<typeof spawn>[] = []
afterAll(async () => {
  for (const child of running) {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  }
})

/** Starts a bundle on a free port; resolves to its base URL once it listens. */
async function start(name: string, env: Record<string, string> = {}) {
  const child = spawn('node', [`dist/${name}/index.mjs`], {
    cwd: root,
    env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', DATABASE_URL: inject('databaseUrl'), JWT_PUBLIC_KEYS: jwks, PRODUCT_URL: 'http://127.0.0.1:9', MIGRATE: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.push(child)
  let output = ''
  child.stderr!.on('data', (d) => (output += d))
  return new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      output += d
      const m = /"msg":"listening","port":(\d+)/.exec(output)
      if (m) resolve(`http://127.0.0.1:${m[1]}`)
    })
    child.on('exit', (code) => reject(new Error(`${name} exited ${code}: ${output}`)))
  })
}

const routes = appRoutes()

describe('the built bundles', () => {
  it('serve their part of the OpenAPI document at /api/<group>/openapi.json', async () => {
    for (const f of functions.filter((fn) => fn.group && descriptions[fn.name] && fn.name !== 'auth')) {
      const base = await start(f.name)
      const res = await fetch(`${base}/api/${f.group}/openapi.json`)
      expect(res.status, f.name).toBe(200)
      expect(res.headers.get('Content-Type')).toBe('application/json')
      expect(await res.json()).toEqual(openApiPart(f.name, routes))
    }
  }, 60_000)

  it('auth serves its part, the whole API, the events and the docs page; with CORS_ORIGINS, browsers on those origins', async () => {
    const base = await start('auth', { BCRYPT_COST: '4', CORS_ORIGINS: 'https://shop.example.com' })
    expect(await (await fetch(`${base}/api/auth/openapi.json`)).json()).toEqual(openApiPart('auth', routes))
    expect(await (await fetch(`${base}/api/openapi.json`)).json()).toEqual(openApiWhole(routes))
    expect(await (await fetch(`${base}/api/asyncapi.json`)).json()).toEqual(asyncApiWhole(routes))
    const page = await fetch(`${base}/api/docs`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('/api/docs/swagger-ui-bundle.js')
    expect((await fetch(`${base}/api/docs/swagger-ui-bundle.js`)).status).toBe(200)

    const preflight = await fetch(`${base}/api/auth/login`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://shop.example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBe('https://shop.example.com')
    const other = await fetch(`${base}/api/auth/jwks.json`, { headers: { Origin: 'https://elsewhere.example' } })
    expect(other.headers.get('Access-Control-Allow-Origin')).toBeNull()
  }, 60_000)
})
