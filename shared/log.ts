/**
 * @module
 * Structured logs: one JSON object per line on stdout, which is what Knative's log
 * collectors (and `npm start`'s prefixer) read.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export type LogFields = Record<string, unknown>
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
