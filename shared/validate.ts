/**
 * @module
 * Schema-first input: `validate(target, Schema)` checks a request's JSON body, query or path
 * params with valibot and makes the typed output available as `c.req.valid(target)`. The
 * building blocks below (`Text`, `Uuid`, `bodyInt`, `queryInt`, `Page`) are what every field of
 * every route and event is made of, so a rule about a kind of input (no NUL, uuids in one
 * spelling) holds everywhere at once.
 */
import type { Context } from 'hono'
import { validator } from 'hono/validator'
import * as v from 'valibot'
import { badRequest, unsupportedMediaType, type FieldError } from './errors.ts'
import { withRouteMeta } from './route-meta.ts'

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i

// The object schemas whose key issues say "missing" (input undefined) or "unknown" (expected never).
const OBJECTS = new Set(['object', 'loose_object', 'strict_object', 'object_with_rest'])

// valibot's own messages ("Invalid type: Expected string but received …") echo the input; ours say
// what is expected, in the API's words.
const EXPECTED: Record<string, string> = {
  string: 'must be a string',
  number: 'must be a number',
  boolean: 'must be true or false',
  Object: 'must be an object',
  Array: 'must be a list',
}
const plainMessage = ({ message, expected }: v.BaseIssue<unknown>) => {
  if (!message.startsWith('Invalid ')) return message
  if (!expected) return 'is not valid'
  if (EXPECTED[expected]) return EXPECTED[expected]
  // A picklist or union expects `("a" | "b")`.
  const options = expected.replace(/^\((.*)\)$/, '$1').split(' | ')
  return options.length > 1 ? `must be one of ${options.join(', ')}` : `must be ${expected}`
}

/**
 * Turns valibot issues into the `errors` of a 400 or 422 problem: one `{ path, message }` per
 * issue, in order, `path` the field's dotted path (`items.0.quantity`; `(body)` for the whole
 * input). A required field that is missing "is required"; a field a strict object does not have
 * "is not a known field"; a value of the wrong type says what it must be (never echoing the input).
 */
export function fieldErrors(issues: readonly v.BaseIssue<unknown>[]): FieldError[] {
  return issues.map((issue) => {
    const path = issue.path?.map((p) => String(p.key)).join('.') ?? ''
    if (issue.kind === 'schema' && OBJECTS.has(issue.type) && issue.path) {
      // A key issue: valibot reports a missing required key and an extra key of a strict object
      // alike; the extra one "expects never", the missing one has no input.
      if (issue.expected === 'never') return { path, message: 'is not a known field' }
      if (issue.input === undefined) return { path, message: 'is required' }
    }
    return { path: path || '(body)', message: plainMessage(issue) }
  })
}

/**
 * Hono middleware that validates one part of the request (`json` body, `query` or `param`) with a
 * valibot schema and makes the output `c.req.valid(target)`. JSON bodies must say
 * `Content-Type: application/json` (or `+json`; 415 otherwise) and parse (400 otherwise); a query
 * parameter given more than once is a 400 ("must be given once"); then the schema decides (400
 * with `errors`, see `fieldErrors`). Every refusal is an RFC 9457 problem.
 *
 * @example
 * ```ts
 * const ProductParams = v.strictObject({ id: Uuid })
 * app.get('/api/products/:id', validate('param', ProductParams), (c) => c.json(c.req.valid('param')))
 * ```
 */
export function validate<T extends 'json' | 'query' | 'param', S extends v.GenericSchema>(target: T, schema: S) {
  const middleware = validator(target, (value, c: Context): v.InferOutput<S> => {
    if (target === 'json' && !JSON_TYPE.test((c.req.header('Content-Type') ?? '').split(';')[0]!.trim())) {
      throw unsupportedMediaType('application/json')
    }
    if (target === 'query') {
      const repeated = Object.entries(value as Record<string, unknown>).filter(([, given]) => Array.isArray(given))
      if (repeated.length) throw badRequest('the request query is not valid', repeated.map(([path]) => ({ path, message: 'must be given once' })))
    }
    const result = v.safeParse(schema, value)
    if (!result.success) throw badRequest(`the request ${where[target]} is not valid`, fieldErrors(result.issues))
    return result.output
  })
  // The API description reads the schema from here (shared/openapi.ts).
  return withRouteMeta(middleware, { kind: 'request', target, schema })
}

const where = { json: 'body', query: 'query', param: 'path' } as const

// No NUL: PostgreSQL's text cannot hold U+0000 (it refuses the whole statement, SQLSTATE 22021).
// Written without \p{…} so that it means the same with or without the `u` flag, as a JSON
// Schema `pattern` generated from it may be read either way.
const NO_NUL = /^[^\u0000]*$/
// A lone UTF-16 surrogate (JSON's "\ud800" escape, unpaired) is not a character: PostgreSQL would
// store U+FFFD in its place, silently, and refuse it outright inside JSON (22P02).
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * A valibot schema for any string that may reach PostgreSQL, from a body, a query, a path or an
 * event's data: a string ("must be a string" otherwise) with no NUL character (U+0000, which
 * PostgreSQL text cannot hold: "must not contain the NUL character") and no lone surrogate (an
 * unpaired `\ud800`–`\udfff` escape, which is not Unicode text: "must be valid Unicode text").
 * Every string field is built on it: `v.pipe(Text, v.trim(), v.maxLength(200, …))`.
 */
export const Text = v.pipe(
  v.string('must be a string'),
  v.regex(NO_NUL, 'must not contain the NUL character (U+0000)'),
  v.check((s) => !LONE_SURROGATE.test(s), 'must be valid Unicode text (it has an unpaired surrogate)'),
)

/**
 * A valibot schema for a UUID path, query, body or event field (any version; "must be a UUID"
 * otherwise), written in lower case once past validation, as PostgreSQL writes uuids: equal ids
 * are equal strings in code, as they are equal uuids in the database.
 */
export const Uuid = v.pipe(v.string('must be a UUID'), v.uuid('must be a UUID'), v.toLowerCase())

/** A valibot schema for a whole number in a query string (`?limit=20`), from `min` to `max` inclusive, `fallback` when absent. */
export const queryInt = (fallback: number, min: number, max: number) =>
  v.pipe(
    v.optional(v.string(), String(fallback)),
    v.regex(/^\d{1,10}$/, `must be a whole number from ${min} to ${max}`),
    v.transform(Number),
    v.minValue(min, `must be a whole number from ${min} to ${max}`),
    v.maxValue(max, `must be a whole number from ${min} to ${max}`),
  )

/** A valibot schema for a whole number in a JSON body (never a float or a numeric string), from `min` to `max` inclusive. */
export const bodyInt = (min: number, max: number) =>
  v.pipe(
    v.number('must be a number'),
    v.integer('must be a whole number'),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  )

/** Pagination shared by every list, valibot entries for a query schema: `?limit` 1..100 (default 20) and `?offset` 0..1,000,000 (default 0), counted in items. */
export const Page = {
  limit: queryInt(20, 1, 100),
  offset: queryInt(0, 0, 1_000_000),
}
