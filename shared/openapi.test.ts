import { Validator } from '@seriousme/openapi-schema-validator'
import { Hono } from 'hono'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { ProblemTypes } from './errors.ts'
import { ABOUT_BLANK, describeRoutes, openApiDocument, problem, type ApiDescription } from './openapi.ts'
import { withRouteMeta } from './route-meta.ts'
import { Page } from './validate.ts'

// Middleware that only says what it stands for, as validate, requireUser and requireAdmin do.
const pass = async (_: unknown, next: () => Promise<void>) => next()
const checks = (target: 'json' | 'query' | 'param', schema: v.GenericSchema) => withRouteMeta(async (_: unknown, next: () => Promise<void>) => next(), { kind: 'request', target, schema })
const user = withRouteMeta(pass.bind(null), { kind: 'auth', role: 'user' })
const admin = withRouteMeta(pass.bind(null), { kind: 'auth', role: 'admin' })

const Thing = v.object({ id: v.pipe(v.string(), v.uuid()), n: v.number() })
const Body = v.strictObject({ n: v.pipe(v.number(), v.integer(), v.minValue(1)), note: v.optional(v.string()) })
const Params = v.strictObject({ id: v.pipe(v.string(), v.uuid()) })

function toyApp() {
  const app = new Hono()
  app.get('/api/things', checks('query', v.strictObject(Page)), (c) => c.json({}))
  app.put('/api/things/:id', user, admin, checks('param', Params), checks('json', Body), (c) => c.json({}))
  app.post('/internal/x', (c) => c.json({}))
  return app
}

const api: ApiDescription = {
  tag: { name: 'things', description: 'things' },
  schemas: { Thing },
  operations: {
    'GET /api/things': { operationId: 'listThings', summary: 'list', parameters: { limit: 'how many' }, responses: { 200: { description: 'things', body: v.array(Thing) } } },
    'PUT /api/things/:id': {
      operationId: 'putThing',
      summary: 'put',
      requestExamples: { one: { value: { n: 1 } } },
      responses: { 200: { description: 'the thing', body: Thing }, 409: problem('taken', ProblemTypes.outOfStock, ABOUT_BLANK) },
    },
  },
}

describe('describeRoutes', () => {
  const part = describeRoutes(toyApp().routes, api)
  const doc = openApiDocument({ info: { title: 't', version: '1', description: 'd' }, parts: [part] })
  const paths = doc.paths as Record<string, Record<string, any>>

  it('makes a valid OpenAPI 3.1 document of the routes under /api only', async () => {
    expect(await new Validator().validate(doc as never)).toEqual({ valid: true })
    expect(Object.keys(paths).sort()).toEqual(['/api/things', '/api/things/{id}'])
  })

  it('takes parameters and the body from the schemas the middleware checks with', () => {
    const list = paths['/api/things']!.get
    expect(list.parameters).toContainEqual({ name: 'limit', in: 'query', description: 'how many', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } })
    expect(list.parameters).toContainEqual({ name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 } })
    const put = paths['/api/things/{id}']!.put
    expect(put.parameters).toContainEqual({ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } })
    expect(put.requestBody.content['application/json'].schema).toMatchObject({
      type: 'object',
      properties: { n: { type: 'integer', minimum: 1 }, note: { type: 'string' } },
      required: ['n'],
      additionalProperties: false,
    })
    expect(put.requestBody.content['application/json'].examples).toEqual({ one: { value: { n: 1 } } })
  })

  it('says what the middleware implies: security, 400, 401, 403, 413, 415 and 503 with Retry-After', () => {
    const put = paths['/api/things/{id}']!.put
    expect(put.security).toEqual([{ bearerAuth: [] }])
    expect(Object.keys(put.responses)).toEqual(['200', '400', '401', '403', '409', '413', '415', '503'])
    expect(put.responses['503'].headers['Retry-After']).toMatchObject({ required: true })
    expect(put.responses['401'].headers['WWW-Authenticate']).toMatchObject({ required: true })
    const list = paths['/api/things']!.get
    expect(list.security).toEqual([])
    expect(Object.keys(list.responses)).toEqual(['200', '400', '503'])
  })

  it('names response schemas as components and lists the problem types a status may have', () => {
    const put = paths['/api/things/{id}']!.put
    expect(put.responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Thing' })
    expect(put.responses['409'].content['application/problem+json'].schema).toEqual({
      anyOf: [{ $ref: '#/components/schemas/OutOfStockProblem' }, { $ref: '#/components/schemas/BlankProblem' }],
    })
    const schemas = (doc.components as { schemas: Record<string, any> }).schemas
    expect(schemas.OutOfStockProblem.properties.type).toEqual({ const: ProblemTypes.outOfStock.type })
    expect(schemas.OutOfStockProblem.required).toContain('unavailable')
  })

  it('refuses a route without a description, and a description without a route', () => {
    const app = toyApp()
    app.delete('/api/things/:id', (c) => c.body(null, 204))
    expect(() => describeRoutes(app.routes, api)).toThrow('routes without a description in the things API: DELETE /api/things/:id')
    const more = { ...api, operations: { ...api.operations, 'POST /api/things': { operationId: 'x', summary: 'x', responses: {} } } }
    expect(() => describeRoutes(toyApp().routes, more)).toThrow('descriptions without a route in the things API: POST /api/things')
  })
})
