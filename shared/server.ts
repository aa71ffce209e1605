/**
 * @module
 * Running a function as a process: pool, migrations (per `MIGRATE`), the HTTP server on `PORT`,
 * and a clean stop on SIGTERM (stop accepting, finish what is in flight, close the pool, exit 0).
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Hono } from 'hono'
import { ConfigError, EXIT_CONFIG } from './config.ts'
import { withCors } from './cors.ts'
import { createPool, isDatabaseUnavailable, type Pool } from './db.ts'
import { createLogger, type LogLevel, type Logger } from './log.ts'
import { createMetrics, type Metrics } from './metrics.ts'
import { migrate } from './migrate.ts'

type BaseConfig = {
  PORT: number
  HOST: string
  DATABASE_URL: string
  DATABASE_POOL_MAX: number
  DATABASE_NAMED_STATEMENTS: 'on' | 'off'
  MIGRATE: 'auto' | 'only' | 'off'
  LOG_LEVEL: LogLevel
  CORS_ORIGINS: string[]
}

/** What `startFunction` hands a function's app factory: its database pool, its logger and its metrics registry. */
export type FunctionDeps = { pool: Pool; log: Logger; metrics: Metrics }

type StartOptions = {
  name: string
  config: BaseConfig
  /** The database schema this function owns, and the folder of its migrations. */
  schema: string
  migrations: URL
  app: (deps: FunctionDeps) => Hono | Promise<Hono>
  /** Runs after the server has stopped and before the pool closes. */
  onStop?: () => Promise<void> | void
}

/**
 * A function that listens: `port` is the one it got (useful with `PORT=0`); `stop()` stops
 * accepting, finishes the requests in flight (cutting stragglers after 20 s), runs `onStop`, closes
 * the pool, and resolves; calling it again answers the same promise.
 */
export type RunningFunction = { port: number; stop: () => Promise<void> }

/**
 * Starts a function: makes its pool and logger, migrates `schema` from `migrations` (unless
 * `MIGRATE=off`), builds `app` with its `FunctionDeps` and serves it on `HOST`:`PORT`, behind CORS
 * for the browser origins of `CORS_ORIGINS` (shared/cors.ts; none: as it is). Resolves
 * once it listens, or to `undefined` after a `MIGRATE=only` run (the pool closed). Rejects when a
 * migration fails or the app factory throws.
 */
export async function startFunction({ name, config, schema, migrations, app, onStop }: StartOptions): Promise<RunningFunction | undefined> {
  const log = createLogger({ name, level: config.LOG_LEVEL })
  const pool = createPool({
    connectionString: config.DATABASE_URL,
    max: config.DATABASE_POOL_MAX,
    namedStatements: config.DATABASE_NAMED_STATEMENTS === 'on',
    applicationName: name,
    log,
  })
  if (config.MIGRATE !== 'off') await migrate(pool, { schema, dir: migrations, log })
  if (config.MIGRATE === 'only') {
    await pool.end()
    log.info('migrations done')
    return undefined
  }
  const metrics = createMetrics()
  const { fetch } = withCors(await app({ pool, log, metrics }), config.CORS_ORIGINS)
  const server = await new Promise<Server>((resolve, reject) => {
    // A port in use (EADDRINUSE) rejects the start (main() reports it and exits 1), not an unheard 'error'.
    const s = serve({ fetch, port: config.PORT, ...(config.HOST ? { hostname: config.HOST } : {}) }, () => {
      s.off('error', reject)
      resolve(s as Server)
    })
    s.once('error', reject)
  })
  // A listening server reports a failed accept (EMFILE: out of file descriptors under load) as an
  // 'error' event and goes on listening; unheard, that event would end the process.
  server.on('error', (err) => log.error('server error; still listening', { err }))
  // Longer than any load balancer's idle timeout, so it closes idle sockets, not they.
  server.keepAliveTimeout = 65_000
  const port = (server.address() as AddressInfo).port
  log.info('listening', { port, migrate: config.MIGRATE })

  let stopping: Promise<void> | undefined
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping: finishing requests in flight')
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      // Keep-alive sockets become idle as their last response ends; close them as they do.
      server.closeIdleConnections()
      const sweep = setInterval(() => server.closeIdleConnections(), 50)
      // Knative's grace period is 30 s by default: give up on stragglers before it kills us.
      const deadline = setTimeout(() => server.closeAllConnections(), 20_000)
      await closed
      clearInterval(sweep)
      clearTimeout(deadline)
      await onStop?.()
      await pool.end()
      log.info('stopped')
    })())
  return { port, stop }
}

/**
 * The body of every `index.ts`: runs `start`, stops cleanly on SIGTERM/SIGINT, and turns a bad
 * configuration into a message and exit code `EXIT_CONFIG` (never a stack trace); any other
 * failure to start exits 1. Started with an IPC channel
 * (by the local runner or a benchmark), it also stops when that channel closes: see below.
 */
export function main(name: string, start: () => Promise<RunningFunction | undefined>): void {
  let running: RunningFunction | undefined
  let stopping = false
  const stopAndExit = () => {
    if (stopping || !running) return
    stopping = true
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`${name}: stop failed:`, err)
        process.exit(1)
      },
    )
  }
  // The parent that started us with an IPC channel can die without a word (SIGKILL); the kernel
  // closes its end then, and we must not outlive it holding our port: stop as on SIGTERM, or at
  // once while still starting (nothing is served yet). `process.send` stays defined after the
  // channel closed, so a parent gone before this line is noticed too. On a cluster there is no
  // channel and none of this runs.
  if (process.send) {
    const orphaned = () => {
      // Our output went to the parent: writing it now fails with EPIPE, which must not cut the stop short.
      for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {})
      if (running) stopAndExit()
      else process.exit(1)
    }
    if (process.connected) process.once('disconnect', orphaned)
    else orphaned()
  }
  start().then(
    (started) => {
      if (!started) return process.exit(0)
      running = started
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, stopAndExit)
    },
    (err: unknown) => {
      if (err instanceof ConfigError) {
        console.error(`${name}: ${err.message}`)
        process.exit(EXIT_CONFIG)
      }
      // The database refusing us (missing, a wrong role, out of reach) is a fact about the
      // setup, said in one line; anything else is a bug, shown with its stack.
      if (isDatabaseUnavailable(err) || hasSqlState(err)) {
        const { message, code } = err as { message?: string; code?: string }
        console.error(`${name}: failed to start: the database: ${message ?? String(err)}${code ? ` (${code})` : ''}`)
      } else console.error(`${name}: failed to start:`, err)
      process.exit(1)
    },
  )
}

// A PostgreSQL error: its SQLSTATE is five digits or capitals (3D000, 28P01, …).
const hasSqlState = (err: unknown) => typeof err === 'object' && err !== null && /^[0-9A-Z]{5}$/.test(String((err as { code?: unknown }).code))
