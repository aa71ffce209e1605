/**
 * @module
 * Structured logs: one JSON object per line on stdout, which is what Knative's log
 * collectors (and `npm start`'s prefixer) read.
 *
 * Hand-written rather than on pino (benchmark 6, bench/benchmarks/logger.ts). Writing the same
 * fields in a function's CPU quota, pino's synchronous destination was slower per request; its
 * asynchronous one was no faster under load, took twice the CPU per line at a light load, and loses
 * or reorders the lines it holds when the process is killed or exits mid-write. Pino would also add
 * 62 KB to every bundle. Here each line is with the kernel before the call returns.
 */

/** The least severe level written (`LOG_LEVEL`); `silent` writes nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
/** Fields added to a line as JSON properties; an `Error` among them is written as `{ name, message, code?, stack }`. */
export type LogFields = Record<string, unknown>
/** Writes one JSON line per call at that level (`{ time, level, fn, msg, ...fields }`), or nothing below the logger's level. */
export type Logger = {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

type LoggerOptions = {
  name: string
  level?: LogLevel
  write?: (line: string) => void
}

/**
 * A logger for the function `name` (the `fn` of every line) that writes lines at `level` or above
 * (default `info`) as JSON, one per line, through `write` (default: stdout). `time` is ISO 8601
 * (UTC); a call's `fields` win over a child's.
 *
 * @example
 * ```ts
 * const log = createLogger({ name: 'product', level: 'info' })
 * log.info('listening', { port: 8080 })
 * // {"time":"…","level":"info","fn":"product","msg":"listening","port":8080}
 * ```
 */
export function createLogger({ name, level = 'info', write = (line) => process.stdout.write(line + '\n') }: LoggerOptions): Logger {
  const min = rank[level]
  const make = (base: LogFields): Logger => {
    const emit = (lvl: Exclude<LogLevel, 'silent'>) => (msg: string, fields?: LogFields) => {
      if (rank[lvl] < min) return
      const line = { time: new Date().toISOString(), level: lvl, fn: name, msg, ...base, ...fields }
      // The replacer visits every key: pay for it only when a field holds an Error.
      const hasError = fields !== undefined && Object.values(fields).some((f) => f instanceof Error)
      write(hasError ? JSON.stringify(line, errorReplacer) : JSON.stringify(line))
    }
    return {
      debug: emit('debug'),
      info: emit('info'),
      warn: emit('warn'),
      error: emit('error'),
      child: (fields) => make({ ...base, ...fields }),
    }
  }
  return make({})
}

// Errors have no enumerable fields; without this they log as {}.
function errorReplacer(_key: string, value: unknown) {
  if (value instanceof Error) {
    const { code } = value as { code?: unknown }
    return { name: value.name, message: value.message, ...(code ? { code } : {}), stack: value.stack }
  }
  return value
}
