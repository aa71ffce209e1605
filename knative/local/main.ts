/**
 * `npm start` (`node --import tsx knative/local/main.ts`): the whole shop on this machine. The
 * only place the local runner reads the environment.
 */
import { fileURLToPath } from 'node:url'
import * as v from 'valibot'
import { ConfigError, enumVar, intVar, loadConfig, optionalUrlVar, stringVar } from '../../shared/config.ts'
import { DataDirLocked } from './data-dir-lock.ts'
import { passedOn } from './function-env.ts'
import { INGRESS_CHOICES, INGRESS_DIRS } from './ingress.ts'
import { humanOutput } from './processes.ts'
import { startShop, type Shop } from './runner.ts'
import { onStopSignals } from './stop-signals.ts'

const RunnerEnv = v.object({
  INGRESS_PORT: intVar(8080, 0, 65535),
  // The routes the local ingress plays: knative/ingress-nginx's Ingresses or knative/gateway's HTTPRoutes.
  INGRESS: enumVar(INGRESS_CHOICES, 'nginx'),
  FUNCTION_PORT_BASE: intVar(8081, 0, 65000),
  DATA_DIR: stringVar('.data'),
  DEMO_CATALOG: enumVar(['on', 'off'], 'on'),
  DATABASE_URL: optionalUrlVar(['postgres:', 'postgresql:']),
  AMQP_URL: optionalUrlVar(['amqp:', 'amqps:']),
  // With AMQP_URL, the prefix of this shop's exchanges and queues: two shops on one RabbitMQ need two.
  BROKER_NAMESPACE: v.optional(
    v.pipe(v.string(), v.regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a Kubernetes namespace name: lower-case letters, digits and -')),
  ),
  ADMIN_EMAIL: stringVar('admin@shop.local'),
  ADMIN_PASSWORD: v.optional(v.pipe(v.string(), v.minLength(8, 'must be at least 8 characters'))),
})


// The cluster sweeps every few minutes so that the functions can scale to zero in between; here
// nothing scales, and a pending order is announced again or expires close to its thresholds.
const PING_SCHEDULES = { 'order-outbox-flush': '@every 15s', 'product-reservations-expire': '@every 15s' }

const root = fileURLToPath(new URL('../..', import.meta.url))
const output = humanOutput()
const say = (line: string) => output('shop', line)

// SIGINT (Ctrl-C), SIGTERM (`kill`, or npm passing on its own SIGTERM) and SIGHUP stop the shop, before it
// is up as well as after: the handlers are in place before the first child starts, and another
// signal, seconds later, exits at once. npm passes signals on to the shell that runs the script,
// and that shell dies of SIGTERM without passing it on: so the script `exec`s node, and npm's
// child is this process. The functions are tied to this process besides (see child.ts), so even
// a forced exit, or SIGKILL, leaves none of them running; an embedded PostgreSQL left so is
// stopped by the next start.
const starting = new AbortController()
let shop: Shop | undefined
let stopping = false
const stopShop = (why: string) => {
  if (stopping) return
  stopping = true
  say(`${why}: stopping (Ctrl-C again to force)`)
  // Not up yet: startShop stops what it started and rejects; run()'s catch below exits.
  if (!shop) return starting.abort(new Error(`${why} before the shop was up`))
  const running = shop
  running.stop().then(
    () => {
      // A function that kept crashing may have scrolled out of sight: say so once more.
      const restarted = Object.entries(running.restarts()).filter(([, n]) => n > 0)
      if (restarted.length > 0) say(`restarted while the shop ran: ${restarted.map(([name, n]) => `${name} ${n}×`).join(', ')}`)
      say('stopped')
      process.exit(0)
    },
    (err: unknown) => {
      say(`stop failed: ${String(err)}`)
      process.exit(1)
    },
  )
}
onStopSignals({ stop: stopShop, force: () => process.exit(130) })

// npm killed outright (SIGKILL) passes nothing on: this process is left with another parent
// (init, or a subreaper), and nobody would ever stop it. Seeing the parent change, stop as on
// Ctrl-C. (Reading process.ppid asks the kernel each time.)
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) stopShop(`the process that started this one (${parent}) is gone`)
}, 1_000).unref()

async function run() {
  const config = loadConfig(RunnerEnv, process.env)
  const functionEnv = passedOn(process.env)
  shop = await startShop({
    root,
    ingressPort: config.INGRESS_PORT,
    ingress: config.INGRESS,
    functionPortBase: config.FUNCTION_PORT_BASE,
    dataDir: config.DATA_DIR,
    databaseUrl: config.DATABASE_URL,
    amqpUrl: config.AMQP_URL,
    ...(config.BROKER_NAMESPACE ? { brokerNamespace: config.BROKER_NAMESPACE } : {}),
    demoCatalog: config.DEMO_CATALOG === 'on',
    adminEmail: config.ADMIN_EMAIL,
    adminPassword: config.ADMIN_PASSWORD,
    functionEnv,
    pingSchedules: PING_SCHEDULES,
    output,
    signal: starting.signal,
  })
  if (starting.signal.aborted) {
    // The signal came as the last step finished, too late for startShop to see it.
    await shop.stop()
    throw starting.signal.reason
  }

  const rows: [string, string][] = [
    ...Object.entries(shop.functions),
    ...Object.entries(shop.brokers).map(([name, url]): [string, string] => [`broker ${name}`, url]),
    ['ingress', `${config.INGRESS}: the routes of ${INGRESS_DIRS[config.INGRESS]}`],
    ['database', shop.database],
    ['broker', shop.broker],
    ['admin', `${shop.admin.email} / ${shop.admin.password}`],
  ]
  const width = Math.max(...rows.map(([label]) => label.length)) + 2
  const lines = [
    '',
    `The shop is up: ${shop.ingressUrl}/   (the API: ${shop.ingressUrl}/api/products)`,
    '',
    ...rows.map(([label, value]) => `  ${label.padEnd(width)}${value}`),
    '',
    'Ctrl-C stops everything.',
    '',
  ]
  for (const line of lines) say(line)
}

run().catch((err: unknown) => {
  if (starting.signal.aborted) {
    say('stopped')
    process.exit(0)
  }
  // Messages meant for people, whole: a bad variable, DATA_DIR in use.
  const message = err instanceof ConfigError || err instanceof DataDirLocked ? err.message : `failed to start: ${err instanceof Error ? err.message : String(err)}`
  // Each line as a line of its own: say() shows a newline inside a line as \n.
  for (const line of message.split('\n')) say(line)
  process.exit(1)
})
