/**
 * @module
 * What every benchmark is given (the options, the database, the cores, the cleanup stack), what
 * it hands back, and how it starts the processes it measures.
 */
import { join } from 'node:path'
import { freePort } from '../knative/local/processes.ts'
import type { Cleanup } from './cleanup.ts'
import type { Placement } from './cpus.ts'
import type { BenchDatabase } from './database.ts'
import type { BenchKeys } from './keys.ts'
import type { Options } from './options.ts'
import type { Row } from './report.ts'
import { startServer, type Server } from './server.ts'
import { onServerCores } from './cpus.ts'

export type Context = {
  /** The repository root: dist/, eventing/, functions/ are under it. */
  root: string
  options: Options
  placement: Placement
  db: BenchDatabase
  keys: BenchKeys
  cleanup: Cleanup
  /** A scratch directory for logs and temp files, removed at the end. */
  scratch: string
  /** RabbitMQ for benchmark 5, when one answers. */
  amqpUrl: string | undefined
  say(line: string): void
}

export type BenchmarkResult = {
  rows: Row[]
  /** What was compared with what, and how: printed before the table and kept in the JSON. */
  notes: string[]
  /** Every measurement of every round, for the JSON. */
  raw: Record<string, unknown>
}

/**
 * The environment every function gets here: production mode (as knative/services/ sets it), no
 * migrations at start (they ran once before), the bench database, the bench keys. Everything
 * else is the function's default, LOG_LEVEL=info and DATABASE_POOL_MAX=5 included.
 */
export function functionEnv(ctx: Context, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'production',
    MIGRATE: 'off',
    DATABASE_URL: ctx.db.url,
    JWT_PUBLIC_KEYS: ctx.keys.jwks,
    ...extra,
  }
}

/** Starts `node <script>` on the server cores, on a free port, registered for cleanup. */
export async function startNode(ctx: Context, name: string, script: string, env: Record<string, string>, readyPath = '/healthz'): Promise<Server> {
  return startServer({
    name,
    command: onServerCores(ctx.placement, process.execPath, [join(ctx.root, script)]),
    env,
    port: await freePort(),
    logDir: ctx.scratch,
    cwd: ctx.root,
    readyPath,
    cleanup: ctx.cleanup,
  })
}

/** Starts a function's bundle, `dist/<name>/index.mjs`. */
export const startBundle = (ctx: Context, name: string, env: Record<string, string> = {}) =>
  startNode(ctx, name, `dist/${name}/index.mjs`, functionEnv(ctx, env))
