/**
 * Benchmark 4, cold start: for each bundle, spawn → first 200 on /healthz (the database reachable,
 * its schema migrated already, MIGRATE=off as knative/services/ sets it), against `node -e 0`
 * (spawn → exit) and a plain node:http hello world (spawn → first 200) in the same run, each
 * spawn in turn with the others (round-robin, not all of one then all of the next). The bundle's
 * size and its RSS right after that first 200. Then all again under a 0.5-CPU limit.
 */
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { functions } from '../../functions/catalog.ts'
import { startChild } from '../../knative/local/child.ts'
import { freePort } from '../../knative/local/processes.ts'
import { median } from '../stats.ts'
import { functionEnv, type BenchmarkResult, type Context } from '../context.ts'
import { createCpuLimit } from '../cpu-limit.ts'
import { goals, row, type Row } from '../report.ts'
import { rssMiB, waitForHttp } from '../server.ts'

const B = '4 cold start'
const POLL_MS = 2

type Subject = { name: string; script?: string; env: Record<string, string>; ready: 'exit' | 'healthz' }
type Sample = { ms: number; rssMiB?: number }

export async function coldStart(ctx: Context): Promise<BenchmarkResult> {
  const { options, say } = ctx
  const sink = 'http://127.0.0.1:9/' // never called at start; set so that order and payment do not warn
  const envOf = (name: string): Record<string, string> => ({
    ...(name === 'auth' ? { JWT_PRIVATE_KEY: ctx.keys.privateKey } : {}),
    ...(name === 'cart' || name === 'order' ? { PRODUCT_URL: 'http://127.0.0.1:9' } : {}),
    ...(name === 'order' || name === 'payment' ? { K_SINK: sink } : {}),
  })
  const subjects: Subject[] = [
    { name: 'node -e 0', env: {}, ready: 'exit' },
    { name: 'node:http hello', script: 'bench/baselines/hello.mjs', env: {}, ready: 'healthz' },
    // The middleware stack and startFunction with no database work: between hello and a function.
    { name: 'stack, no db', script: 'dist/bench/apps/trivial.mjs', env: functionEnv(ctx), ready: 'healthz' },
    ...functions.map((f) => ({ name: f.name, script: `dist/${f.name}/index.mjs`, env: functionEnv(ctx, envOf(f.name)), ready: 'healthz' as const })),
    // Production may set ADMIN_EMAIL/ADMIN_PASSWORD (the optional shop-admin Secret): then every
    // auth cold start checks the admin's password, a bcrypt at the configured cost.
    {
      name: 'auth + ADMIN_*',
      script: 'dist/auth/index.mjs',
      env: functionEnv(ctx, { ...envOf('auth'), ADMIN_EMAIL: 'bench-admin@example.test', ADMIN_PASSWORD: 'bench admin password' }),
      ready: 'healthz',
    },
  ]

  const sizes = new Map<string, number>()
  for (const f of functions) sizes.set(f.name, (await stat(join(ctx.root, 'dist', f.name, 'index.mjs'))).size / 1024)

  const measure = async (wrap: (command: string, args: string[]) => [string, string[]], label: string) => {
    const samples = new Map<string, Sample[]>(subjects.map((s) => [s.name, []]))
    say(`  ${label}: ${options.coldStarts} spawns of each, in turn`)
    for (let i = 0; i < options.coldStarts; i++) {
      for (const subject of subjects) samples.get(subject.name)!.push(await spawnOnce(ctx, subject, wrap))
      say(`    ${i + 1}/${options.coldStarts}  ${subjects.map((s) => `${s.name} ${Math.round(samples.get(s.name)!.at(-1)!.ms)}`).join('  ')}`)
    }
    return samples
  }

  const unlimited = await measure((command, args) => (ctx.placement.pinned ? ['taskset', ['-c', ctx.placement.serverCores, command, ...args]] : [command, args]), 'no CPU limit')
  const limit = await createCpuLimit(ctx.placement)
  const removeLimit = ctx.cleanup.add('remove the CPU limit', limit.remove)
  say(`  0.5 CPU: ${limit.description}`)
  let limited: Map<string, Sample[]>
  try {
    limited = await measure(limit.wrap, '0.5 CPU')
  } finally {
    await removeLimit()
  }

  const med = (samples: Map<string, Sample[]>, name: string, pick: (s: Sample) => number | undefined = (s) => s.ms) =>
    median((samples.get(name) ?? []).map(pick).filter((v): v is number => v !== undefined))
  const rows: Row[] = []
  const nodeMs = med(unlimited, 'node -e 0')
  const nodeLimitedMs = med(limited, 'node -e 0')
  rows.push(row({ benchmark: B, metric: 'node:http hello (vs node -e 0)', unit: 'ms', subject: med(unlimited, 'node:http hello'), baseline: nodeMs }))
  rows.push(row({ benchmark: B, metric: 'stack, no db: trivial app (vs node -e 0)', unit: 'ms', subject: med(unlimited, 'stack, no db'), baseline: nodeMs }))
  const fnNames = [...functions.map((f) => f.name), 'auth + ADMIN_*']
  for (const name of fnNames) {
    rows.push(row({ benchmark: B, metric: `${name} (vs node -e 0)`, unit: 'ms', subject: med(unlimited, name), baseline: nodeMs, goal: goals.within(150, 'ms') }))
  }
  const slowest = Math.max(...functions.map((f) => med(unlimited, f.name) ?? Number.POSITIVE_INFINITY))
  rows.push(row({ benchmark: B, metric: 'stretch: slowest function (vs node -e 0)', unit: 'ms', subject: slowest, baseline: nodeMs, goal: goals.within(100, 'ms') }))
  for (const name of ['node:http hello', 'stack, no db', ...fnNames]) {
    rows.push(row({ benchmark: B, metric: `${name} @0.5 CPU (vs node -e 0 @0.5)`, unit: 'ms', subject: med(limited, name), baseline: nodeLimitedMs }))
  }
  for (const f of functions) rows.push(row({ benchmark: B, metric: `bundle ${f.name}/index.mjs`, unit: 'KB', subject: sizes.get(f.name), goal: goals.below(350, 'KB') }))
  const helloRss = med(unlimited, 'node:http hello', (s) => s.rssMiB)
  for (const f of functions) {
    rows.push(row({ benchmark: B, metric: `RSS after start ${f.name} (vs hello)`, unit: 'MB', subject: med(unlimited, f.name, (s) => s.rssMiB), baseline: helloRss, goal: goals.below(60, 'MB') }))
  }

  const notes = [
    `4: spawn → first 200 on GET /healthz (polled every ${POLL_MS} ms on a fresh connection), median of ${options.coldStarts}; every function with NODE_ENV=production, MIGRATE=off, its database reachable and migrated, ` +
      `the bench's keys, LOG_LEVEL=info; spawned under the same wrapper as the baselines (${ctx.placement.pinned ? `taskset -c ${ctx.placement.serverCores}` : 'none'}). ` +
      '"auth + ADMIN_*" is auth with ADMIN_EMAIL/ADMIN_PASSWORD set, as with the optional shop-admin Secret: it checks the admin password (bcrypt, cost 10) before it listens. ' +
      '"stack, no db" is bench/apps/trivial.ts (createApp + startFunction, a pool never used): the cost of loading the bundle and the stack, without the database connection /healthz opens.',
    `4: 0.5 CPU = ${limit.description}.`,
    '4: RSS = VmRSS of the process right after its first 200 (/proc/<pid>/status), in MiB; bundle sizes are of the minified index.mjs (auth also loads hash-worker.mjs on its first hash).',
  ]
  return { rows, notes, raw: { unlimited: Object.fromEntries(unlimited), limited: Object.fromEntries(limited), sizesKB: Object.fromEntries(sizes), cpuLimit: limit.description } }
}

/** One spawn, timed from just before spawn() to its exit or its first 200 on /healthz. */
async function spawnOnce(ctx: Context, subject: Subject, wrap: (command: string, args: string[]) => [string, string[]]): Promise<Sample> {
  const port = await freePort()
  const [command, args] = wrap(process.execPath, subject.script ? [join(ctx.root, subject.script)] : ['-e', '0'])
  const t0 = performance.now()
  // Every subject, the baselines included, gets the same IPC channel: they cost the same to spawn.
  const child = startChild({
    command,
    args,
    cwd: ctx.root,
    env: { PATH: process.env.PATH ?? '', ...subject.env, PORT: String(port), HOST: '127.0.0.1' },
    output: 'ignore',
    graceMs: 5_000,
  })
  const remove = ctx.cleanup.add(`stop ${subject.name}`, child.kill)
  try {
    if (subject.ready === 'exit') {
      const { code } = await child.exited
      if (code !== 0) throw new Error(`${subject.name} exited with ${code}`)
      return { ms: performance.now() - t0 }
    }
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, { child: child.process, intervalMs: POLL_MS, timeoutMs: 30_000 }).catch((err: Error) => {
      throw new Error(`${subject.name} did not start: ${err.message} (run it alone to see why: README "Run one function alone")`)
    })
    const ms = performance.now() - t0
    const rss = await rssMiB(child.pid)
    // A clean stop, as Knative's scale-down would; SIGKILL if it hangs.
    await child.stop()
    return { ms, ...(rss !== undefined ? { rssMiB: rss } : {}) }
  } finally {
    await remove()
  }
}
