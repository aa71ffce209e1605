/**
 * @module
 * Running a function as a process: pool, migrations (per `MIGRATE`), the HTTP server on `PORT`,
 * and a clean stop on SIGTERM (stop accepting, finish what is in flight, close the pool, exit 0).
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Hono } from 'hono'
import { ConfigError } from './config.ts'
import { createPool, type Pool } from './db.ts'
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
}

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

export type RunningFunction = { port: number; stop: () => Promise<void> }

/** Starts a function; resolves once it listens, or to `undefined` after a `MIGRATE=only` run. */
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
  const fetch = (await app({ pool, log, metrics })).fetch
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch, port: config.PORT, ...(config.HOST ? { hostname: config.HOST } : {}) }, () => resolve(s as Server))
  })
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
 * configuration into a message and exit code 1 (never a stack trace).
 */
export function main(name: string, start: () => Promise<RunningFunction | undefined>): void {
  start().then(
    (running) => {
      if (!running) return process.exit(0)
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(signal, () => {
          running.stop().then(
            () => process.exit(0),
            (err: unknown) => {
              console.error(`${name}: stop failed:`, err)
              process.exit(1)
            },
          )
        })
      }
    },
    (err: unknown) => {
      if (err instanceof ConfigError) console.error(`${name}: ${err.message}`)
      else console.error(`${name}: failed to start:`, err)
      process.exit(1)
    },
  )
}
