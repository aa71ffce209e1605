/**
 * `npm run load`: drives a shop with virtual shoppers, prints the summary and the invariants,
 * and exits 0 only when they all hold. The only file that reads the command line and the
 * environment.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../../shared/config.ts'
import { humanOutput } from '../../knative/local/processes.ts'
import { startLocalShop, quietOutput, type LocalShop } from './local-shop.ts'
import { parseOptions, USAGE, UsageError } from './options.ts'
import { createProgress, type Progress } from './progress.ts'
import { runLoad } from './run.ts'
import { formatSummary } from './summary.ts'
import { onStopSignals } from '../../knative/local/stop-signals.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const tty = Boolean(process.stderr.isTTY)

let progress: Progress | undefined
// Stderr lines go above the progress line while there is one.
const say = (line: string) => (progress ? progress.log(line) : process.stderr.write(`${line}\n`))

async function main(): Promise<number> {
  let options
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`npm run load: ${err.message}\n\n${USAGE}\n`)
    return 2
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }

  let local: LocalShop | undefined
  let target = options.target
  if (!target) {
    say('npm run load: no --target, starting the local shop (free ports, a temporary data directory)')
    const level = process.env.LOG_LEVEL ?? 'warn'
    const human = humanOutput((s) => say(s.replace(/\n$/, '')), tty)
    try {
      local = await startLocalShop({ root, env: process.env, output: quietOutput(human, level) })
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`npm run load: ${err.message}\n`)
        return 2
      }
      throw err
    }
    const env = local.functionEnv
    say(`npm run load: the shop is up at ${local.url}: ${local.database}, broker ${local.broker}, PAYMENT_DELAY_MS=${env.PAYMENT_DELAY_MS} BCRYPT_COST=${env.BCRYPT_COST}`)
    target = local.url
  }
  const stopLocal = local ? once(local.stop) : async () => {}

  let interrupted = false
  onStopSignals({
    stop: () => {
      interrupted = true
      say('npm run load: interrupted, stopping (again to force)')
      void stopLocal().finally(() => process.exit(130))
    },
    force: () => process.exit(130),
  })

  const admin = options.admin ?? local?.admin
  try {
    const summary = await runLoad({
      target,
      users: options.users,
      durationMs: options.durationMs,
      settleMs: options.settleMs,
      ...(admin ? { admin } : {}),
      progress: (render) => (progress = createProgress({ write: (s) => process.stderr.write(s), tty, render })),
    })
    progress = undefined
    process.stdout.write(formatSummary(summary))
    if (options.json) {
      await mkdir(dirname(options.json), { recursive: true })
      await writeFile(options.json, `${JSON.stringify(summary, null, 2)}\n`)
      say(`npm run load: wrote the summary to ${options.json}`)
    }
    return summary.passed ? 0 : 1
  } finally {
    progress = undefined
    if (!interrupted) await stopLocal()
  }
}

/** A function that runs once however often it is called; later calls get the first call's promise. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined
  return () => (running ??= fn())
}

main().then(
  // Exit now: keep-alive connections would otherwise hold the process for a few seconds.
  (code) => process.exit(code),
  (err: unknown) => {
    progress = undefined
    process.stderr.write(`npm run load: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  },
)
