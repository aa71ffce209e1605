/**
 * shared/log.ts's API on pino, for benchmark 6 to weigh against ours: the same fields (`time` as an
 * ISO string, `level` as its name, `fn`, `msg`, then the caller's), one JSON line each, to stdout
 * (file descriptor 1) written synchronously or, with `sync: false`, by sonic-boom in the background,
 * flushed on exit.
 */
import pino from 'pino'
import type { LogFields, Logger, LogLevel } from '../../shared/log.ts'

type Options = { name: string; level?: LogLevel; write?: (line: string) => void; sync?: boolean }

export function createLogger({ name, level = 'info', write, sync = true }: Options): Logger {
  const destination = write ? { write: (chunk: string) => write(chunk.slice(0, -1)) } : pino.destination({ dest: 1, sync })
  const root = pino(
    {
      level,
      base: { fn: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Ours writes an Error as name, message, code and stack: keep those names.
      serializers: { err: serializeError },
    },
    destination,
  )
  const wrap = (p: pino.Logger): Logger => ({
    debug: (msg: string, fields?: LogFields) => p.debug(fields ?? {}, msg),
    info: (msg: string, fields?: LogFields) => p.info(fields ?? {}, msg),
    warn: (msg: string, fields?: LogFields) => p.warn(fields ?? {}, msg),
    error: (msg: string, fields?: LogFields) => p.error(fields ?? {}, msg),
    child: (fields) => wrap(p.child(fields)),
  })
  return wrap(root)
}

function serializeError(value: unknown) {
  if (!(value instanceof Error)) return value
  const { code } = value as { code?: unknown }
  return { name: value.name, message: value.message, ...(code ? { code } : {}), stack: value.stack }
}
