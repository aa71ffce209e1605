/**
 * Benchmark 6, the logger: shared/log.ts against the same API on pino (bench/apps/log-pino.ts),
 * writing the same access-log fields, with a synchronous destination and with sonic-boom's
 * asynchronous one.
 * - Lines alone: bench/apps/log-lines.ts writes N access-log lines, one per turn of the event loop
 *   as a server writes them, to stdout as a file (what a function's log is here) and as a pipe
 *   (what a container's log is): CPU time per line, every thread counted.
 * - In a function: bench/apps/trivial.ts (the full middleware stack, one access-log line per
 *   request, stdout to a file as benchmark 1 has it) bundled three times, shared/log.ts swapped for
 *   each logger at bundle time; req/s and server CPU per request under load, on the server core as
 *   benchmark 1 runs it, then in a 1-CPU quota (bench/cpu-limit.ts) as knative/services/ limits it.
 * Each is checked to write the same fields and every line (an asynchronous logger that loses lines
 * would look cheap); a function's log that does not end with its `stopped` line after SIGTERM is
 * reported in the notes (lines lost or reordered on the way out).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, openSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { build, type BuildOptions, type Plugin } from 'esbuild'
import { freePort } from '../../knative/local/processes.ts'
import { inTurns, medianOf } from '../compare.ts'
import { functionEnv, type BenchmarkResult, type Context } from '../context.ts'
import { createCpuLimit } from '../cpu-limit.ts'
import { onServerCores } from '../cpus.ts'
import { failures, runLoad, type LoadResult } from '../http-load.ts'
import { row, type Row } from '../report.ts'
import { startServer, type Server } from '../server.ts'
import { show } from './overhead.ts'

const B = '6 logger'
const LOGGERS = ['ours', 'pino-sync', 'pino-async'] as const
type LoggerName = (typeof LOGGERS)[number]
const FIELDS = ['fn', 'level', 'method', 'ms', 'msg', 'path', 'request_id', 'route', 'status', 'time']

type LinesRun = { cpuUsPerLine: number; linesPerS: number }

export async function logger(ctx: Context): Promise<BenchmarkResult> {
  const { options, say, scratch } = ctx
  const rows: Row[] = []
  const notes: string[] = []
  const out = join(scratch, 'logger')
  await mkdir(out, { recursive: true })
  const bundles = await buildVariants(ctx.root, out)

  // 1. Lines alone.
  const lines = options.quick ? 10_000 : 50_000
  const linesRuns: Record<string, Record<string, LinesRun[]>> = {}
  for (const to of ['file', 'pipe'] as const) {
    say(`  ${lines} access-log lines, one per event-loop turn, stdout to a ${to}`)
    const runs = await inTurns(
      Object.fromEntries([...LOGGERS, 'none' as const].map((name) => [name, () => writeLines(ctx, bundles.lines, name, lines, to, join(out, `${name}.log`))])),
      options.rounds,
      say,
      (r) => `${r.cpuUsPerLine.toFixed(2)} µs CPU/line  ${Math.round(r.linesPerS)} lines/s`,
    )
    linesRuns[to] = runs
    // The loop's own cost (the `none` runs) taken off, so that the ratio is of the loggers alone.
    const loop = medianOf(runs.none, (r) => r.cpuUsPerLine) ?? 0
    const perLine = (name: LoggerName) => (medianOf(runs[name], (r) => r.cpuUsPerLine) ?? NaN) - loop
    for (const name of LOGGERS.slice(1)) {
      rows.push(row({ benchmark: B, metric: `log line CPU, stdout a ${to}: ${name} / ours`, unit: 'µs', subject: perLine(name), baseline: perLine('ours') }))
    }
  }

  // 2. In a function: on the server core as benchmark 1 runs it, then inside a 1-CPU quota as
  // knative/services/ limits the functions. In the quota every thread of the process shares it;
  // without one, sonic-boom's writer thread gets a scheduler share of its own on a busy machine.
  const http: Record<string, Record<string, LoadResult[]>> = {}
  const atExit: string[] = []
  const core = await httpRuns(ctx, bundles.trivial, 'core', (command, args) => onServerCores(ctx.placement, command, args))
  http.core = core.runs
  atExit.push(...core.atExit)
  const limit = await createCpuLimit(ctx.placement, 1)
  const removeLimit = ctx.cleanup.add('remove the CPU limit', limit.remove)
  try {
    const quota = await httpRuns(ctx, bundles.trivial, 'quota', limit.wrap)
    http.quota = quota.runs
    atExit.push(...quota.atExit.map((problem) => `${problem} (1 CPU)`))
  } finally {
    await removeLimit()
  }
  // Found, not failed: losing or reordering lines on the way out is one of the things weighed.
  for (const problem of atExit) notes.push(`6: at SIGTERM, ${problem}`)
  for (const [where, runs] of Object.entries(http)) {
    const label = where === 'core' ? 'constant route' : 'constant route, 1 CPU'
    for (const name of LOGGERS.slice(1)) {
      rows.push(
        row({ benchmark: B, metric: `${label} req/s: ${name} / ours`, unit: 'req/s', subject: medianOf(runs[name], (r) => r.rps), baseline: medianOf(runs.ours, (r) => r.rps) }),
        row({ benchmark: B, metric: `${label} server CPU/req: ${name} / ours`, unit: 'µs', subject: medianOf(runs[name], (r) => r.cpuUs), baseline: medianOf(runs.ours, (r) => r.cpuUs) }),
      )
    }
    for (const [name, results] of Object.entries(runs)) {
      const bad = results.map(failures).filter(Boolean)
      if (bad.length) notes.push(`6: ${name} (${label}) had failed requests: ${bad.join('; ')}`)
    }
  }
  notes.push(
    '6: ours = shared/log.ts (JSON.stringify, process.stdout.write); pino-sync / pino-async = bench/apps/log-pino.ts, the same API and fields on pino ' +
      '(base {fn}, isoTime, level label) with pino.destination({sync: true}) or {sync: false} (sonic-boom writes in the background, flushed on exit). ' +
      'Lines: bench/apps/log-lines.ts, CPU of every thread per line, pino-async\'s final flush included, less the same loop logging nothing. Constant route: bench/apps/trivial.ts bundled with each logger, 50 connections, stdout to a file; "1 CPU" = ' +
      `${limit.description}. ` +
      'Every contender was checked to write every line, with the same field names.',
  )
  return { rows, notes, raw: { lines: linesRuns, http } }
}

/** The three trivial bundles started with `wrap`, loaded in turns, then stopped (SIGTERM, as Knative scales down) and their logs checked. */
async function httpRuns(ctx: Context, bundles: Record<LoggerName, string>, where: string, wrap: (command: string, args: string[]) => [string, string[]]) {
  const { options, say, scratch } = ctx
  const servers = {} as Record<LoggerName, Server>
  for (const name of LOGGERS) {
    servers[name] = await startServer({
      name: `trivial-log-${name}-${where}`,
      command: wrap(process.execPath, [bundles[name]]),
      env: functionEnv(ctx),
      port: await freePort(),
      logDir: scratch,
      cwd: ctx.root,
      cleanup: ctx.cleanup,
    })
  }
  const load = (name: LoggerName) => () =>
    runLoad({ url: servers[name].url, connections: 50, durationS: options.durationS, warmupS: options.warmupS, next: () => ({ path: '/hello' }), serverPid: servers[name].pid })
  say(`  a constant route behind the full middleware stack, one access-log line per request, 50 connections${where === 'quota' ? ', in a 1-CPU quota' : ''}`)
  const runs = await inTurns(Object.fromEntries(LOGGERS.map((name) => [name, load(name)])), options.rounds, say, show)
  for (const server of Object.values(servers)) await server.stop()
  const atExit: string[] = []
  for (const name of LOGGERS) {
    const problem = await checkLog(join(scratch, `${servers[name].name}.log`), runs[name]!.reduce((n, r) => n + r.requests, 0))
    if (problem) atExit.push(`${name}: ${problem}`)
  }
  return { runs, atExit }
}

/** Runs bench/apps/log-lines.ts once with stdout to a file or a pipe, and checks what it wrote. */
async function writeLines(ctx: Context, script: string, name: LoggerName | 'none', lines: number, to: 'file' | 'pipe', file: string): Promise<LinesRun> {
  const fd = to === 'file' ? openSync(file, 'w') : undefined
  const [cmd, args] = onServerCores(ctx.placement, process.execPath, [script, name, String(lines)])
  const child = spawn(cmd, args, { stdio: ['ignore', fd ?? 'pipe', 'pipe'] })
  if (fd !== undefined) closeSync(fd)
  let written = 0
  let first = ''
  // The pipe's reader only counts lines, so that reading costs the writer nothing it would not pay to a container's log.
  child.stdout?.on('data', (chunk: Buffer) => {
    if (!first) first = chunk.toString('utf8', 0, chunk.indexOf(10))
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) written++
  })
  let report = ''
  child.stderr!.on('data', (chunk: Buffer) => (report += chunk.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`log-lines ${name} exited with ${code}: ${report}`)
  if (to === 'file') {
    const text = await readFile(file, 'utf8')
    first = text.slice(0, text.indexOf('\n'))
    written = text.split('\n').length - 1
  }
  // The warm-up's 1000 lines come first.
  const expected = name === 'none' ? 0 : lines + 1000
  if (written !== expected) throw new Error(`log-lines ${name} to a ${to} wrote ${written} lines, not ${expected}`)
  if (expected) checkLine(name, first)
  const { cpuUs, wallMs } = JSON.parse(report) as { cpuUs: number; wallMs: number }
  return { cpuUsPerLine: cpuUs / lines, linesPerS: (lines / wallMs) * 1000 }
}

function checkLine(name: string, line: string) {
  const fields = Object.keys(JSON.parse(line) as object).sort()
  if (fields.join() !== FIELDS.join()) throw new Error(`${name} wrote the fields ${fields.join(', ')}, not ${FIELDS.join(', ')}`)
}

/**
 * Checks a server's log: an access-log line with the expected fields for at least each measured
 * request (warm-ups add more), else it throws. Answers what went wrong at exit, if anything: the
 * last line must be `stopped`, written after everything else, so a line after it came out of order
 * and its absence means lines were lost.
 */
async function checkLog(file: string, measured: number): Promise<string | undefined> {
  const text = await readFile(file)
  const marker = Buffer.from('"msg":"request"')
  let requests = 0
  for (let i = text.indexOf(marker); i !== -1; i = text.indexOf(marker, i + 1)) requests++
  if (requests < measured) throw new Error(`${file}: ${requests} access-log lines for ${measured} requests`)
  const start = text.indexOf(marker)
  checkLine(file, text.toString('utf8', text.lastIndexOf(10, start) + 1, text.indexOf(10, start)))
  const tail = text.toString('utf8', Math.max(0, text.length - 4096)).trimEnd().split('\n').slice(1)
  if (tail.at(-1)?.includes('"msg":"stopped"')) return undefined
  const after = tail.length - 1 - tail.findIndex((l) => l.includes('"msg":"stopped"'))
  return after < tail.length ? `${after} line(s) written after "stopped": out of order at exit` : 'no "stopped" line: the last lines were lost at exit'
}

/**
 * Bundles log-lines.ts once and trivial.ts once per logger, as build.mjs bundles a function, with
 * shared/log.ts's createLogger replaced by the pino one at bundle time.
 */
async function buildVariants(root: string, out: string) {
  const common: BuildOptions = {
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    logLevel: 'warning',
    external: ['pg-native'],
    legalComments: 'none',
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  }
  const lines = join(out, 'log-lines.mjs')
  await build({ ...common, entryPoints: [join(root, 'bench/apps/log-lines.ts')], outfile: lines })
  const trivial = {} as Record<LoggerName, string>
  for (const name of LOGGERS) {
    trivial[name] = join(out, `trivial-${name}.mjs`)
    await build({ ...common, entryPoints: [join(root, 'bench/apps/trivial.ts')], outfile: trivial[name], plugins: name === 'ours' ? [] : [withPino(root, name === 'pino-sync')] })
  }
  return { lines, trivial }
}

/** shared/ imports `./log.ts`: that module becomes bench/apps/log-pino.ts with `sync` fixed. */
function withPino(root: string, sync: boolean): Plugin {
  return {
    name: 'log on pino',
    setup(b) {
      b.onResolve({ filter: /^\.\/log\.ts$/ }, (args) => (args.importer.startsWith(join(root, 'shared')) ? { path: 'log-pino', namespace: 'bench-log' } : undefined))
      b.onLoad({ filter: /.*/, namespace: 'bench-log' }, () => ({
        contents: `import { createLogger as create } from './bench/apps/log-pino.ts'\nexport const createLogger = (o) => create({ ...o, sync: ${sync} })\n`,
        resolveDir: root,
        loader: 'js',
      }))
    },
  }
}
