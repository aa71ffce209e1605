/**
 * @module
 * `npm run bench [-- names…] [--quick] [--rounds 3] [--duration 10s] [--warmup 2s]`: which
 * benchmarks, and how long each of their runs lasts.
 */
import { parseArgs } from 'node:util'

/** The benchmarks in the order they run; each can be named by its name or its number. */
export const benchmarkNames = ['overhead', 'writes', 'login', 'cold-start', 'events', 'logger', 'storefront'] as const
export type BenchmarkName = (typeof benchmarkNames)[number]

export type Options = {
  benchmarks: BenchmarkName[]
  quick: boolean
  /** Turns each contender gets (subject, baseline, subject, baseline, …); at least 3. */
  rounds: number
  /** One measured load run, in seconds. */
  durationS: number
  /** Load before each measured run, not counted, in seconds. */
  warmupS: number
  /** Spawns per bundle for the cold start median. */
  coldStarts: number
  /** Orders through the whole stack (benchmark 5). */
  orders: number
  /** Events through the broker per round (benchmark 5). */
  events: number
  /** Orders per round with the 2 s payment delay, at parallelism 1 and 20. */
  slowOrders: { p1: number; p20: number }
}

export class UsageError extends Error {
  override name = 'UsageError'
}

export const usage = `usage: npm run bench [-- names…] [--quick] [--rounds N] [--duration 10s] [--warmup 2s]
  names      ${benchmarkNames.map((n, i) => `${i + 1}|${n}`).join(' ')}  (default: all)
  --quick    short runs (2 s, 1 s warm-up, fewer spawns and orders): for development and smoke tests
  --rounds   turns per contender, at least 3 (default 3)
  --duration one measured run (default 10s; quick 2s)
  --warmup   load before each measured run (default 2s; quick 1s)`

/** Parses `500ms`, `2s`, `1.5m` or a bare number of seconds into seconds. */
export function parseSeconds(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim())
  if (!match) throw new UsageError(`${what} must look like 10s, 500ms or 1m, not ${JSON.stringify(text)}`)
  const n = Number(match[1])
  const seconds = match[2] === 'ms' ? n / 1000 : match[2] === 'm' ? n * 60 : n
  if (seconds <= 0) throw new UsageError(`${what} must be more than 0`)
  return seconds
}

export function parseOptions(argv: readonly string[]): Options {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        quick: { type: 'boolean', default: false },
        rounds: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help) throw new UsageError('')
  const quick = values.quick ?? false
  const rounds = values.rounds === undefined ? 3 : Number(values.rounds)
  if (!Number.isInteger(rounds) || rounds < 3) throw new UsageError(`--rounds must be a whole number of at least 3, not ${values.rounds}`)

  const benchmarks = positionals.length === 0 ? [...benchmarkNames] : positionals.map(toName)
  return {
    benchmarks: benchmarkNames.filter((n) => benchmarks.includes(n)),
    quick,
    rounds,
    durationS: values.duration ? parseSeconds(values.duration, '--duration') : quick ? 2 : 10,
    warmupS: values.warmup ? parseSeconds(values.warmup, '--warmup') : quick ? 1 : 2,
    coldStarts: quick ? 3 : 10,
    orders: quick ? 200 : 1000,
    events: quick ? 500 : 3000,
    slowOrders: quick ? { p1: 2, p20: 20 } : { p1: 5, p20: 60 },
  }
}

function toName(word: string): BenchmarkName {
  const byNumber = /^\d+$/.test(word) ? benchmarkNames[Number(word) - 1] : undefined
  const name = byNumber ?? benchmarkNames.find((n) => n === word)
  if (!name) throw new UsageError(`no benchmark ${JSON.stringify(word)}; there are ${benchmarkNames.map((n, i) => `${i + 1} ${n}`).join(', ')}`)
  return name
}
