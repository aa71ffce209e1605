/**
 * The API documents as the tests hold the functions to them: `checkResponse` checks an answer
 * against the OpenAPI document (its status is one the operation lists, its content type one the
 * status lists, its body valid, its documented headers there), `checkEvent` a published event
 * against the AsyncAPI document. test/support.ts's `call()` checks every answer it gets, and the
 * end-to-end client every answer through the ingress, so a route that drifts from its
 * description fails the test that called it.
 *
 * The document is the one the build serves (functions/api-docs.ts), held a little stricter: an
 * object of an answer that the document leaves open only because its schema is a plain object
 * (not a loose one) is closed here, so a field the description does not know fails too.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { appRoutes, asyncApiWhole, openApiWhole } from '../functions/api-docs.ts'
import type { Json } from '../shared/openapi.ts'

type Operation = { responses: Record<string, { content?: Record<string, { schema: Json }>; headers?: Record<string, { required?: boolean }> }> }
type Documents = {
  openapi: Json
  asyncapi: Json
  ajv: Ajv2020
  operations: { method: string; template: string; pattern: RegExp; literals: number; operation: Operation }[]
}

let documents: Documents | undefined

// A plain object of an answer is closed (see the module's note); a loose one says so and stays open.
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed)
  if (!schema || typeof schema !== 'object') return schema
  const out: Record<string, unknown> = {}
  for (const [k, value] of Object.entries(schema)) out[k] = k === 'examples' || k === 'example' ? value : closed(value)
  if (out.type === 'object' && out.properties && out.additionalProperties === undefined) out.additionalProperties = false
  return out
}

/** The documents, made once per test file from the apps' routes (as the build makes them). */
export function apiDocuments(): Documents {
  if (documents) return documents
  const routes = appRoutes()
  const openapi = openApiWhole(routes)
  const asyncapi = asyncApiWhole(routes)
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false })
  addFormats.default(ajv)
  ajv.addSchema(closed(openapi) as Json, 'openapi.json')
  ajv.addSchema(closed(asyncapi) as Json, 'asyncapi.json')
  const operations: Documents['operations'] = []
  for (const [template, item] of Object.entries(openapi.paths as Record<string, Record<string, Operation>>)) {
    for (const [method, operation] of Object.entries(item)) {
      const pattern = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+')}$`)
      operations.push({ method: method.toUpperCase(), template, pattern, literals: template.split('/').filter((s) => s && !s.startsWith('{')).length, operation })
    }
  }
  // The most literal template first: `/api/products/openapi.json` before `/api/products/{id}`.
  operations.sort((a, b) => b.literals - a.literals)
  documents = { openapi, asyncapi, ajv, operations }
  return documents
}

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')
const compiled = new Map<string, ValidateFunction>()
function validator(ref: string): ValidateFunction {
  let fn = compiled.get(ref)
  if (!fn) compiled.set(ref, (fn = apiDocuments().ajv.compile({ $ref: ref })))
  return fn
}

const problemRef = 'openapi.json#/components/schemas/Problem'

// ajv's errors, each with its place and what it names (the field it did not expect, …).
const errorsText = (errors: ValidateFunction['errors']) =>
  (errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message}${Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`).join('; ')

/** What `checkResponse` reads of an answer. */
export type Answer = { status: number; headers: Headers; text: string }

/**
 * Throws (with what is wrong) unless `answer`, to `method` `path` (its query ignored), is what the
 * OpenAPI document says of that operation. Paths outside `/api/` (health, metrics, events,
 * internal routes) are not the document's and pass. A path and method the document does not have
 * must be answered with a problem (404, 405 …), never a success.
 */
export function checkResponse(method: string, path: string, answer: Answer): void {
  // As the server sees it: dot segments resolved (`/api/products/./stock` is `/api/products/stock`).
  const bare = new URL(path, 'http://x').pathname
  if (!bare.startsWith('/api/') || method === 'HEAD' || method === 'OPTIONS') return
  const where = `${method} ${bare} answered ${answer.status}`
  const type = (answer.headers.get('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase()
  const { operations } = apiDocuments()
  const found = operations.find((o) => o.method === method && o.pattern.test(bare))
  if (!found) {
    if (answer.status < 400) throw new Error(`${where}, but the API document has no ${method} ${bare}`)
    if (type !== 'application/problem+json') throw new Error(`${where} as ${type || 'no content type'}, not application/problem+json`)
    const problem = validator(problemRef)
    if (!problem(JSON.parse(answer.text))) throw new Error(`${where}: not a problem as documented: ${errorsText(problem.errors)}`)
    return
  }
  const response = found.operation.responses[String(answer.status)]
  if (!response) {
    throw new Error(`${where}, a status its description (${found.method} ${found.template}) does not list: ${Object.keys(found.operation.responses).join(', ')}\n${answer.text.slice(0, 500)}`)
  }
  for (const [name, header] of Object.entries(response.headers ?? {})) {
    if (header.required && !answer.headers.has(name)) throw new Error(`${where} without the ${name} header its description lists`)
  }
  const content = response.content
  if (!content) {
    if (answer.text !== '') throw new Error(`${where} with a body; its description says none`)
    return
  }
  if (!content[type]) throw new Error(`${where} as ${type || 'no content type'}; its description says ${Object.keys(content).join(' or ')}`)
  const validate = validator(`openapi.json#${pointer('', 'paths', found.template, found.method.toLowerCase(), 'responses', String(answer.status), 'content', type, 'schema')}`)
  let body: unknown
  try {
    body = JSON.parse(answer.text)
  } catch {
    throw new Error(`${where} with a body that is not JSON: ${answer.text.slice(0, 200)}`)
  }
  if (!validate(body)) throw new Error(`${where} with a body its description does not allow: ${errorsText(validate.errors)}\n${answer.text.slice(0, 500)}`)
}

/** What `checkEvent` reads of a published event (an `OutgoingEvent` of shared/events.ts). */
export type PublishedEvent = { type: string; source: string; id?: string; data: unknown }

/**
 * Throws unless `event` is a message of the AsyncAPI document: a known type from its documented
 * source, an id that is a UUID, and data valid by the message's payload schema (held closed, as
 * answers are).
 */
export function checkEvent(event: PublishedEvent): void {
  const { asyncapi } = apiDocuments()
  const messages = (asyncapi.components as { messages: Record<string, { name: string; headers: { properties: Record<string, { const?: string }> } }> }).messages
  const entry = Object.entries(messages).find(([, m]) => m.name === event.type)
  if (!entry) throw new Error(`${event.type}: no such message in the AsyncAPI document`)
  const [key, message] = entry
  const source = message.headers.properties['ce-source']?.const
  if (event.source !== source) throw new Error(`${event.type} from ${event.source}; the document says ${source}`)
  if (event.id !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(event.id)) throw new Error(`${event.type} with id ${event.id}, not a UUID`)
  const validate = validator(`asyncapi.json#/components/messages/${key}/payload`)
  if (!validate(event.data)) throw new Error(`${event.type} with data its message does not allow: ${errorsText(validate.errors)}\n${JSON.stringify(event.data)}`)
}

/**
 * Throws unless `answer` is what an event route may answer (the AsyncAPI document's receive
 * operations): 204, or a problem (`application/problem+json`) with 400, 413, 415 or 422 for an
 * event that can never succeed, or 503 (with `Retry-After`) for one to retry. Never a 500.
 */
export function checkEventAnswer(path: string, answer: Answer): void {
  const where = `POST ${path} answered ${answer.status}`
  if (![204, 400, 413, 415, 422, 503].includes(answer.status)) throw new Error(`${where}, which no event route may answer\n${answer.text.slice(0, 300)}`)
  if (answer.status === 204) return
  const type = (answer.headers.get('Content-Type') ?? '').split(';')[0]!.trim()
  if (type !== 'application/problem+json') throw new Error(`${where} as ${type || 'no content type'}, not application/problem+json`)
  const problem = validator(problemRef)
  if (!problem(JSON.parse(answer.text))) throw new Error(`${where}: not a problem as documented: ${errorsText(problem.errors)}`)
  if (answer.status === 503 && !answer.headers.has('Retry-After')) throw new Error(`${where} without Retry-After`)
}
