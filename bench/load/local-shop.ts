/**
 * @module
 * The shop to load when no --target is given: the whole local stack of `npm start`, started
 * in-process on free ports with a data directory of its own, quiet but for warnings and errors,
 * and taken down again (RabbitMQ queues included) when the run is over.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as v from 'valibot'
import { deleteTopology } from '../../eventing/local/delete-topology.ts'
import { loadConfig, optionalUrlVar } from '../../shared/config.ts'
import { startShop } from '../../knative/local/runner.ts'
import { passedOn } from '../../knative/local/function-env.ts'
import type { Output } from '../../knative/local/processes.ts'

const LocalEnv = v.object({
  DATABASE_URL: optionalUrlVar(['postgres:', 'postgresql:']),
  AMQP_URL: optionalUrlVar(['amqp:', 'amqps:']),
})

// A load run's defaults: payments fast enough that orders settle within the run (not 2 s), and
// the production bcrypt cost, so that sign-ups cost what they would.
const DEFAULTS = { PAYMENT_DELAY_MS: '200', BCRYPT_COST: '10', LOG_LEVEL: 'warn' }

export type LocalShop = Awaited<ReturnType<typeof startLocalShop>>

export async function startLocalShop({ root, env, output }: { root: string; env: Record<string, string | undefined>; output: Output }) {
  const config = loadConfig(LocalEnv, env)
  // Handed on to the functions when set, as `npm start` does.
  const given = passedOn(env)
  const dataDir = await mkdtemp(join(tmpdir(), 'shop-load-'))
  // Queues of their own in RabbitMQ: a shop started by `npm start` on the same server is not disturbed.
  const namespace = `load${randomBytes(4).toString('hex')}`
  const removeTopology = async () => {
    if (config.AMQP_URL) await deleteTopology(config.AMQP_URL, join(root, 'eventing'), namespace)
  }
  try {
    const shop = await startShop({
      root,
      ingressPort: 0,
      functionPortBase: 0,
      dataDir,
      databaseUrl: config.DATABASE_URL,
      amqpUrl: config.AMQP_URL,
      brokerNamespace: namespace,
      demoCatalog: true,
      // Not admin@shop.local: on a shared database, `npm start`'s admin keeps its password.
      adminEmail: 'load-admin@shop.local',
      functionEnv: { ...DEFAULTS, ...given },
      output,
    })
    return {
      url: shop.ingressUrl,
      admin: shop.admin,
      database: shop.database,
      broker: shop.broker,
      functionEnv: { ...DEFAULTS, ...given },
      async stop() {
        try {
          await shop.stop()
          await removeTopology()
        } finally {
          await rm(dataDir, { recursive: true, force: true })
        }
      },
    }
  } catch (err) {
    await removeTopology().catch(() => {})
    await rm(dataDir, { recursive: true, force: true })
    throw err
  }
}

const RANK: Record<string, number> = { debug: 10, info: 20, warn: 30, error: 40, fatal: 50 }

/**
 * Keeps the stack's log lines at `level` or above. JSON lines carry their level; the runner's own
 * plain lines are progress (building, starting), shown only when they say something failed.
 * Anything else is what a process printed outside its logger (a crash): always shown.
 */
export function quietOutput(show: Output, level = 'warn'): Output {
  const min = RANK[level] ?? RANK.warn!
  return (source, line) => {
    if (line.startsWith('{')) {
      try {
        const parsed = JSON.parse(line) as { level?: unknown }
        if ((RANK[String(parsed.level)] ?? RANK.info!) >= min) show(source, line)
        return
      } catch {
        // not JSON after all: fall through
      }
    }
    if (source !== 'shop' || /fail|error|refus/i.test(line)) show(source, line)
  }
}
