/**
 * @module
 * Schema-first input: `validate(target, Schema)` checks a request's JSON body, query or path
 * params with valibot and makes the typed output available as `c.req.valid(target)`.
 */
import type { Context } from 'hono'
import { validator } from 'hono/validator'
import * as v from 'valibot'
import { badRequest, unsupportedMediaType, type FieldError } from './errors.ts'

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i

/** Turns valibot issues into the `errors` of a 400 or 422 problem: one `{ path, message }` per issue, in order; an unknown field of a strict object says so. */
export function fieldErrors(issues: readonly v.BaseIssue<unknown>[]): FieldError[] {
  return issues.map((issue) => {
    const path = issue.path?.map((p) => String(p.key)).join('.') ?? ''
    if (issue.kind === 'schema' && issue.type === 'strict_object' && issue.path) {
      return { path, message: 'is not a known field' }
    }
    return { path: path || '(body)', message: issue.message }
  })
}

/**
 * Hono middleware that validates one part of the request (`json` body, `query` or `param`) with a
 * valibot schema and makes the output `c.req.valid(target)`. JSON bodies must say
 * `Content-Type: application/json` (or `+json`; 415 otherwise) and parse (400 otherwise); then
 * the schema decides (400 with `errors`). Every refusal is an RFC 9457 problem.
 *
 * @example
 * ```ts
 * const ProductParams = v.strictObject({ id: v.pipe(v.string(), v.uuid('must be a UUID')) })
 * app.get('/api/products/:id', validate('param', ProductParams), (c) => c.json(c.req.valid('param')))
 * ```
 */
export function validate<T extends 'json' | 'query' | 'param', S extends v.GenericSchema>(target: T, schema: S) {
  return validator(target, (value, c: Context): v.InferOutput<S> => {
    if (target === 'json' && !JSON_TYPE.test((c.req.header('Content-Type') ?? '').split(';')[0]!.trim())) {
      throw unsupportedMediaType('application/json')
    }
    const result = v.safeParse(schema, value)
    if (!result.success) throw badRequest(`the request ${where[target]} is not valid`, fieldErrors(result.issues))
    return result.output
  })
}

const where = { json: 'body', query: 'query', param: 'path' } as const

/** A valibot schema for a UUID path or body field (any version; "must be a UUID" otherwise). */
export const Uuid = v.pipe(v.string(), v.uuid('must be a UUID'))

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
