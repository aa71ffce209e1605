/**
 * @module
 * The OpenAPI 3.1 description of the shop's HTTP API, made from the apps themselves. Each route's
 * request part comes from the middleware it runs (`validate` gives the valibot schema of its body,
 * query or path; `requireUser`/`requireAdmin` its security, see route-meta.ts), converted to JSON
 * Schema (draft 2020-12, OpenAPI 3.1's dialect) by `@valibot/to-json-schema`; what a function
 * says about its routes beyond that (summaries, the answers and their bodies, examples) is its
 * `functions/<name>/openapi.ts`. A route under `/api` without a description, or a description
 * without a route, is an error: the document cannot drift from the app unnoticed.
 *
 * Build-time only (functions/api-docs.ts, run by build.mjs, and the tests): a function serves the
 * document the build wrote beside its bundle and never loads this module.
 */
import { toJsonSchema, toJsonSchemaDefs, type ConversionConfig, type JsonSchema } from '@valibot/to-json-schema'
import * as v from 'valibot'
import { PROBLEM_TYPE_BASE, ProblemTypes, type ProblemType } from './errors.ts'
import { routeMetaOf, type RouteMeta } from './route-meta.ts'

/** Named examples of a body: `{ name: { summary?, value } }` (an OpenAPI Examples map). */
export type Examples = Record<string, { summary?: string; value: unknown }>

/** A response header: what it means, and its valibot schema. */
export type HeaderDoc = { description: string; schema: v.GenericSchema; required?: boolean }

/**
 * An answer with a body of our own (`body`, JSON unless `mediaType` says otherwise) or none (a
 * 204): `description` says when it comes; `examples` show it.
 */
export type ResponseDoc = {
  description: string
  body?: v.GenericSchema
  mediaType?: string
  examples?: Examples
  headers?: Record<string, HeaderDoc>
}

/**
 * An answer that is an RFC 9457 problem (`application/problem+json`): `description` says when it
 * comes; `types` are the problem types it may have (none: `about:blank` only; list
 * `ABOUT_BLANK` beside types when both happen).
 */
export type ProblemDoc = { description: string; types?: (ProblemType | typeof ABOUT_BLANK)[]; headers?: Record<string, HeaderDoc> }

/** `about:blank`, the problem type of a problem that is only its status (RFC 9457 §4.2.1). */
export const ABOUT_BLANK = 'about:blank' as const

/**
 * What a function says about one of its routes; the request's parameters, body, security and the
 * answers that follow from its middleware (400, 401, 403, 413, 415, 503) come from the route.
 * `parameters` gives words to the parameters (path, query, header) by name; `headers` are request
 * headers the handler reads itself (not through `validate`); `responses` are the answers by status:
 * below 400 a `ResponseDoc`, from 400 a `ProblemDoc` made with `problem()` (one given for an implied
 * status replaces the implied one).
 */
export type OperationDoc = {
  operationId: string
  summary: string
  description?: string
  parameters?: Record<string, string>
  headers?: Record<string, HeaderDoc & { example?: string }>
  requestDescription?: string
  requestExamples?: Examples
  responses: Record<number, ResponseDoc | ProblemDoc>
}

/**
 * A function's part of the description: the `tag` its operations go under, the response schemas
 * that have a name of their own (`components.schemas`; use the same schema object in `body` and it
 * becomes a `$ref`), and one `OperationDoc` per route, keyed `"GET /api/products/:id"` (Hono's
 * path syntax).
 */
export type ApiDescription = {
  tag: { name: string; description: string }
  schemas?: Record<string, v.GenericSchema>
  operations: Record<string, OperationDoc>
}

/** A route of a Hono app, as `app.routes` lists it (one entry per handler and middleware). */
export type AppRoute = { method: string; path: string; handler: unknown }

/** The JSON of an OpenAPI document, or of part of one. */
export type Json = Record<string, unknown>

/** Marks a response of an `OperationDoc` as a problem (see `ProblemDoc`). */
export const problem = (description: string, ...types: ProblemDoc['types'] & {}): ProblemDoc => ({
  description,
  ...(types.length ? { types } : {}),
})

// --- JSON Schema from valibot ------------------------------------------------------------------

// Actions that refine a value without a JSON Schema keyword of their own: trimming, case and
// Unicode normalisation happen before the checks, and custom checks are said in words instead.
const WORDS_ONLY = ['trim', 'to_lower_case', 'to_upper_case', 'normalize', 'check', 'max_bytes', 'min_bytes', 'check_items', 'raw_check']

/**
 * How valibot becomes JSON Schema here: draft 2020-12 (`target`), the `input` or `output` type,
 * anything without a JSON Schema form an error (but `WORDS_ONLY`, and regex flags), and a loose
 * object said to be open (`additionalProperties: true`), so that it differs from a plain object
 * (which the tests hold closed: see test/contract.ts).
 */
export const conversion = (typeMode: 'input' | 'output', definitions?: Record<string, v.GenericSchema>, target: 'draft-2020-12' | 'draft-07' = 'draft-2020-12'): ConversionConfig => ({
  target,
  typeMode,
  errorMode: 'throw',
  ignoreActions: WORDS_ONLY,
  overrideSchema: ({ valibotSchema, jsonSchema }) => (valibotSchema.type === 'loose_object' ? { ...jsonSchema, additionalProperties: true } : undefined),
  // A JSON Schema pattern is read with Unicode semantics already (what the `u` flag asks for);
  // another flag (`i`) has no JSON Schema form, and the rule is said in words instead.
  overrideAction: ({ valibotAction, jsonSchema }) => {
    if (valibotAction.type !== 'regex') return undefined
    const { source, flags } = (valibotAction as unknown as { requirement: RegExp }).requirement
    return /^u?$/.test(flags) ? { ...jsonSchema, pattern: source } : jsonSchema
  },
  ...(definitions ? { definitions } : {}),
})

// $defs of to-json-schema become components.schemas of the document.
function refsToComponents<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/$defs/', '"#/components/schemas/')) as T
}

/**
 * JSON Schema (draft 2020-12) of a valibot schema: its `input` (what a request may send) or
 * `output` (what an answer holds) type. Schemas named in `definitions` become `$ref`s to
 * `#/components/schemas/<name>`; their definitions are not included (see `schemaComponents`).
 */
export function jsonSchemaOf(schema: v.GenericSchema, typeMode: 'input' | 'output', definitions?: Record<string, v.GenericSchema>): Json {
  const { $schema: _, $defs: __, ...rest } = toJsonSchema(schema, conversion(typeMode, definitions)) as JsonSchema & Json
  return refsToComponents(rest)
}

/** `components.schemas` for named valibot schemas (output types), referring to each other by `$ref`. */
export function schemaComponents(definitions: Record<string, v.GenericSchema>): Record<string, Json> {
  return refsToComponents(toJsonSchemaDefs(definitions, conversion('output')) as Record<string, Json>)
}

type PipeItem = { type: string; requirement?: unknown; default?: unknown; pipe?: PipeItem[] }

/**
 * A query parameter that arrives as text and leaves the schema as a bounded whole number
 * (`queryInt`: `?limit=20`): in the document it is what it means, an integer with its bounds and
 * default (OpenAPI serialises every query value as text anyway). Anything else: undefined.
 */
function queryIntegerSchema(schema: v.GenericSchema): Json | undefined {
  const pipe = (schema as unknown as PipeItem).pipe
  if (!pipe) return undefined
  const at = pipe.findIndex((a) => a.type === 'transform')
  if (at < 0) return undefined
  const after = pipe.slice(at + 1)
  const minimum = after.find((a) => a.type === 'min_value')?.requirement
  const maximum = after.find((a) => a.type === 'max_value')?.requirement
  if (typeof minimum !== 'number' || typeof maximum !== 'number') return undefined
  const fallback = pipe[0]?.type === 'optional' ? pipe[0].default : undefined
  return { type: 'integer', minimum, maximum, ...(fallback !== undefined ? { default: Number(fallback) } : {}) }
}

// --- building blocks of answers -------------------------------------------------------------------

/** A valibot schema of an id in an answer: a UUID, lower case as PostgreSQL writes it. */
export const IdOut = v.pipe(v.string(), v.uuid(), v.regex(/^[0-9a-f-]+$/))
/** A valibot schema of a time in an answer: RFC 3339, UTC, milliseconds (`2024-05-01T10:00:00.000Z`). */
export const TimeOut = v.pipe(v.string(), v.isoTimestamp())
/** A valibot schema of a whole number in an answer, from `min` to `max` (default 2^53 − 1). */
export const IntOut = (min = 0, max = Number.MAX_SAFE_INTEGER) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max))
/** A valibot schema of one page of a list: `{ items, total, limit, offset }`, `total` counting every item. */
export const pageOf = <T extends v.GenericSchema>(item: T) =>
  v.object({
    items: v.array(item),
    total: v.pipe(IntOut(), v.description('items in the whole list')),
    limit: v.pipe(IntOut(1, 100), v.description('the page size asked for')),
    offset: v.pipe(IntOut(), v.description('items skipped before this page')),
  })

// --- the problem details shared by every operation ----------------------------------------------

/** A valibot schema of one entry of a problem's `errors`: the field's dotted `path` and a `message` in words. */
export const FieldErrorSchema = v.object({
  path: v.pipe(v.string(), v.description('the field, as a dotted path (`items.0.quantity`); `(body)` for the whole body')),
  message: v.pipe(v.string(), v.description('what is wrong with it, in words')),
})

const problemFields = {
  type: v.pipe(v.string(), v.description('the problem type: `about:blank` (only the status), or a URI under ' + PROBLEM_TYPE_BASE + ' that identifies it')),
  title: v.pipe(v.string(), v.description('a short summary of the problem type (for `about:blank`, the status phrase)')),
  status: v.pipe(v.number(), v.integer(), v.minValue(400), v.maxValue(599), v.description('the HTTP status code')),
  detail: v.pipe(v.string(), v.description('what went wrong with this request, in words')),
  instance: v.pipe(v.string(), v.description('the path of the request')),
  request_id: v.pipe(v.string(), v.description('the `X-Request-Id` the request was served under; our logs know it')),
  errors: v.optional(v.pipe(v.array(FieldErrorSchema), v.description('the fields that are wrong (400 and 422)'))),
}

/**
 * A valibot schema of every problem the shop answers (RFC 9457), `Problem` in the document. Open:
 * a problem type adds its own members (`unavailable` of `…/out-of-stock`).
 */
export const ProblemSchema = v.looseObject(problemFields)

/** `unavailable` of an out-of-stock problem: one entry per line that cannot be had. */
const UnavailableSchema = v.object({
  product_id: v.pipe(v.string(), v.uuid()),
  requested: v.pipe(v.number(), v.integer(), v.minValue(1), v.description('units the line asked for')),
  available: v.pipe(v.number(), v.integer(), v.minValue(0), v.description('units left')),
})

// What each problem type adds to the shared members; every type of ProblemTypes is here (a test
// checks), so a new type cannot go undocumented.
const problemTypeMembers: Record<keyof typeof ProblemTypes, v.ObjectEntries> = {
  outOfStock: { unavailable: v.pipe(v.array(UnavailableSchema), v.minLength(1), v.description('every line that is short')) },
  unknownProduct: { errors: v.pipe(v.array(FieldErrorSchema), v.minLength(1), v.description('one entry per line whose product does not exist')) },
  reservationReleased: {},
  reservationMismatch: {},
}

const pascal = (slug: string) => slug.replace(/(^|-)(\w)/g, (_, __, c: string) => c.toUpperCase())

/** The component name of a problem type's schema: `…/out-of-stock` → `OutOfStockProblem`; `about:blank` → `BlankProblem`. */
export const problemSchemaName = (type: ProblemType | typeof ABOUT_BLANK) =>
  type === ABOUT_BLANK ? 'BlankProblem' : `${pascal(type.type.slice(PROBLEM_TYPE_BASE.length))}Problem`

/** `components.schemas` for problems: `Problem`, `BlankProblem`, one per problem type, and `FieldError`. */
function problemComponents(): Record<string, Json> {
  const named: Record<string, v.GenericSchema> = { Problem: ProblemSchema, FieldError: FieldErrorSchema }
  named[problemSchemaName(ABOUT_BLANK)] = v.looseObject({
    ...problemFields,
    type: v.pipe(v.literal(ABOUT_BLANK), v.description('no type beyond the status: `title` is the status phrase')),
  })
  for (const [key, type] of Object.entries(ProblemTypes) as [keyof typeof ProblemTypes, ProblemType][]) {
    named[problemSchemaName(type)] = v.pipe(
      v.looseObject({ ...problemFields, type: v.literal(type.type), title: v.literal(type.title), ...problemTypeMembers[key] }),
      v.description(`${type.title}: ${problemTypeDescriptions[key]}`),
    )
  }
  return schemaComponents(named)
}

// The meaning of each problem type, as the document says it.
const problemTypeDescriptions: Record<keyof typeof ProblemTypes, string> = {
  outOfStock: 'a line asks for more units than are left; nothing was taken. `unavailable` lists every such line.',
  unknownProduct: 'a line names a product that does not exist; `errors` names each such line.',
  reservationReleased: 'the units of this order came back already (cancelled, failed, expired): it takes nothing again.',
  reservationMismatch: 'this order id was reserved before with other lines or another user.',
}

const STATUS_PHRASES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 413: 'Content Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Content', 429: 'Too Many Requests', 503: 'Service Unavailable',
}

// --- operations -----------------------------------------------------------------------------------

const ref = (kind: string, name: string) => ({ $ref: `#/components/${kind}/${name}` })

/** `/api/products/:id` → `/api/products/{id}`. */
export const openApiPath = (honoPath: string) => honoPath.replace(/:(\w+)(\{[^}]*\})?\??/g, '{$1}')

function headersOf(docs: Record<string, HeaderDoc> | undefined): Json {
  const headers: Json = { 'X-Request-Id': ref('headers', 'XRequestId') }
  for (const [name, h] of Object.entries(docs ?? {})) {
    headers[name] = { description: h.description, ...(h.required ? { required: true } : {}), schema: jsonSchemaOf(h.schema, 'output') }
  }
  return headers
}

function problemResponse(doc: ProblemDoc, status: number, path: string): Json {
  const types = doc.types?.length ? doc.types : [ABOUT_BLANK]
  const schemas = types.map((t) => ref('schemas', problemSchemaName(t)))
  const examples: Json = {}
  for (const t of types) {
    const blank = t === ABOUT_BLANK
    examples[blank ? 'about:blank' : t.type.slice(PROBLEM_TYPE_BASE.length)] = {
      value: {
        type: blank ? ABOUT_BLANK : t.type,
        title: blank ? (STATUS_PHRASES[status] ?? 'Error') : t.title,
        status,
        detail: doc.description,
        instance: path.replace(/\{\w+\}/g, '5f0c6a9e-8f1b-4c3e-9a2d-7b1e4c9d0a11'),
        request_id: 'b7e3c1d2-6a5f-4e8b-9c0d-1a2b3c4d5e6f',
        ...exampleMembers(t, status),
      },
    }
  }
  return {
    description: doc.description,
    headers: headersOf({
      ...(status === 503 || status === 429
        ? { 'Retry-After': { description: 'seconds to wait before trying again', schema: v.pipe(v.string(), v.regex(/^\d+$/)), required: true } }
        : {}),
      ...(status === 401 ? { 'WWW-Authenticate': { description: '`Bearer` (RFC 6750)', schema: v.string(), required: true } } : {}),
      ...doc.headers,
    }),
    content: { 'application/problem+json': { schema: schemas.length === 1 ? schemas[0] : { anyOf: schemas }, examples } },
  }
}

// The members an example of a problem type needs to be one.
function exampleMembers(type: ProblemType | typeof ABOUT_BLANK, status: number): Json {
  if (type === ProblemTypes.outOfStock) return { unavailable: [{ product_id: '5f0c6a9e-8f1b-4c3e-9a2d-7b1e4c9d0a11', requested: 3, available: 1 }] }
  if (type === ProblemTypes.unknownProduct) return { errors: [{ path: 'items.0.product_id', message: 'no such product' }] }
  if (status === 400) return { errors: [{ path: 'quantity', message: 'is required' }] }
  return {}
}

function successResponse(doc: ResponseDoc, definitions: Record<string, v.GenericSchema>): Json {
  const content =
    doc.body === undefined
      ? undefined
      : {
          [doc.mediaType ?? 'application/json']: {
            schema: jsonSchemaOf(doc.body, 'output', definitions),
            ...(doc.examples ? { examples: doc.examples } : {}),
          },
        }
  return { description: doc.description, headers: headersOf(doc.headers), ...(content ? { content } : {}) }
}

/** The facts the middleware of one route gives (see route-meta.ts). */
type RouteFacts = { requests: Extract<RouteMeta, { kind: 'request' }>[]; auth: 'user' | 'admin' | undefined }

function factsOf(handlers: unknown[]): RouteFacts {
  const facts: RouteFacts = { requests: [], auth: undefined }
  for (const h of handlers) {
    const meta = routeMetaOf(h)
    if (meta?.kind === 'request') facts.requests.push(meta)
    if (meta?.kind === 'auth' && facts.auth !== 'admin') facts.auth = meta.role
  }
  return facts
}

// The answers every route of a kind gives, before the function's own.
function impliedResponses({ requests, auth }: RouteFacts): Record<number, ProblemDoc> {
  const implied: Record<number, ProblemDoc> = {}
  if (requests.length) implied[400] = problem(`the request is not valid: \`errors\` names each bad ${requests.map((r) => ({ json: 'body field', query: 'query parameter', param: 'path parameter', header: 'header' })[r.target]).join(', ')}`)
  if (requests.some((r) => r.target === 'json')) {
    implied[413] = problem('the body is larger than the function takes (64 KiB)')
    implied[415] = problem('the body is not `application/json`')
  }
  if (auth) {
    implied[401] = problem('no valid Bearer token: none, malformed, expired, or not signed by the shop')
    implied[403] = problem(auth === 'admin' ? 'signed in, but not an admin (or `X-User-ID` names another user)' : '`X-User-ID` names another user than the token')
  }
  implied[503] = problem('the database (or a function this one asks) cannot be reached now; retry after `Retry-After` seconds')
  return implied
}

function parametersOf(facts: RouteFacts, doc: OperationDoc): Json[] {
  const params: Json[] = []
  const described = (name: string) => (doc.parameters?.[name] ? { description: doc.parameters[name] } : {})
  for (const r of facts.requests) {
    if (r.target === 'json') continue
    const where = r.target === 'param' ? 'path' : r.target
    const entries = (r.schema as unknown as { entries?: Record<string, v.GenericSchema> }).entries
    if (!entries) throw new Error(`${doc.operationId}: the ${r.target} schema is not an object schema`)
    const object = jsonSchemaOf(r.schema, 'input') as { required?: string[]; properties?: Record<string, Json> }
    for (const [name, entry] of Object.entries(entries)) {
      const schema = (where === 'query' && queryIntegerSchema(entry)) || object.properties?.[name] || {}
      const required = where === 'path' || Boolean(object.required?.includes(name))
      params.push({ name, in: where, ...described(name), ...(required ? { required: true } : {}), schema })
    }
  }
  for (const [name, h] of Object.entries(doc.headers ?? {})) {
    params.push({
      name,
      in: 'header',
      description: h.description,
      ...(h.required ? { required: true } : {}),
      schema: jsonSchemaOf(h.schema, 'input'),
      ...(h.example !== undefined ? { example: h.example } : {}),
    })
  }
  params.push(ref('parameters', 'XRequestId'))
  if (facts.auth) params.push(ref('parameters', 'XUserId'))
  return params
}

/**
 * The `paths`, `components.schemas` and `tags` of one function: every route of `routes` (an app's
 * `app.routes`) under `/api`, described by `api`. Throws when a route under `/api` has no
 * description or a description has no route.
 */
export function describeRoutes(routes: readonly AppRoute[], api: ApiDescription): { paths: Record<string, Json>; schemas: Record<string, Json>; tags: Json[] } {
  const byRoute = new Map<string, unknown[]>()
  for (const r of routes) {
    if (r.method === 'ALL' || !r.path.startsWith('/api/')) continue
    const key = `${r.method} ${r.path}`
    byRoute.set(key, [...(byRoute.get(key) ?? []), r.handler])
  }
  const undescribed = [...byRoute.keys()].filter((k) => !api.operations[k])
  const unrouted = Object.keys(api.operations).filter((k) => !byRoute.has(k))
  if (undescribed.length) throw new Error(`routes without a description in the ${api.tag.name} API: ${undescribed.join(', ')}`)
  if (unrouted.length) throw new Error(`descriptions without a route in the ${api.tag.name} API: ${unrouted.join(', ')}`)

  const definitions = api.schemas ?? {}
  const paths: Record<string, Json> = {}
  for (const [key, handlers] of byRoute) {
    const doc = api.operations[key]!
    const [method, honoPath] = key.split(' ') as [string, string]
    const path = openApiPath(honoPath)
    const facts = factsOf(handlers)
    const responses: Json = {}
    const all = { ...impliedResponses(facts), ...doc.responses }
    for (const status of Object.keys(all).map(Number).sort((a, b) => a - b)) {
      const r = all[status]!
      responses[String(status)] = status >= 400 ? problemResponse(r as ProblemDoc, status, path) : successResponse(r as ResponseDoc, definitions)
    }
    const body = facts.requests.find((r) => r.target === 'json')
    paths[path] = {
      ...paths[path],
      [method.toLowerCase()]: {
        operationId: doc.operationId,
        tags: [api.tag.name],
        summary: doc.summary,
        ...(doc.description ? { description: doc.description } : {}),
        // Public operations say so (`security: []`), as linters ask: no requirement, rather than none stated.
        security: facts.auth ? [{ bearerAuth: [] }] : [],
        parameters: parametersOf(facts, doc),
        ...(body
          ? {
              requestBody: {
                required: true,
                ...(doc.requestDescription ? { description: doc.requestDescription } : {}),
                content: {
                  'application/json': {
                    schema: jsonSchemaOf(body.schema, 'input'),
                    ...(doc.requestExamples ? { examples: doc.requestExamples } : {}),
                  },
                },
              },
            }
          : {}),
        responses,
      },
    }
  }
  return { paths, schemas: Object.keys(definitions).length ? schemaComponents(definitions) : {}, tags: [api.tag] }
}

/** What `openApiDocument` puts together: the parts (`describeRoutes`) and the document's `info`. */
export type DocumentOptions = {
  info: { title: string; version: string; description: string }
  parts: ReturnType<typeof describeRoutes>[]
}

/**
 * A whole OpenAPI 3.1 document from parts: their paths, tags and schemas, with what every part
 * shares: the problem schemas (one per problem type), the `X-Request-Id` parameter and header, the
 * `X-User-ID` parameter, and the `bearerAuth` security scheme (an Ed25519-signed JWT from
 * `POST /api/auth/login`). Throws when two parts define a path or a schema name differently.
 */
export function openApiDocument({ info, parts }: DocumentOptions): Json {
  const paths: Record<string, Json> = {}
  const schemas: Record<string, Json> = problemComponents()
  for (const part of parts) {
    for (const [path, item] of Object.entries(part.paths)) {
      for (const method of Object.keys(item)) {
        if (paths[path]?.[method]) throw new Error(`${method.toUpperCase()} ${path} is described twice`)
      }
      paths[path] = { ...paths[path], ...item }
    }
    for (const [name, schema] of Object.entries(part.schemas)) {
      if (schemas[name] && JSON.stringify(schemas[name]) !== JSON.stringify(schema)) throw new Error(`two different schemas are named ${name}`)
      schemas[name] = schema
    }
  }
  return {
    openapi: '3.1.0',
    info,
    servers: [{ url: '/', description: 'the shop this document came from' }],
    tags: parts.flatMap((p) => p.tags),
    paths,
    components: {
      schemas,
      parameters: {
        XRequestId: {
          name: 'X-Request-Id',
          in: 'header',
          description: 'an id for this request, kept when it is 1 to 255 of `A-Z a-z 0-9 _ - =` (else one is made); every answer carries it back',
          schema: { type: 'string', maxLength: 255, pattern: '^[\\w\\-=]+$' },
        },
        XUserId: {
          name: 'X-User-ID',
          in: 'header',
          description: 'for proxies that pass the user on (as `GET /api/auth/validate` answers it): when given, it must be the id of the token\'s user (403 otherwise)',
          schema: { type: 'string' },
        },
      },
      headers: {
        XRequestId: {
          description: 'the id this request was served under: the one sent, when it was acceptable, or a new UUID',
          required: true,
          schema: { type: 'string' },
        },
      },
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'the `token` of `POST /api/auth/login`: a JWT signed with Ed25519 (EdDSA), valid for `expires_in` seconds',
        },
      },
    },
  }
}

