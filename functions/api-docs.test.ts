/**
 * The API documents themselves: valid by the specifications (checked by tools we did not write),
 * complete (every route, status, problem type, header, example), their examples valid by their own
 * schemas and by every consumer's, and the docs page served from our own files only.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Parser } from '@asyncapi/parser'
import { Validator } from '@seriousme/openapi-schema-validator'
import * as v from 'valibot'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadManifests } from '../eventing/local/manifests.ts'
import { eventConsumers } from '../shared/asyncapi.ts'
import { CORS_EXPOSED_HEADERS, CORS_METHODS, CORS_REQUEST_HEADERS } from '../shared/cors.ts'
import { ProblemTypes } from '../shared/errors.ts'
import { createApp } from '../shared/http.ts'
import { problemSchemaName, type Json } from '../shared/openapi.ts'
import { apiDocuments } from '../test/contract.ts'
import { appDeps } from '../test/support.ts'
import { DOCS_FUNCTION, appRoutes, descriptions, openApiPart, writePublicFiles } from './api-docs.ts'
import { functions } from './catalog.ts'
import { OrderCancelledData, OrderCreatedData } from './order/messages.ts'
import { PaymentStatusData } from './payment/messages.ts'

const routes = appRoutes()
const { openapi, asyncapi, ajv } = apiDocuments()
type Operation = { operationId: string; security?: unknown[]; parameters: Json[]; requestBody?: { content: Record<string, { schema: Json; examples?: Record<string, { value: unknown }> }> }; responses: Record<string, { headers?: Json; content?: Record<string, { schema: Json; examples?: Record<string, { value: unknown }> }> }> }
const operations = Object.entries(openapi.paths as Record<string, Record<string, Operation>>).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({ path, method, op })),
)
const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1, whole and each function’s part', async () => {
    const validator = new Validator()
    expect(await validator.validate(openapi as never)).toEqual({ valid: true })
    for (const name of Object.keys(descriptions)) {
      const result = await new Validator().validate(openApiPart(name, routes) as never)
      expect(result, name).toEqual({ valid: true })
    }
  })

  it('describes every function that has a group, and every route of theirs under /api', () => {
    for (const f of functions.filter((fn) => fn.group)) {
      expect(descriptions[f.name], `${f.name} has no functions/${f.name}/openapi.ts in api-docs.ts`).toBeDefined()
      const own = (routes[f.name] ?? []).filter((r) => r.method !== 'ALL' && r.path.startsWith('/api/'))
      expect(own.length, f.name).toBeGreaterThan(0)
      for (const r of own) {
        const path = r.path.replace(/:(\w+)/g, '{$1}')
        expect((openapi.paths as Record<string, Json>)[path]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined()
        expect(path.startsWith(`/api/${f.group}`), `${r.method} ${r.path} is outside /api/${f.group}`).toBe(true)
      }
    }
  })

  it('gives every operation an id, its path parameters, the 503 with Retry-After, and 401 where a token is needed', () => {
    const ids = operations.map((o) => o.op.operationId)
    expect(new Set(ids).size).toBe(ids.length)
    for (const { path, method, op } of operations) {
      const where = `${method.toUpperCase()} ${path}`
      const declared = op.parameters.filter((p) => p.in === 'path').map((p) => p.name)
      expect(declared.sort(), where).toEqual([...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort())
      expect(op.parameters, where).toContainEqual({ $ref: '#/components/parameters/XRequestId' })
      expect(op.responses['503']?.headers?.['Retry-After'], where).toBeDefined()
      if (op.security?.length) expect(Object.keys(op.responses), where).toEqual(expect.arrayContaining(['401', '403']))
      for (const [status, r] of Object.entries(op.responses)) {
        expect(r.headers?.['X-Request-Id'], `${where} ${status}`).toEqual({ $ref: '#/components/headers/XRequestId' })
        if (Number(status) >= 400) expect(Object.keys(r.content ?? {}), `${where} ${status}`).toEqual(['application/problem+json'])
      }
    }
  })

  it('documents Idempotency-Key, the bearer JWT scheme, and a schema for every problem type', () => {
    const place = (openapi.paths as Record<string, Record<string, Operation>>)['/api/orders']!.post!
    expect(place.parameters).toContainEqual(expect.objectContaining({ name: 'Idempotency-Key', in: 'header' }))
    expect((openapi.components as Json).securitySchemes).toMatchObject({ bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } })
    const schemas = (openapi.components as { schemas: Record<string, Json> }).schemas
    for (const type of Object.values(ProblemTypes)) {
      expect(schemas[problemSchemaName(type)], type.type).toMatchObject({ properties: { type: { const: type.type } } })
    }
  })

  it('has an example for every answer and body, each valid by its own schema', () => {
    let checked = 0
    for (const { path, method, op } of operations) {
      const media = [
        ...Object.entries(op.requestBody?.content ?? {}).map(([type, m]) => ({ at: ['requestBody', 'content', type], m })),
        ...Object.entries(op.responses).flatMap(([status, r]) => Object.entries(r.content ?? {}).map(([type, m]) => ({ at: ['responses', status, 'content', type], m }))),
      ]
      for (const { at, m } of media) {
        const where = `${method.toUpperCase()} ${path} ${at.join(' ')}`
        expect(Object.keys(m.examples ?? {}).length, `${where} has no example`).toBeGreaterThan(0)
        const validate = ajv.compile({ $ref: `openapi.json#${pointer('', 'paths', path, method, ...at, 'schema')}` })
        for (const [name, example] of Object.entries(m.examples ?? {})) {
          expect(validate(example.value), `${where} example ${name}: ${ajv.errorsText(validate.errors)}`).toBe(true)
          checked++
        }
      }
    }
    expect(checked).toBeGreaterThan(50)
  })

  it('lists, for CORS, exactly the methods and request headers it documents, and exposes its response headers', () => {
    const methods = new Set(operations.map((o) => o.method.toUpperCase()))
    expect([...CORS_METHODS].sort()).toEqual([...methods].sort())
    const params = (openapi.components as { parameters: Record<string, Json> }).parameters
    const headers = new Set(['Authorization', 'Content-Type'])
    const exposed = new Set<string>()
    for (const { op } of operations) {
      for (const p of op.parameters) {
        const param = p.$ref ? params[String(p.$ref).split('/').pop()!]! : p
        if (param.in === 'header') headers.add(String(param.name))
      }
      for (const r of Object.values(op.responses)) for (const h of Object.keys(r.headers ?? {})) exposed.add(h)
    }
    expect([...CORS_REQUEST_HEADERS].sort()).toEqual([...headers].sort())
    // Cache-Control is CORS-safelisted: a script reads it anyway.
    expect([...CORS_EXPOSED_HEADERS].sort()).toEqual([...exposed].filter((h) => h !== 'Cache-Control').sort())
  })
})

describe('the AsyncAPI document', () => {
  it('is valid AsyncAPI 3.0 (@asyncapi/parser: no errors, no warnings)', async () => {
    const { diagnostics } = await new Parser().parse(asyncapi as never)
    // Severity 0 errors, 1 warnings; 2 and 3 are hints (such as "a newer version exists").
    expect(diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.path.join('.')}: ${d.message}`)).toEqual([])
  }, 60_000)

  const messages = (asyncapi.components as { messages: Record<string, { name: string; payload: Json; examples: { name: string; payload: unknown }[] }> }).messages
  const producers: Record<string, v.GenericSchema> = { 'order.created': OrderCreatedData, 'order.cancelled': OrderCancelledData, 'payment.status': PaymentStatusData }

  it('has order.created, order.cancelled and payment.status on the orders and payments channels', () => {
    expect(Object.values(messages).map((m) => m.name).sort()).toEqual(Object.keys(producers).sort())
    expect(Object.keys(asyncapi.channels as Json).sort()).toEqual(['orders', 'payments'])
  })

  it('has examples valid by the document, by the producer’s schema, and by every consumer’s own schema', () => {
    const consumers = eventConsumers(routes)
    for (const [key, m] of Object.entries(messages)) {
      expect(m.examples.length, m.name).toBeGreaterThan(0)
      const validate = ajv.compile({ $ref: `asyncapi.json#/components/messages/${key}/payload` })
      const takers = consumers.filter((c) => c.type === m.name)
      expect(takers.length, `${m.name} has consumers`).toBeGreaterThan(0)
      for (const example of m.examples) {
        const where = `${m.name} example ${example.name}`
        expect(validate(example.payload), `${where}: ${ajv.errorsText(validate.errors)}`).toBe(true)
        expect(v.safeParse(producers[m.name]!, example.payload).success, `${where} by its producer`).toBe(true)
        for (const c of takers) {
          const parsed = v.safeParse(c.schema, example.payload)
          expect(parsed.success, `${where} by ${c.function}: ${JSON.stringify(parsed.issues?.map((i) => i.message))}`).toBe(true)
        }
      }
    }
  })

  it('has a receive operation for exactly the deliveries the Triggers of eventing/ make', async () => {
    const { triggers } = await loadManifests(new URL('../eventing/', import.meta.url).pathname)
    const fromTriggers = triggers.map((t) => `${t.subscriber.ref?.name} ${t.filter.type} ${t.subscriber.uri}`).sort()
    const fromDocument = Object.values(asyncapi.operations as Record<string, { action: string; summary: string }>)
      .filter((o) => o.action === 'receive')
      .map((o) => /^(\S+) takes (\S+) at POST (\S+)$/.exec(o.summary)!.slice(1).join(' '))
      .sort()
    expect(fromDocument).toEqual(fromTriggers)
  })
})

describe('the served files', () => {
  let dir: string
  let files: string[]
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'api-docs-'))
    files = await writePublicFiles(DOCS_FUNCTION, dir, routes)
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it('serve the documents, and a docs page that loads nothing from elsewhere', async () => {
    expect(files).toEqual(expect.arrayContaining(['/api/auth/openapi.json', '/api/openapi.json', '/api/asyncapi.json', '/api/docs/index.html']))
    const app = createApp({ ...appDeps(), publicDir: dir })
    const whole = await app.request('/api/openapi.json')
    expect(whole.status).toBe(200)
    expect(whole.headers.get('Content-Type')).toBe('application/json')
    expect(await whole.json()).toEqual(openapi)
    expect(await (await app.request('/api/asyncapi.json')).json()).toEqual(asyncapi)
    const page = await app.request('/api/docs')
    expect(page.status).toBe(200)
    expect(page.headers.get('Content-Type')).toBe('text/html; charset=utf-8')
    expect(page.headers.get('Content-Security-Policy')).toMatch(/default-src 'none'; script-src 'self'/)
    const html = await page.text()
    // Every script, style and image of the page is one of ours, and is served.
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)
    expect(refs.length).toBeGreaterThan(3)
    for (const ref of refs) {
      expect(ref.startsWith('/api/'), ref).toBe(true)
      expect((await app.request(ref)).status, ref).toBe(200)
    }
    const script = await (await app.request('/api/docs/docs.js')).text()
    expect(script).toContain("url: '/api/openapi.json'")
    expect(script).toContain('validatorUrl: null')
    expect((await app.request('/api/docs/swagger-ui-bundle.js')).headers.get('Content-Type')).toBe('text/javascript; charset=utf-8')
    expect(JSON.parse(await readFile(join(dir, 'api/auth/openapi.json'), 'utf8'))).toEqual(openApiPart('auth', routes))
  })
})
