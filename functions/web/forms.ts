/**
 * @module
 * Forms: what a browser posts (`application/x-www-form-urlencoded` or `multipart/form-data`),
 * checked with a valibot schema like every other input, and the errors to show beside each
 * field, whether they come from that schema or from the API's problem `errors[].path`.
 */
import type { Context } from 'hono'
import * as v from 'valibot'
import { Text } from '../../shared/validate.ts'
import type { Problem } from './shop.ts'

/** A form's fields as posted: one string each, or a list for a field given more than once. Files are dropped. */
export type FormValues = Record<string, string | string[]>

/** Errors to show, by field name (`''` for the form as a whole). */
export type FieldErrors = Record<string, string>

/**
 * The request's form fields. Hono parses the body once and keeps it, so the CSRF check and the
 * route read the same fields; a body that is not a form gives no fields.
 */
export async function formValues(c: Context): Promise<FormValues> {
  const ct = c.req.header('Content-Type') ?? ''
  if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(ct)) return {}
  const body = await c.req.parseBody({ all: true })
  const values: FormValues = {}
  for (const [key, value] of Object.entries(body)) {
    if (typeof value === 'string') values[key] = value
    else if (Array.isArray(value)) values[key] = value.filter((x): x is string => typeof x === 'string')
  }
  return values
}

/** A form checked against its schema: the typed `data`, or the `errors` by field and the `values` to show again. */
export type FormResult<T> = { ok: true; data: T; values: FormValues } | { ok: false; errors: FieldErrors; values: FormValues }

/**
 * Reads the request's form and checks it with `schema` (an object schema over the field names).
 * The first issue of each field becomes its message; an issue of the whole form goes under `''`.
 */
export async function readForm<S extends v.GenericSchema>(c: Context, schema: S): Promise<FormResult<v.InferOutput<S>>> {
  const values = await formValues(c)
  const result = v.safeParse(schema, values)
  if (result.success) return { ok: true, data: result.output, values }
  const errors: FieldErrors = {}
  for (const issue of result.issues) {
    const field = issue.path?.map((p) => String(p.key)).join('.') ?? ''
    errors[field] ??= issue.message
  }
  return { ok: false, errors, values }
}

/**
 * The errors of an API problem by form field: each `errors[].path` the API names (`email`,
 * `items.0.quantity`) goes to the field `fieldOf` maps it to (by default the same name), the
 * message written as a sentence; what maps to no field, and a problem without `errors`, goes to
 * `''` with the problem's `detail`.
 */
export function problemErrors(problem: Problem, fieldOf: (path: string) => string | undefined = (p) => p): FieldErrors {
  const errors: FieldErrors = {}
  for (const e of problem.errors) {
    const field = fieldOf(e.path)
    if (field === undefined) errors[''] ??= sentence(`${e.path} ${e.message}`)
    else errors[field] ??= sentence(`${label(field)} ${e.message}`)
  }
  if (!problem.errors.length) errors[''] = sentence(problem.detail || 'That did not work')
  return errors
}

const label = (field: string) => (field.split('.').at(-1) ?? field).replace(/_cents$/, '').replace(/_/g, ' ')
const sentence = (s: string) => {
  const t = s.trim()
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.')
}

/** A valibot schema for one text field: trimmed, with `required` as the message when it is empty. */
export const requiredText = (required: string, max = 200) =>
  v.pipe(Text, v.trim(), v.nonEmpty(required), v.maxLength(max, `Use at most ${max} characters.`))

/** A valibot schema for a whole number field from `min` to `max`, typed by a person (spaces allowed around it). */
export const wholeNumber = (message: string, min: number, max: number) =>
  v.pipe(
    v.string(message),
    v.trim(),
    v.regex(/^-?\d{1,10}$/, message),
    v.transform(Number),
    v.minValue(min, message),
    v.maxValue(max, message),
  )

/** A valibot schema for a price typed in units of the currency (`12`, `12.5`, `12.50`), answered in whole cents. */
export const priceField = v.pipe(
  v.string('Enter a price.'),
  v.trim(),
  v.nonEmpty('Enter a price.'),
  v.regex(/^\d{1,8}([.,]\d{1,2})?$/, 'Enter a price like 12.50.'),
  v.transform((s) => {
    const [whole = '0', fraction = ''] = s.replace(',', '.').split('.')
    return Number(whole) * 100 + Number(fraction.padEnd(2, '0'))
  }),
)

/**
 * The page to go back to after a login, from a `next` field or query: only a path of this site
 * (`/cart`, never `//evil.example` or `https://…`), else `/`.
 */
export function localPath(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return '/'
  // Resolved against a fixed origin: whatever it says, it stays on it. The path is checked again
  // once resolved: dot segments can make `//host` of it (`/.//evil.example`, `/a/..//evil.example`,
  // `/%2e//evil.example`), which a browser takes for another site.
  const url = new URL(next, 'http://shop.invalid')
  if (url.origin !== 'http://shop.invalid' || url.pathname.startsWith('//') || url.pathname.includes('\\')) return '/'
  return url.pathname + url.search
}
