/**
 * @module
 * `npm run load -- [options]`: the command line, read with node:util parseArgs and checked with
 * valibot. A bad argument is a `UsageError`, which main.ts shows with the usage and exit code 2.
 */
import { parseArgs } from 'node:util'
import * as v from 'valibot'
import { intVar } from '../../shared/config.ts'

export const USAGE = `usage: npm run load -- [options]

  --target URL           the shop to drive (its ingress, e.g. http://127.0.0.1:8080);
                         unset: start the local stack in-process, and stop it at the end
  --users N              virtual shoppers, one request in flight each (default 20)
  --duration TIME        how long they shop, e.g. 20s, 2m, 1500ms (default 20s)
  --settle TIME          how long to wait after the run for orders to become final (default 60s)
  --admin-email EMAIL    an admin of the target, used only to add products to an empty catalog
  --admin-password PW
  --json PATH            also write the summary as JSON to PATH
  --help                 this text

Exit code: 0 when every invariant holds, 1 when one fails (or the run could not be made),
2 for a bad argument.`

/** A bad command line; the message says which argument and why. */
export class UsageError extends Error {
  override name = 'UsageError'
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** `20s`, `1.5m`, `500ms`, `2h`, or a bare number of seconds, as milliseconds within bounds. */
export const durationArg = (fallback: string, minMs: number, maxMs: number) =>
  v.pipe(
    v.optional(v.string(), fallback),
    v.trim(),
    v.regex(/^(\d+(\.\d+)?)(ms|s|m|h)?$/, 'must be a time like 20s, 2m or 500ms'),
    v.transform((s) => {
      const [, amount, , unit] = /^(\d+(?:\.(\d+))?)(ms|s|m|h)?$/.exec(s)!
      return Math.round(Number(amount) * UNITS[unit ?? 's']!)
    }),
    v.minValue(minMs, `must be at least ${formatMs(minMs)}`),
    v.maxValue(maxMs, `must be at most ${formatMs(maxMs)}`),
  )

const formatMs = (ms: number) => (ms % 60_000 === 0 && ms >= 60_000 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`)

const HttpUrl = v.pipe(
  v.string(),
  v.trim(),
  v.check((s) => {
    try {
      return ['http:', 'https:'].includes(new URL(s).protocol)
    } catch {
      return false
    }
  }, 'must be an http:// or https:// URL'),
  // The shop's routes are absolute (/api/...): the base is the origin, a path would be ignored.
  v.transform((s) => s.replace(/\/+$/, '')),
)

const Args = v.pipe(
  v.object({
    target: v.optional(HttpUrl),
    users: intVar(20, 1, 1000),
    duration: durationArg('20s', 1_000, 24 * 3_600_000),
    settle: durationArg('60s', 0, 3_600_000),
    'admin-email': v.optional(v.pipe(v.string(), v.trim(), v.email('must be an email address'))),
    'admin-password': v.optional(v.pipe(v.string(), v.minLength(8, 'must be at least 8 characters'))),
    json: v.optional(v.pipe(v.string(), v.trim(), v.nonEmpty('must be a file path'))),
    help: v.optional(v.boolean(), false),
  }),
  v.check((a) => (a['admin-email'] === undefined) === (a['admin-password'] === undefined), 'give both --admin-email and --admin-password, or neither'),
)

export type LoadOptions = {
  /** The shop's base URL; undefined: start the local stack. */
  target?: string
  users: number
  durationMs: number
  settleMs: number
  admin?: { email: string; password: string }
  json?: string
  help: boolean
}

/** Reads `argv` (without node and the script); throws `UsageError` with every problem, one a line. */
export function parseOptions(argv: string[]): LoadOptions {
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        target: { type: 'string' },
        users: { type: 'string' },
        duration: { type: 'string' },
        settle: { type: 'string' },
        'admin-email': { type: 'string' },
        'admin-password': { type: 'string' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (err) {
    // parseArgs says "Unknown option '--user'" and the like: clear already, only the type is ours.
    throw new UsageError(err instanceof Error ? err.message : String(err))
  }
  const result = v.safeParse(Args, values)
  if (!result.success) {
    const lines = result.issues.map((issue) => {
      const key = issue.path?.map((p) => String(p.key)).join('.')
      if (!key) return issue.message
      const shown = key === 'admin-password' ? 'a value not shown' : JSON.stringify(issue.input)
      return `--${key}: ${issue.message} (got ${shown})`
    })
    throw new UsageError(lines.join('\n'))
  }
  const a = result.output
  return {
    ...(a.target !== undefined ? { target: a.target } : {}),
    users: a.users,
    durationMs: a.duration,
    settleMs: a.settle,
    ...(a['admin-email'] !== undefined && a['admin-password'] !== undefined ? { admin: { email: a['admin-email'], password: a['admin-password'] } } : {}),
    ...(a.json !== undefined ? { json: a.json } : {}),
    help: a.help,
  }
}
