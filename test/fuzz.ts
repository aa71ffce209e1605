/**
 * Property-based tests of the API from its own documents (fast-check): for every operation of the
 * OpenAPI document, requests made from its parameters and body schema, valid and hostile; for every
 * consumer of the AsyncAPI document, CloudEvents valid and hostile. Each test runs a catalog first,
 * every kind of bad input in every place of one valid request (`catalogOf`, `deliveryCatalog`), so
 * that every kind is tried whatever the count, then random ones. The property: never a 5xx, and
 * every answer what the document says (`checkResponse`: a listed status, a 4xx an
 * `application/problem+json` problem of the documented shape); an event route answers 204, or a
 * problem, and refuses what is not a CloudEvent it takes.
 *
 * A fixed seed and a bounded count in `npm test`; `FUZZ_RUNS` (random runs per operation, default
 * `DEFAULT_RUNS`) and `FUZZ_SEED` for a long or another run. A failure prints the request that
 * failed, shrunk, and the seed and path to replay it (fast-check's report).
 */
import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { it } from 'vitest'
import type { Json } from '../shared/openapi.ts'
import { apiDocuments, checkResponse } from './contract.ts'

/** Runs per operation when `FUZZ_RUNS` is not set: enough to find the kinds, quick enough for `npm test`. */
export const DEFAULT_RUNS = 40

/** Runs per operation: `FUZZ_RUNS`, else `DEFAULT_RUNS`. */
export const fuzzRuns = () => Number(process.env.FUZZ_RUNS ?? DEFAULT_RUNS)
const seed = () => Number(process.env.FUZZ_SEED ?? 20_251_130)
// Room for the runs on a loaded machine, and for shrinking a failure (a timeout is not the property).
const timeout = () => 120_000 * Math.max(1, fuzzRuns() / DEFAULT_RUNS)

type RequestApp = { request: (input: string, init?: RequestInit) => Response | Promise<Response> }

/** One request the fuzzer makes; `why` names what is valid or hostile about it, for the report. */
type FuzzRequest = { method: string; path: string; headers: Record<string, string>; body?: string | Uint8Array; why: string }

// --- values -------------------------------------------------------------------------------------

const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '%00',
  '\u0001\u0002\u0003',
  '\u007f',
  '\u001b[31m',
  '\r\n',
  '\uD800',
  'a\uDC00b',
  '\uFEFF',
  '\u202E',
  '\u200B',
  'e\u0301',
  '𝕊𝕙𝕠𝕡',
  '🧑‍🤝‍🧑',
  'ﷺ',
  '\u{10FFFF}',
  "'; DROP TABLE x; --",
  '%',
  '_',
  '\\',
  '../../etc/passwd',
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  'null',
  'true',
  '0',
  '-1',
  '1e309',
  'NaN',
]

/** Strings meant to break things: control characters, NUL, lone surrogates, odd Unicode, very long ones. */
export const nastyString = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(300, 5_001, 70_000).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.uuid().map((u) => u.toUpperCase()) },
  { weight: 1, arbitrary: fc.uuid().map((u) => `{${u}}`) },
)

const NASTY_NUMBERS = [-1, 0, 1.5, -0.5, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e308, Number.MIN_VALUE, 999, 1000]

/** Any JSON value of a wrong kind, or a number at or past a bound. */
export const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  nastyString,
  fc.constantFrom<unknown>(...NASTY_NUMBERS, null, true, false, [], {}, [1, 2], { a: 1 }, '1', '10', 'abc'),
  fc.jsonValue({ maxDepth: 2 }),
)

const simpleEmail = fc.tuple(fc.stringMatching(/^[a-z][a-z0-9]{2,10}$/), fc.constantFrom('example.test', 'shop.example')).map(([u, d]) => `${u}-${randomUUID().slice(0, 6)}@${d}`)

type Context = { doc: Json; values: Record<string, fc.Arbitrary<unknown>> }

function resolve(schema: Json, doc: Json): Json {
  let s = schema
  while (typeof s.$ref === 'string') {
    const parts = (s.$ref as string).replace(/^#\//, '').split('/')
    s = parts.reduce<Json>((at, p) => at[p] as Json, doc)
  }
  return s
}

/** A fast-check arbitrary of values valid by a JSON Schema of the document (the subset the document uses). */
export function valueOf(schema: Json, ctx: Context, name?: string): fc.Arbitrary<unknown> {
  if (name && ctx.values[name]) return ctx.values[name]!
  const s = resolve(schema, ctx.doc)
  if ('const' in s) return fc.constant(s.const)
  if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as unknown[]))
  if (Array.isArray(s.anyOf)) return fc.oneof(...(s.anyOf as Json[]).map((x) => valueOf(x, ctx, name)))
  switch (s.type) {
    case 'string': {
      if (s.format === 'uuid') return fc.uuid()
      if (s.format === 'email') return simpleEmail
      if (s.format === 'date-time') return fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }).map((d) => d.toISOString())
      const minLength = typeof s.minLength === 'number' ? s.minLength : 0
      const maxLength = typeof s.maxLength === 'number' ? Math.min(s.maxLength, minLength + 40) : minLength + 20
      if (typeof s.pattern === 'string' && s.pattern !== '^[^\\u0000]*$') {
        return fc.stringMatching(new RegExp(s.pattern as string, 'u')).filter((x) => x.length >= minLength && x.length <= (s.maxLength as number ?? Infinity))
      }
      return fc.string({ minLength: Math.max(minLength, 1), maxLength: Math.max(maxLength, 1) }).map((x) => x.trim() || 'x')
    }
    case 'integer': {
      const min = typeof s.minimum === 'number' ? s.minimum : -(2 ** 31)
      const max = typeof s.maximum === 'number' ? s.maximum : 2 ** 31 - 1
      return fc.oneof(fc.integer({ min: Math.max(min, -1e6), max: Math.min(max, Math.max(min, -1e6) + 50) }), fc.integer({ min: Math.max(min, Number.MIN_SAFE_INTEGER), max: Math.min(max, Number.MAX_SAFE_INTEGER) }))
    }
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true, min: (s.minimum as number) ?? -1e9, max: (s.maximum as number) ?? 1e9 })
    case 'boolean':
      return fc.boolean()
    case 'array': {
      const minLength = (s.minItems as number) ?? 0
      return fc.array(valueOf((s.items as Json) ?? {}, ctx), { minLength, maxLength: Math.min((s.maxItems as number) ?? minLength + 3, minLength + 3) })
    }
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, Json>
      const required = (s.required ?? []) as string[]
      const model = Object.fromEntries(Object.entries(props).map(([k, p]) => [k, valueOf(p, ctx, k)]))
      return fc.record(model, { requiredKeys: required })
    }
    default:
      return fc.jsonValue({ maxDepth: 1 })
  }
}

// --- requests -------------------------------------------------------------------------------------

type Parameter = { name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema: Json }
type Operation = { operationId: string; parameters?: (Parameter | { $ref: string })[]; requestBody?: { content: Record<string, { schema: Json }> }; security?: unknown[] }

/** Who a request comes as: the tokens of a customer and an admin (the fuzzer also sends none and broken ones). */
export type Identities = { customer: string; admin: string }

const authorization = (ids: Identities, secured: boolean) =>
  fc.oneof(
    { weight: secured ? 6 : 1, arbitrary: fc.constantFrom(`Bearer ${ids.customer}`, `Bearer ${ids.admin}`) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'Bearer',
        'Bearer ',
        'Bearer a.b.c',
        `bearer ${ids.customer}`,
        `Bearer  ${ids.customer}`,
        `Bearer ${ids.customer}x`,
        `Basic ${Buffer.from('a:b').toString('base64')}`,
        `Bearer ${'a'.repeat(4000)}.b.c`,
        `Bearer ${ids.customer.split('.').slice(0, 2).join('.')}.`,
        'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
      ),
    },
  )

// Header values a Request accepts (no NUL, CR or LF; bytes up to 0xFF) but that a server may not expect.
const oddHeaderValue = fc.oneof(
  fc.constantFrom('', ' x ', '\u0001', '\u007f', 'é', '\u00ff\u00fe', 'x'.repeat(300), 'x'.repeat(9000), '../', '"quoted"', 'a,b', 'null', randomUUID().toUpperCase()),
  fc.string({ unit: 'binary-ascii', maxLength: 30 }).map((s) => s.replace(/[\0\r\n]/g, '').trim()),
)

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/problem+json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/jsonx', '']

const MALFORMED_JSON = ['', '{', '{"a":', '{"a":1,}', "{'a':1}", 'NaN', '{"a":1}{"b":2}', '\uFEFF{}', '[' .repeat(5000), '{"a":"\\ud800"}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', 'null', '"text"', '12', 'true', '[]']

/** Mutations of a valid body, each named for the report. */
function hostileBody(valid: fc.Arbitrary<unknown>): fc.Arbitrary<{ text: string | Uint8Array; why: string }> {
  const asText = (why: string) => (v: unknown) => ({ text: JSON.stringify(v) ?? 'null', why })
  const asObject = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {})
  return fc.oneof(
    valid.chain((v) => {
      const keys = Object.keys(asObject(v))
      if (!keys.length) return fc.constant({ text: JSON.stringify({ unexpected: 1 }), why: 'an extra field' })
      return fc.constantFrom(...keys).chain((k) =>
        fc.oneof(
          fc.constant(asText(`without ${k}`)({ ...asObject(v), [k]: undefined })),
          nastyValue.map((bad) => asText(`${k} = ${JSON.stringify(bad)?.slice(0, 60)}`)({ ...asObject(v), [k]: bad })),
          nastyValue.map((bad) => asText('an extra field')({ ...asObject(v), [`extra_${k}`]: bad })),
          fc.constant(asText(`${k} nested in a list`)({ ...asObject(v), [k]: [asObject(v)[k]] })),
        ),
      )
    }),
    nastyValue.map(asText('a body of another kind')),
    fc.constantFrom(...MALFORMED_JSON).map((text) => ({ text, why: 'malformed JSON' })),
    fc.constantFrom(new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x7d]), new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])).map((text) => ({ text, why: 'bytes that are not UTF-8' })),
    fc.constant({ text: JSON.stringify({ pad: 'x'.repeat(70 * 1024) }), why: 'a body over 64 KiB' }),
  )
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** `encodeURIComponent`, but a lone surrogate (which it refuses) becomes the percent-encoded bytes of its WTF-8 form, for the server to decide about. */
export function encodeLoose(s: string): string {
  return s
    .split(LONE_SURROGATE)
    .map(encodeURIComponent)
    .reduce((out, part, i) => {
      const c = (s.match(LONE_SURROGATE) ?? [])[i - 1]?.charCodeAt(0)
      const bytes = c === undefined ? [] : [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
      return out + bytes.map((b) => `%${b.toString(16).toUpperCase()}`).join('') + part
    }, '')
}

function pathOf(template: string, values: Record<string, string>) {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? '')
}

type Parts = {
  path: Record<string, string>
  query: [string, string][]
  headers: Record<string, string>
  /** The body as a value (for the catalog to change), and as sent. */
  value?: unknown
  body?: string | Uint8Array
  contentType?: string
  why: string
}

type Slots = { pathParams: Parameter[]; queryParams: Parameter[]; headerParams: Parameter[]; body: Json | undefined; secured: boolean }

function slotsOf(op: Operation, doc: Json): Slots {
  const params = (op.parameters ?? []).map((p) => resolve(p as Json, doc) as unknown as Parameter)
  return {
    pathParams: params.filter((p) => p.in === 'path'),
    queryParams: params.filter((p) => p.in === 'query'),
    headerParams: params.filter((p) => p.in === 'header' && p.name !== 'X-Request-Id' && p.name !== 'X-User-ID'),
    body: op.requestBody?.content['application/json']?.schema,
    secured: Boolean(op.security?.length),
  }
}

/** Valid parts of a request for an operation's slots. */
function validParts({ pathParams, queryParams, headerParams, body }: Slots, ctx: Context): fc.Arbitrary<Parts> {
  const validPath = fc.record(Object.fromEntries(pathParams.map((p) => [p.name, valueOf(p.schema, ctx, p.name).map(String)])))
  const validQuery = fc.record(Object.fromEntries(queryParams.map((p) => [p.name, valueOf(p.schema, ctx, p.name).map(String)])), { requiredKeys: queryParams.filter((p) => p.required).map((p) => p.name) })
  const validHeaders = fc.record(Object.fromEntries(headerParams.map((p) => [p.name, valueOf(p.schema, ctx, p.name).map(String)])), { requiredKeys: [] })
  const validBody = body ? valueOf(body, ctx) : fc.constant(undefined)
  return fc.record({ path: validPath, query: validQuery, headers: validHeaders, body: validBody }).map((r) => ({
    path: r.path,
    query: Object.entries(r.query) as [string, string][],
    headers: r.headers as Record<string, string>,
    ...(body ? { value: r.body, body: JSON.stringify(r.body), contentType: 'application/json' } : {}),
    why: 'valid',
  }))
}

const finish = (method: string, template: string, p: Parts, auth: string | undefined): FuzzRequest => {
  const query = p.query.length ? `?${p.query.map(([k, v]) => `${encodeLoose(k)}=${encodeLoose(v)}`).join('&')}` : ''
  const headers: Record<string, string> = { ...p.headers }
  if (auth) headers.Authorization = auth
  if (p.contentType) headers['Content-Type'] = p.contentType
  // A GET has no body to send (a Request refuses one).
  const body = method === 'GET' ? undefined : p.body
  return printable({ method, path: pathOf(template, p.path) + query, headers, ...(body !== undefined ? { body } : {}), why: p.why })
}

/** Random requests for an operation (`method` `template`): valid, or hostile in one named way. */
function requestOf(method: string, template: string, slots: Slots, ctx: Context, ids: Identities): fc.Arbitrary<FuzzRequest> {
  const { pathParams, queryParams, body } = slots
  const valid = validParts(slots, ctx)
  const validBody = body ? valueOf(body, ctx) : fc.constant(undefined)
  const hostile: fc.Arbitrary<Parts>[] = [
    // A path parameter of another kind: raw, so that percent signs and dots reach the router as they are.
    ...(pathParams.length
      ? [
          fc.tuple(valid, fc.constantFrom(...pathParams.map((p) => p.name)), fc.oneof(nastyString.map(encodeLoose), fc.constantFrom(...RAW_SEGMENTS))).map(([p, name, bad]) => ({
            ...p,
            path: { ...p.path, [name]: bad },
            why: `path ${name} = ${bad.slice(0, 60)}`,
          })),
        ]
      : []),
    // Query: a value of another kind, a parameter twice, one nobody asked for.
    fc.tuple(valid, queryParams.length ? fc.constantFrom(...queryParams.map((p) => p.name), 'x') : fc.constant('x'), fc.oneof(nastyString, fc.constantFrom(...NASTY_NUMBERS.map(String), '1.0', '+1', ' 1', '0x10', '1_000', '١٢'))).map(([p, name, bad]) => ({
      ...p,
      query: [...p.query.filter(([k]) => k !== name), [name, bad] as [string, string]],
      why: `query ${name} = ${JSON.stringify(bad).slice(0, 60)}`,
    })),
    fc.tuple(valid, fc.constantFrom('limit', 'offset', 'q', 'x')).map(([p, name]) => ({ ...p, query: [...p.query, [name, '1'], [name, '2']] as [string, string][], why: `query ${name} twice` })),
    // Our headers in odd forms.
    fc.tuple(valid, fc.constantFrom(...OUR_HEADERS), oddHeaderValue).map(([p, name, bad]) => ({
      ...p,
      headers: { ...p.headers, [name]: bad },
      why: `header ${name} = ${JSON.stringify(bad).slice(0, 60)}`,
    })),
    // A body where there is none, or of another type.
    fc.tuple(valid, fc.constantFrom(...CONTENT_TYPES)).map(([p, contentType]) => ({ ...p, contentType, body: p.body ?? '{"a":1}', why: `Content-Type: ${contentType}` })),
    ...(body ? [fc.tuple(valid, hostileBody(validBody)).map(([p, b]) => ({ ...p, body: b.text, why: b.why }))] : []),
  ]
  const parts = fc.oneof({ weight: 2, arbitrary: valid }, ...hostile.map((arbitrary) => ({ weight: 1, arbitrary })))
  return fc.record({ parts, auth: authorization(ids, slots.secured) }).map(({ parts: p, auth }) => finish(method, template, p, auth))
}

// Path segments as they come, not encoded: percent signs, dots, encoded slashes and surrogates.
const RAW_SEGMENTS = ['%', '%zz', '%00', '%C0%AF', '..', '.', '%2e%2e', '%2F', 'a%2Fb', '%uD800', '%ED%A0%80', '%FF']
// The headers the shop reads, and one it must not trust from a client.
const OUR_HEADERS = ['X-Request-Id', 'X-User-ID', 'Idempotency-Key', 'X-Forwarded-For']

// Values each slot of the catalog gets in turn: every kind of bad input, once.
const CATALOG_VALUES: [string, unknown][] = [
  ['NUL', '\u0000'],
  ['a NUL inside', 'a\u0000b'],
  ['a lone surrogate', '\uD800'],
  ['a lone low surrogate inside', 'a\uDC00b'],
  ['control characters', '\u0001\u001f\u007f'],
  ['an escape sequence', '\u001b[31mred'],
  ['right-to-left override', '\u202Eabc'],
  ['a zero-width space', '\u200B'],
  ['only spaces', '   '],
  ['empty', ''],
  ['astral symbols', '𝕊𝕙𝕠𝕡 🧑‍🤝‍🧑'],
  ['10,000 characters', 'x'.repeat(10_000)],
  ['a float', 1.5],
  ['a negative', -1],
  ['zero', 0],
  ['2^31', 2 ** 31],
  ['past 2^53', 2 ** 53 + 2],
  ['1e308', 1e308],
  ['a numeric string', '12'],
  ['null', null],
  ['true', true],
  ['a list', []],
  ['an object', {}],
]
const QUERY_VALUES = ['\u0000', 'a\u0000b', '\uD800', '\u0001', '', ' ', '-1', '1.5', '1e3', '+1', '0x10', '99999999999999999999', 'x'.repeat(300), '١٢']
const HEADER_VALUES = ['', ' ', '\u0001', '\u007f', 'é', '\u00ff', 'x'.repeat(300), 'a b', 'null']

const isUuid = (x: unknown): x is string => typeof x === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(x)

// The places of a body to change, as paths of keys: its fields, and the fields of the first element of its lists, 3 deep.
function leaves(value: unknown, at: (string | number)[] = [], depth = 0): (string | number)[][] {
  if (depth > 3 || value === null || typeof value !== 'object') return []
  const entries: [string | number, unknown][] = Array.isArray(value) ? (value.length ? [[0, value[0]]] : []) : Object.entries(value)
  return entries.flatMap(([k, v]) => [[...at, k], ...leaves(v, [...at, k], depth + 1)])
}

function setAt(value: unknown, path: (string | number)[], to: unknown | typeof REMOVE): unknown {
  if (!path.length) return to
  const copy: any = Array.isArray(value) ? [...value] : { ...(value as object) }
  const [k, ...rest] = path as [string | number, ...(string | number)[]]
  if (rest.length === 0 && to === REMOVE) {
    if (Array.isArray(copy)) copy.splice(Number(k), 1)
    else delete copy[k]
  } else copy[k] = setAt(copy[k], rest, to)
  return copy
}
const REMOVE = Symbol('remove')
const getAt = (value: unknown, path: (string | number)[]) => path.reduce<any>((at, k) => at?.[k], value)

/**
 * The catalog: for one valid request, each kind of bad input in each slot, once (every path
 * parameter, query parameter, header of ours, content type, body field and nested field; missing
 * and extra fields; the same id in two spellings in one list; malformed JSON). Run first, before
 * the random requests, so that `npm test` covers every kind whatever the count.
 */
function catalogOf(method: string, template: string, slots: Slots, base: Parts, ids: Identities): FuzzRequest[] {
  const auth = slots.secured ? `Bearer ${ids.admin}` : undefined
  const out: Parts[] = [base]
  for (const p of slots.pathParams) {
    for (const bad of [...RAW_SEGMENTS, encodeLoose('\u0000'), encodeLoose('\uD800'), encodeLoose('é'), 'x'.repeat(300), randomUUID().toUpperCase()]) {
      out.push({ ...base, path: { ...base.path, [p.name]: bad }, why: `path ${p.name} = ${bad.slice(0, 40)}` })
    }
    if (isUuid(base.path[p.name])) out.push({ ...base, path: { ...base.path, [p.name]: base.path[p.name]!.toUpperCase() }, why: `path ${p.name} in upper case` })
  }
  for (const name of [...slots.queryParams.map((p) => p.name), 'x']) {
    for (const bad of QUERY_VALUES) out.push({ ...base, query: [...base.query.filter(([k]) => k !== name), [name, bad]], why: `query ${name} = ${JSON.stringify(bad).slice(0, 40)}` })
    out.push({ ...base, query: [...base.query, [name, '1'], [name, '1']], why: `query ${name} twice` })
  }
  for (const name of OUR_HEADERS) {
    for (const bad of [...HEADER_VALUES, randomUUID().toUpperCase()]) out.push({ ...base, headers: { ...base.headers, [name]: bad }, why: `header ${name} = ${JSON.stringify(bad).slice(0, 40)}` })
  }
  for (const contentType of CONTENT_TYPES) out.push({ ...base, contentType, body: base.body ?? '{"a":1}', why: `Content-Type: ${contentType}` })
  if (slots.body) {
    const value = base.value
    const body = (v: unknown, why: string): Parts => ({ ...base, value: v, body: JSON.stringify(v), why })
    for (const path of leaves(value)) {
      const name = path.join('.')
      for (const [kind, bad] of CATALOG_VALUES) out.push(body(setAt(value, path, bad), `${name}: ${kind}`))
      const current = getAt(value, path)
      if (isUuid(current)) out.push(body(setAt(value, path, current.toUpperCase()), `${name} in upper case`))
      out.push(body(setAt(value, path, REMOVE), `without ${name}`))
      out.push(body(setAt(value, [...path.slice(0, -1), `${String(path.at(-1))}_extra`], 1), `beside ${name}, an unknown field`))
      // The same element twice in one list, its ids once in lower case and once in upper case.
      if (Array.isArray(current) && current[0] && typeof current[0] === 'object') {
        const shouted = Object.fromEntries(Object.entries(current[0]).map(([k, x]) => [k, isUuid(x) ? x.toUpperCase() : x]))
        out.push(body(setAt(value, path, [current[0], shouted]), `${name}: one element twice, its ids in two spellings`))
      }
    }
    for (const [kind, bad] of CATALOG_VALUES) out.push(body(bad, `a body that is ${kind}`))
    for (const text of MALFORMED_JSON) out.push({ ...base, body: text, why: `malformed JSON ${JSON.stringify(text.slice(0, 20))}` })
    out.push({ ...base, body: new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), why: 'bytes that are not UTF-8' })
    out.push({ ...base, body: JSON.stringify({ pad: 'x'.repeat(70 * 1024) }), why: 'a body over 64 KiB' })
  }
  return out.map((p) => finish(method, template, p, auth))
}

// fast-check prints a failing request this way: short, whatever the size of its body.
const printable = <T extends FuzzRequest>(r: T): T => Object.assign(r, { [fc.toStringMethod]: () => describeRequest(r) })

const describeRequest = (r: FuzzRequest) =>
  `${r.method} ${r.path.slice(0, 300)} (${r.why})\n  headers ${JSON.stringify(r.headers).slice(0, 300)}\n  body ${typeof r.body === 'string' ? JSON.stringify(r.body.slice(0, 300)) : r.body ? `bytes ${[...r.body.slice(0, 40)].join(',')}` : 'none'}`

async function send(app: RequestApp, r: FuzzRequest) {
  const res = await app.request(r.path, { method: r.method, headers: r.headers, ...(r.body !== undefined ? { body: r.body } : {}) })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

type FuzzOptions = {
  /** The app under test (in process, against the test database), once the file's `beforeAll` made it. */
  app: () => RequestApp
  /** Its operations: the document's tag of the function (`products`). */
  tag: string
  /** The identities requests come as. */
  identities: () => Identities
  /**
   * Values to draw for parameters and fields by name instead of from their schema, so that valid
   * requests reach existing things (`{ id: fc.constantFrom(...productIds) }`); each mixed with a
   * random value of the schema.
   */
  values?: () => Record<string, fc.Arbitrary<unknown>>
}

/**
 * One vitest test per operation of `tag` in the OpenAPI document: `fuzzRuns()` requests, valid and
 * hostile, each answered without a 5xx and as the document says (see the module's note).
 */
export function fuzzOperations({ app, tag, identities, values = () => ({}) }: FuzzOptions) {
  const { openapi } = apiDocuments()
  const operations = Object.entries(openapi.paths as Record<string, Record<string, Operation & { tags: string[] }>>).flatMap(([template, item]) =>
    Object.entries(item)
      .filter(([, op]) => op.tags.includes(tag))
      .map(([method, op]) => ({ method: method.toUpperCase(), template, op })),
  )
  if (!operations.length) throw new Error(`no operations tagged ${tag}`)
  for (const { method, template, op } of operations) {
    it(`${op.operationId}: ${method} ${template} never answers 5xx, and answers as documented`, async () => {
      const own = values()
      const ctx: Context = {
        doc: openapi,
        values: Object.fromEntries(Object.entries(own).map(([k, arb]) => [k, fc.oneof(arb, fc.uuid())])),
      }
      const slots = slotsOf(op, openapi)
      const requests = requestOf(method, template, slots, ctx, identities())
      // The catalog's valid request reaches what exists: the values given, never a random one.
      const base = fc.sample(validParts(slots, { doc: openapi, values: own }), { numRuns: 1, seed: seed() })[0]!
      const catalog = catalogOf(method, template, slots, base, identities())
      await fc.assert(
        fc.asyncProperty(requests, async (r) => {
          const answer = await send(app(), r)
          if (answer.status >= 500) throw new Error(`answered ${answer.status}: ${answer.text.slice(0, 300)}\n${describeRequest(r)}`)
          try {
            checkResponse(r.method, r.path, answer)
          } catch (err) {
            throw new Error(`${(err as Error).message}\n${describeRequest(r)}`)
          }
        }),
        // The examples count among the runs: the catalog, then fuzzRuns() random requests.
        { numRuns: catalog.length + fuzzRuns(), seed: seed(), examples: catalog.map((r) => [r] as [FuzzRequest]) },
      )
    }, timeout())
  }
}

// --- events -------------------------------------------------------------------------------------

type Message = { name: string; headers: { properties: Record<string, { const?: string }> }; payload: Json; examples: { payload: unknown }[] }

/**
 * What a delivery must get: `valid` (204, or a 422 its data earns, never a 400), `refused` (not
 * a CloudEvent this route takes: 400, 413 or 415, never 204), `any` (an answer, never a 5xx).
 */
type Expect = 'valid' | 'refused' | 'any'
type Delivery = FuzzRequest & { expect: Expect }

function deliveries(type: string, message: Message) {
  const source = message.headers.properties['ce-source']?.const ?? '/test'
  const binary = (extra: Record<string, string | undefined> = {}) => ({
    'ce-specversion': '1.0',
    'ce-id': randomUUID(),
    'ce-source': source,
    'ce-type': type,
    'ce-time': new Date().toISOString(),
    'Content-Type': 'application/json',
    ...extra,
  })
  const post = (headers: Record<string, string | undefined>, body: string | Uint8Array, why: string, expect: Expect): Delivery =>
    printable({
      method: 'POST',
      path: `/events/${type}`,
      headers: Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<string, string>,
      body,
      why,
      expect,
    })
  const structured = (d: unknown, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ specversion: '1.0', id: randomUUID(), source, type, datacontenttype: 'application/json', data: d, ...extra })
  return { binary, post, structured }
}

// Attributes no CloudEvent this route takes can have, each with what it breaks.
const BROKEN_ATTRIBUTES = (type: string): [string, string | undefined][] => [
  ['ce-specversion', undefined],
  ['ce-id', undefined],
  ['ce-source', undefined],
  ['ce-type', undefined],
  ['ce-specversion', '9.9'],
  ['ce-specversion', '0.3'],
  ['ce-specversion', ''],
  ['ce-id', ''],
  ['ce-source', ''],
  ['ce-type', ''],
  ['ce-type', `${type}.other`],
  ['ce-type', type.toUpperCase()],
  ['ce-time', 'yesterday'],
]
const NOT_JSON = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/xml']

/** Random deliveries of an event type: valid, or hostile in one named way. */
function deliveryOf(type: string, message: Message, ctx: Context): fc.Arbitrary<Delivery> {
  const { binary, post, structured } = deliveries(type, message)
  const data = fc.oneof(valueOf(message.payload, ctx), fc.constantFrom(...message.examples.map((e) => e.payload)))
  return fc.oneof(
    { weight: 2, arbitrary: data.map((d) => post(binary(), JSON.stringify(d), 'valid', 'valid')) },
    data.map((d) => post({ 'Content-Type': 'application/cloudevents+json' }, structured(d), 'structured, valid', 'valid')),
    fc.tuple(data, fc.constantFrom(...BROKEN_ATTRIBUTES(type))).map(([d, [name, bad]]) => post(binary({ [name]: bad }), JSON.stringify(d), `${name} ${bad === undefined ? 'missing' : JSON.stringify(bad)}`, 'refused')),
    fc.tuple(data, fc.constantFrom('ce-id', 'ce-source', 'ce-subject', 'ce-time', 'ce-unknownext'), oddHeaderValue).map(([d, name, bad]) => post(binary({ [name]: bad }), JSON.stringify(d), `${name} = ${JSON.stringify(bad).slice(0, 40)}`, 'any')),
    fc.tuple(data, fc.constantFrom(...NOT_JSON)).map(([d, ct]) => post(binary({ 'Content-Type': ct }), JSON.stringify(d), `Content-Type: ${ct}`, 'refused')),
    fc.tuple(data, hostileBody(data)).map(([d, b]) => post(binary(), b.text, `data: ${b.why}`, 'any')),
    fc.constantFrom(...MALFORMED_JSON).map((text) => post({ 'Content-Type': 'application/cloudevents+json' }, text, 'structured, malformed', 'refused')),
    data.map((d) => post({ 'Content-Type': 'application/cloudevents-batch+json' }, `[${structured(d)}]`, 'batched', 'refused')),
  )
}

/** Every kind of bad delivery, once, for one valid data value (see `catalogOf`). */
function deliveryCatalog(type: string, message: Message, base: unknown): Delivery[] {
  const { binary, post, structured } = deliveries(type, message)
  const out: Delivery[] = [post(binary(), JSON.stringify(base), 'valid', 'valid'), post({ 'Content-Type': 'application/cloudevents+json' }, structured(base), 'structured, valid', 'valid')]
  for (const [name, bad] of BROKEN_ATTRIBUTES(type)) {
    const why = `${name} ${bad === undefined ? 'missing' : JSON.stringify(bad)}`
    out.push(post(binary({ [name]: bad }), JSON.stringify(base), why, 'refused'))
    const attr = name.slice(3)
    out.push(post({ 'Content-Type': 'application/cloudevents+json' }, structured(base, { [attr]: bad }), `structured, ${why}`, 'refused'))
  }
  for (const ct of NOT_JSON) out.push(post(binary({ 'Content-Type': ct }), JSON.stringify(base), `Content-Type: ${ct}`, 'refused'))
  out.push(post(binary({ 'Content-Type': undefined }), JSON.stringify(base), 'no Content-Type', 'refused'))
  out.push(post({ 'Content-Type': 'application/cloudevents+json' }, structured(undefined, { data_base64: 'e30=' }), 'structured, data_base64', 'refused'))
  out.push(post({ 'Content-Type': 'application/cloudevents+json' }, structured(base, { datacontenttype: 'text/plain' }), 'structured, datacontenttype text/plain', 'refused'))
  out.push(post({ 'Content-Type': 'application/cloudevents-batch+json' }, `[${structured(base)}]`, 'batched', 'refused'))
  for (const text of MALFORMED_JSON) {
    out.push(post({ 'Content-Type': 'application/cloudevents+json' }, text, `structured, malformed ${JSON.stringify(text.slice(0, 20))}`, 'refused'))
    out.push(post(binary(), text, `data malformed ${JSON.stringify(text.slice(0, 20))}`, 'any'))
  }
  for (const [name, bad] of [['ce-id', '\u0001'], ['ce-source', 'é'], ['ce-id', 'x'.repeat(300)], ['ce-subject', ''], ['ce-partitionkey', '\u007f']] as const) {
    out.push(post(binary({ [name]: bad }), JSON.stringify(base), `${name} = ${JSON.stringify(bad).slice(0, 40)}`, 'any'))
  }
  const data = (v: unknown, why: string) => post(binary(), JSON.stringify(v), why, 'any')
  for (const path of leaves(base)) {
    const name = path.join('.')
    for (const [kind, bad] of CATALOG_VALUES) out.push(data(setAt(base, path, bad), `${name}: ${kind}`))
    const current = getAt(base, path)
    if (isUuid(current)) out.push(data(setAt(base, path, current.toUpperCase()), `${name} in upper case`))
    out.push(data(setAt(base, path, REMOVE), `without ${name}`))
    if (Array.isArray(current) && current[0] && typeof current[0] === 'object') {
      const shouted = Object.fromEntries(Object.entries(current[0]).map(([k, x]) => [k, isUuid(x) ? x.toUpperCase() : x]))
      out.push(data(setAt(base, path, [current[0], shouted]), `${name}: one element twice, its ids in two spellings`))
    }
  }
  for (const [kind, bad] of CATALOG_VALUES) out.push(data(bad, `data that is ${kind}`))
  out.push(post(binary(), new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), 'data bytes that are not UTF-8', 'any'))
  return out
}

type EventFuzzOptions = {
  app: () => RequestApp
  /** The function whose consumers these are (`cart`): the document's receive operations of it. */
  consumer: string
  values?: () => Record<string, fc.Arbitrary<unknown>>
}

/**
 * One vitest test per event type `consumer` takes (the AsyncAPI document's receive operations):
 * a catalog of every kind of bad delivery (`deliveryCatalog`), then `fuzzRuns()` random ones. The
 * property: 204, or 400, 413, 415 or 422 with an `application/problem+json` problem, never a 5xx; a
 * valid event 204 (or a 422 its data earns); one that is not a CloudEvent this route takes (an
 * attribute missing or wrong, data not JSON, batched) refused, never 204.
 */
export function fuzzConsumers({ app, consumer, values = () => ({}) }: EventFuzzOptions) {
  const { asyncapi } = apiDocuments()
  const messages = (asyncapi.components as { messages: Record<string, Message> }).messages
  const prefix = consumer.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())
  const types = Object.keys(asyncapi.operations as Json)
    .filter((k) => k.startsWith(`${prefix}Receives`))
    .map((k) => Object.values(messages).find((m) => `${prefix}Receives${m.name.replace(/(^|\.)(\w)/g, (_, __, c: string) => c.toUpperCase())}` === k)!)
  if (!types.length) throw new Error(`${consumer} takes no events in the AsyncAPI document`)
  for (const message of types) {
    it(`POST /events/${message.name} never answers 5xx, and refuses bad events with a problem`, async () => {
      const own = values()
      const ctx: Context = { doc: asyncapi, values: Object.fromEntries(Object.entries(own).map(([k, arb]) => [k, fc.oneof(arb, fc.uuid())])) }
      const base = fc.sample(valueOf(message.payload, { doc: asyncapi, values: own }), { numRuns: 1, seed: seed() })[0]
      const catalog = deliveryCatalog(message.name, message, base)
      await fc.assert(
        fc.asyncProperty(deliveryOf(message.name, message, ctx), async (r) => {
          const answer = await send(app(), r)
          const fail = (what: string) => {
            throw new Error(`${what}: ${answer.status} ${answer.text.slice(0, 300)}\n${describeRequest(r)}`)
          }
          if (![204, 400, 413, 415, 422].includes(answer.status)) fail('not 204, 400, 413, 415 or 422')
          if (answer.status !== 204 && (answer.headers.get('Content-Type') ?? '').split(';')[0] !== 'application/problem+json') fail('a refusal that is not a problem')
          if (r.expect === 'valid' && ![204, 422].includes(answer.status)) fail('a valid event not taken')
          if (r.expect === 'refused' && ![400, 413, 415].includes(answer.status)) fail('an event this route must refuse, taken')
        }),
        { numRuns: catalog.length + fuzzRuns(), seed: seed(), examples: catalog.map((r) => [r] as [Delivery]) },
      )
    }, timeout())
  }
}
