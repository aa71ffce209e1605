/**
 * A bench-only program for benchmark 6: `node log-lines.mjs <logger> <lines>` writes `lines`
 * access-log lines (the fields shared/http.ts writes per request) to stdout with one logger, one
 * line per turn of the event loop as a server writes them, then reports on stderr, as one JSON
 * line, its CPU time (µs, every thread: sonic-boom's writes run on libuv's pool) and the wall time
 * (ms) from the first line to the last byte handed to the kernel.
 * Loggers: `ours` (shared/log.ts), `pino-sync`, `pino-async` (bench/apps/log-pino.ts), `none`.
 */
import { createLogger as ours } from '../../shared/log.ts'
import { createLogger as onPino } from './log-pino.ts'

const [which = 'ours', count = '10000'] = process.argv.slice(2)
const lines = Number(count)
// `none` logs nothing: what the loop costs by itself, to subtract.
const log = which === 'none' ? { info() {} } : which === 'ours' ? ours({ name: 'product' }) : onPino({ name: 'product', sync: which === 'pino-sync' })

const line = (i: number) =>
  log.info('request', { request_id: 'c5b1e0a4-7d2e-4d8b-9a53-2f1e6c9b7a10', method: 'GET', route: '/api/products/:id', path: `/api/products/${i}`, status: 200, ms: 1.3 })

// Warm-up, not measured: the JIT, and sonic-boom's first writes.
for (let i = 0; i < 1000; i++) line(i)
setTimeout(() => {
  const cpu = process.cpuUsage()
  const started = performance.now()
  let i = 0
  const next = () => {
    if (i++ < lines) {
      line(i)
      return setImmediate(next)
    }
    // After the last line: pino-async's flush on exit is part of what it costs.
    process.once('exit', () => {
      const used = process.cpuUsage(cpu)
      process.stderr.write(`${JSON.stringify({ cpuUs: used.user + used.system, wallMs: performance.now() - started })}\n`)
    })
  }
  next()
}, 100)
