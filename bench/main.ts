/**
 * `npm run bench`: the five benchmarks of the README's "Performance" section (function overhead,
 * writes, login, cold start, events), a sixth, the logger against pino, and a seventh, the
 * storefront's catalog page against its JSON and the weight of its pages, each a subject against
 * a baseline measured in the same run, in turns over rounds, medians and ratios printed as a table
 * and written to bench/results/latest.json. The only place the benchmarks read the environment.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect } from 'amqplib'
import { overhead } from './benchmarks/overhead.ts'
import { writes } from './benchmarks/writes.ts'
import { login } from './benchmarks/login.ts'
import { coldStart } from './benchmarks/cold-start.ts'
import { events } from './benchmarks/events.ts'
import { logger } from './benchmarks/logger.ts'
import { storefront } from './benchmarks/storefront.ts'
import { ensureBundles } from './bundles.ts'
import { createCleanup } from './cleanup.ts'
import type { BenchmarkResult, Context } from './context.ts'
import { pinSelf, planPlacement } from './cpus.ts'
import { openDatabase } from './database.ts'
import { createKeys } from './keys.ts'
import { describeMachine, machineLine } from './machine.ts'
import { UsageError, parseOptions, usage, type BenchmarkName } from './options.ts'
import { formatTable, type Row } from './report.ts'
import { onStopSignals } from '../knative/local/stop-signals.ts'

// bench/main.ts → the repository root.
const root = fileURLToPath(new URL('../', import.meta.url))
const say = (line: string) => process.stdout.write(`${line}\n`)

const benchmarks: Record<BenchmarkName, { title: string; run: (ctx: Context) => Promise<BenchmarkResult> }> = {
  overhead: { title: '1 function overhead', run: overhead },
  writes: { title: '2 writes', run: writes },
  login: { title: '3 login and tokens', run: login },
  'cold-start': { title: '4 cold start', run: coldStart },
  events: { title: '5 event pipeline', run: events },
  logger: { title: '6 logger: ours against pino', run: logger },
  storefront: { title: '7 storefront: the catalog page against its JSON, page weights', run: storefront },
}

async function main(): Promise<number> {
  let options
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    if (err.message) process.stderr.write(`bench: ${err.message}\n`)
    process.stderr.write(`${usage}\n`)
    return err.message ? 2 : 0
  }

  const started = new Date()
  const machine = describeMachine()
  const placement = planPlacement(machine.cores)
  pinSelf(placement)
  const cleanup = createCleanup((line) => say(line))
  let interrupted = false
  onStopSignals({
    stop: (signal) => {
      interrupted = true
      say(`\n${signal}: cleaning up (processes, databases, RabbitMQ queues)… (again to force)`)
      void cleanup.run().finally(() => process.exit(130))
    },
    force: () => process.exit(130),
  })

  const scratch = await mkdtemp(join(tmpdir(), 'shop-bench-'))
  let keepScratch = false
  cleanup.add('remove the scratch directory', () => (keepScratch ? undefined : rm(scratch, { recursive: true, force: true })))

  const results: Partial<Record<BenchmarkName, BenchmarkResult | { error: string }>> = {}
  const rows: Row[] = []
  const notes: string[] = []
  let database = ''
  let rabbit: string | undefined
  try {
    say(`machine   ${machineLine(machine)}`)
    say(`cores     ${placement.description}`)
    say(`runs      ${options.rounds} rounds per contender, in turns; ${options.warmupS} s warm-up + ${options.durationS} s per load run${options.quick ? ' (--quick: for development, not for the record)' : ''}`)
    if (machine.loadAtStart > 0.5) say(`note      the machine was busy when this began (load ${machine.loadAtStart}): other work skews absolute numbers; ratios less so`)
    await ensureBundles(root, say)
    const db = await openDatabase({ root, given: process.env.DATABASE_URL, cleanup })
    database = db.description
    say(`database  ${db.description}`)
    rabbit = await findRabbit(process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672')
    say(`rabbitmq  ${rabbit ? redact(rabbit) : 'none answered (benchmark 5 runs with the in-memory broker and without its RabbitMQ comparisons)'}`)
    const ctx: Context = { root, options, placement, db, keys: await createKeys(), cleanup, scratch, amqpUrl: rabbit, say }

    for (const name of options.benchmarks) {
      if (interrupted) break
      const { title, run } = benchmarks[name]
      say(`\n== ${title}`)
      const t0 = performance.now()
      try {
        const result = await run(ctx)
        results[name] = result
        rows.push(...result.rows)
        notes.push(...result.notes)
      } catch (err) {
        keepScratch = true
        const message = err instanceof Error ? (err.stack ?? err.message) : String(err)
        results[name] = { error: message }
        notes.push(`${title}: FAILED: ${err instanceof Error ? err.message : String(err)}`)
        say(`  FAILED: ${message}`)
      }
      say(`  (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
    }
  } finally {
    if (!interrupted) await cleanup.run()
  }

  say('')
  for (const note of notes) say(`- ${note}`)
  say('')
  say(formatTable(rows))
  const missed = rows.filter((r) => r.met === false)
  say('')
  say(`goals: ${rows.filter((r) => r.met === true).length} met, ${missed.length} missed${missed.length ? ` (${missed.map((r) => `${r.benchmark}: ${r.metric}`).join('; ')})` : ''}`)

  const out = join(root, 'bench', 'results', 'latest.json')
  await mkdir(join(root, 'bench', 'results'), { recursive: true })
  await writeFile(
    out,
    JSON.stringify(
      { started: started.toISOString(), finished: new Date().toISOString(), machine, options, cores: placement, database, rabbitmq: rabbit ? redact(rabbit) : null, notes, rows, results },
      null,
      2,
    ) + '\n',
  )
  say(`written   ${out}`)
  if (keepScratch) say(`logs      ${scratch} (kept: a benchmark failed)`)
  return Object.values(results).some((r) => r && 'error' in r) ? 1 : 0
}

/** The RabbitMQ URL if one answers within 3 s. */
async function findRabbit(url: string): Promise<string | undefined> {
  try {
    const connection = await connect(url, { timeout: 3_000 })
    await connection.close()
    return url
  } catch {
    return undefined
  }
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
