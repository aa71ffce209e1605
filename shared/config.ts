/**
 * @module
 * Configuration: the environment, parsed once at start with a valibot schema. A function's
 * `index.ts` is the only file that passes `process.env` in; everything else takes values.
 */
import * as v from 'valibot'

/** A valibot schema for a variable holding a whole number from `min` to `max` (inclusive); `fallback` when unset or blank. */
export const intVar = (fallback: number, min: number, max: number) =>
  v.pipe(
    v.optional(v.string(), String(fallback)),
    v.transform((s) => (s.trim() === '' ? String(fallback) : s.trim())),
    v.regex(/^-?\d+$/, `must be a whole number from ${min} to ${max}`),
    v.transform(Number),
    v.minValue(min, `must be a whole number from ${min} to ${max}`),
    v.maxValue(max, `must be a whole number from ${min} to ${max}`),
  )

/** A valibot schema for a variable holding a decimal number from `min` to `max` (inclusive); `fallback` when unset or blank. */
export const numberVar = (fallback: number, min: number, max: number) =>
  v.pipe(
    v.optional(v.string(), String(fallback)),
    v.transform((s) => (s.trim() === '' ? String(fallback) : s.trim())),
    v.regex(/^-?(\d+\.?\d*|\.\d+)$/, `must be a number from ${min} to ${max}`),
    v.transform(Number),
    v.minValue(min, `must be a number from ${min} to ${max}`),
    v.maxValue(max, `must be a number from ${min} to ${max}`),
  )

/** A valibot schema for a variable holding one of `options` (exact, case-sensitive); `fallback` when unset or blank. */
export const enumVar = <const T extends readonly [string, ...string[]]>(options: T, fallback: T[number]) =>
  v.pipe(
    v.optional(v.string(), fallback),
    v.transform((s) => (s.trim() === '' ? fallback : s.trim())),
    v.picklist(options, `must be one of ${options.join(', ')}`),
  )

/** A valibot schema for a variable holding any string, trimmed; `fallback` when unset or blank. */
export const stringVar = (fallback: string) =>
  v.pipe(
    v.optional(v.string(), fallback),
    v.transform((s) => (s.trim() === '' ? fallback : s.trim())),
  )

/** A valibot schema for a required URL whose scheme is one of `protocols` (with the colon: `['http:', 'https:']`), trimmed. */
export const urlVar = (protocols: string[]) =>
  v.pipe(
    v.optional(v.string(), ''),
    v.trim(),
    v.nonEmpty('is required'),
    v.check((s) => {
      if (s === '') return true // already said: is required
      try {
        return protocols.includes(new URL(s).protocol)
      } catch {
        return false
      }
    }, `must be a ${protocols.map((p) => p.replace(':', '://')).join(' or ')} URL`),
  )

/** Like `urlVar`, but optional: unset or blank gives `undefined`. */
export const optionalUrlVar = (protocols: string[]) =>
  v.pipe(
    v.optional(v.string()),
    v.transform((s) => s?.trim() || undefined),
    v.union([v.undefined(), urlVar(protocols)], `must be a ${protocols.map((p) => p.replace(':', '://')).join(' or ')} URL`),
  )

/** A valibot schema for a required variable holding a JSON document, parsed, then checked with `schema` (its output is the result). */
export const jsonVar = <S extends v.GenericSchema>(schema: S) =>
  v.pipe(
    v.optional(v.string(), ''),
    v.nonEmpty('is required'),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      try {
        return JSON.parse(dataset.value) as unknown
      } catch {
        addIssue({ message: 'must be valid JSON' })
        return NEVER
      }
    }),
    schema,
  )

/**
 * A valibot schema for a variable holding a comma-separated list of web origins
 * (`https://shop.example.com,http://localhost:5173`): scheme, host and port, no path; each
 * written as browsers send it in `Origin`. Unset or blank: none.
 */
export const originsVar = () =>
  v.pipe(
    v.optional(v.string(), ''),
    v.transform((s) => s.split(',').map((o) => o.trim()).filter(Boolean)),
    v.check(
      (list) => list.every((o) => URL.canParse(o) && ['http:', 'https:'].includes(new URL(o).protocol) && new URL(o).origin === o),
      'must be a comma-separated list of origins such as https://shop.example.com (scheme, host and port; no path, no trailing slash)',
    ),
  )

/**
 * The variables every function reads, with their defaults and bounds (the README's "Configuration"
 * table, rows "all"); a function adds its own with `{ ...BaseEnv, … }`.
 */
export const BaseEnv = {
  PORT: intVar(8080, 0, 65535),
  DATABASE_URL: urlVar(['postgres:', 'postgresql:']),
  DATABASE_POOL_MAX: intVar(5, 1, 100),
  DATABASE_NAMED_STATEMENTS: enumVar(['on', 'off'], 'on'),
  MIGRATE: enumVar(['auto', 'only', 'off'], 'auto'),
  JWT_ISSUER: stringVar('shop-auth'),
  JWT_AUDIENCE: stringVar('shop'),
  LOG_LEVEL: enumVar(['debug', 'info', 'warn', 'error', 'silent'], 'info'),
  NODE_ENV: stringVar('development'),
  /** Empty: every interface (what Knative needs); the local runner binds 127.0.0.1. */
  HOST: stringVar(''),
  /** The browser origins allowed to call the API (shared/cors.ts); none by default. */
  CORS_ORIGINS: originsVar(),
}

/**
 * The exit code of a function whose configuration is wrong: `EX_CONFIG` of BSD's sysexits.h.
 * Starting it again cannot help, so a supervisor that sees it stops trying and shows the message.
 */
export const EXIT_CONFIG = 78

/** Thrown when the environment does not fit the schema; the message names every bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Parses `env` with `schema` once. On failure it throws a `ConfigError` whose message has one
 * line per bad variable, naming it and saying what is wrong.
 *
 * @example
 * ```ts
 * const config = loadConfig(v.object({ ...BaseEnv, PRODUCT_URL: urlVar(['http:', 'https:']) }), process.env)
 * ```
 */
export function loadConfig<S extends v.GenericSchema>(schema: S, env: Record<string, string | undefined>): v.InferOutput<S> {
  const result = v.safeParse(schema, env)
  if (result.success) return result.output
  const lines = result.issues.map((issue) => {
    const name = issue.path?.map((p) => String(p.key)).join('.') ?? '(environment)'
    const got = issue.input === undefined || issue.input === '' ? 'unset' : secret.test(name) ? 'a value not shown' : JSON.stringify(truncate(String(issue.input)))
    return `  ${name}: ${issue.message} (got ${got})`
  })
  return fail(`invalid configuration:\n${lines.join('\n')}`)
}

const fail = (message: string): never => {
  throw new ConfigError(message)
}

// Values of these may be secrets (a URL can carry a password): never echo them.
const secret = /KEY|PASSWORD|SECRET|TOKEN|URL/
const truncate = (s: string) => (s.length > 60 ? `${s.slice(0, 57)}…` : s)
