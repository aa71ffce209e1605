/**
 * The whole shop on one machine: what Knative Serving, the ingress and the brokers do on a
 * cluster, played by local processes. Each function runs its own bundle as its own process; the
 * ingress and the broker read the same manifests a cluster applies.
 */
import { randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startLocalBroker } from '../../eventing/local/broker.ts'
import { loadManifests } from '../../eventing/local/manifests.ts'
import { functions } from '../../functions/catalog.ts'
import { generateSigningKey, publicJwkOf, PrivateJwk } from '../../shared/auth.ts'
import { createLogger } from '../../shared/log.ts'
import { lockDataDir } from './data-dir-lock.ts'
import { demoCatalog } from './demo-catalog.ts'
import { loadRoutes, startIngress, type IngressChoice } from './ingress.ts'
import { assertPortsFree, freePort, startFunctionProcess, stopOrder, superviseFunction, type FunctionProcess, type Output, type SupervisedFunction } from './processes.ts'
import { openShopDatabase } from './shop-database.ts'
import * as v from 'valibot'

export type ShopOptions = {
  /** The repository root (where build.mjs, dist/ and the manifests are). */
  root: string
  ingressPort: number
  /** Which routes the ingress plays: the NGINX Ingresses (default) or the Gateway API HTTPRoutes. */
  ingress?: IngressChoice
  /** auth gets this port, then product, cart, order, payment, dead-letter, web; 0 = free ports. */
  functionPortBase: number
  dataDir: string
  /** A PostgreSQL to use (its database made when missing); unset: the embedded one in DATA_DIR. */
  databaseUrl?: string
  amqpUrl?: string
  demoCatalog: boolean
  adminEmail: string
  adminPassword?: string
  /** Passed to every function as it is (PAYMENT_DELAY_MS, BCRYPT_COST, LOG_LEVEL, …). */
  functionEnv: Record<string, string>
  /**
   * Names the broker's exchanges and queues on RabbitMQ (`b.<namespace>.<broker>`); default
   * `shop-<8 hex>`, made once and kept in `<dataDir>/broker-namespace`. Tests use their own.
   */
  brokerNamespace?: string
  /** PingSource schedules by name, instead of the manifests' (see eventing/local). */
  pingSchedules?: Record<string, string>
  /** The Knative Eventing manifests the broker plays (default `<root>/eventing`); tests give shorter retries. */
  manifestsDir?: string
  output: Output
  /**
   * Aborting it while the shop starts (Ctrl-C before it is up) stops what has started, then
   * startShop rejects with the signal's reason. After startShop resolved, use `stop()`.
   */
  signal?: AbortSignal
}

export type Shop = Awaited<ReturnType<typeof startShop>>

/**
 * Starts the shop: takes DATA_DIR (rejects with `DataDirLocked` when another live shop holds it),
 * builds stale bundles, opens the database, starts the broker, every function and the ingress.
 * Whatever fails, or `signal` aborting, stops what had started before the promise rejects.
 *
 * Once up, a function that exits is started again on its port, as the kubelet restarts a
 * container (`restarts()` counts them). `stop()` drains: the ingress takes no new connection and
 * finishes its requests in flight, the broker delivers nothing new and finishes its deliveries
 * under way, then the functions stop (those that others call last), then the broker, the database.
 */
export async function startShop(o: ShopOptions) {
  const say = (line: string) => o.output('shop', line)
  const stops: (() => Promise<void>)[] = []
  let stopped: Promise<void> | undefined
  // Once: Ctrl-C and a failing start may both ask.
  const stop = () =>
    (stopped ??= (async () => {
      // The reverse of starting: ingress first, database last.
      for (const s of stops.reverse()) await s().catch((err: unknown) => say(`stop failed: ${String(err)}`))
      stops.length = 0
    })())
  const checkpoint = () => o.signal?.throwIfAborted()
  try {
    await mkdir(o.dataDir, { recursive: true })
    // Before anything else: a second shop on this directory must not get as far as its database.
    const lock = await lockDataDir(o.dataDir)
    stops.push(lock.release)
    if (lock.tookOverFrom) say(`took over ${lock.file} from PID ${lock.tookOverFrom}, a shop that is no longer running`)
    await buildIfStale(o.root, say, o.signal)
    checkpoint()

    // Before any function starts: a database that cannot work is one line now, not six functions retrying.
    const database = await openShopDatabase({ dataDir: o.dataDir, databaseUrl: o.databaseUrl, say })
    stops.push(database.stop)
    const databaseUrl = database.url
    checkpoint()

    const privateJwk = await keptSigningKey(o.dataDir)
    const adminPassword = o.adminPassword ?? (await keptSecret(join(o.dataDir, 'admin-password')))

    const names = functions.map((f) => f.name)
    const ports = await Promise.all(names.map((_, i) => (o.functionPortBase ? o.functionPortBase + i : freePort())))
    // Ports given, not found: one line now if another process has any of them, or they overlap.
    const overlap = names.findIndex((_, i) => o.functionPortBase && ports[i] === o.ingressPort)
    if (overlap >= 0) {
      throw new Error(`INGRESS_PORT ${o.ingressPort} is also ${names[overlap]}'s port (FUNCTION_PORT_BASE ${o.functionPortBase} + ${overlap}): set them ${names.length} ports apart`)
    }
    await assertPortsFree([
      ...(o.functionPortBase ? names.map((name, i) => ({ port: ports[i]!, owner: name, setting: 'FUNCTION_PORT_BASE' })) : []),
      ...(o.ingressPort ? [{ port: o.ingressPort, owner: 'the ingress', setting: 'INGRESS_PORT' }] : []),
    ])
    const urls = Object.fromEntries(names.map((n, i) => [n, `http://127.0.0.1:${ports[i]}`]))
    const running = new Map<string, FunctionProcess>()
    const supervised = new Map<string, SupervisedFunction>()

    const broker = await startLocalBroker({
      manifestsDir: o.manifestsDir ?? join(o.root, 'eventing'),
      amqpUrl: o.amqpUrl,
      resolve: (service) => (running.has(service) ? urls[service] : undefined),
      log: createLogger({ name: 'broker', write: (line) => o.output('broker', line) }),
      pingSchedules: o.pingSchedules,
      // On RabbitMQ, queues outlive the shop that made them: a namespace of this DATA_DIR's own
      // (made once, kept), unless one is given, so that another shop on the same RabbitMQ, or this
      // one started afresh on an emptied DATA_DIR, never takes the events meant for the other.
      namespace: o.brokerNamespace ?? (o.amqpUrl ? `shop-${await keptSecret(join(o.dataDir, 'broker-namespace'), () => randomBytes(4).toString('hex'))}` : undefined),
    })
    stops.push(broker.stop)
    checkpoint()
    // In memory, the broker says so itself (and how to keep the queues): not said twice.
    // Where dead-letter's redrive sends a dead letter: the Broker whose Triggers take its type
    // (BROKER_URLS, which the Knative Service sets on a cluster).
    const redriveTo = Object.fromEntries(
      (await loadManifests(o.manifestsDir ?? join(o.root, 'eventing'))).triggers.flatMap((t) =>
        t.filter.type && broker.brokers[t.broker] ? [[t.filter.type, broker.brokers[t.broker]!]] : [],
      ),
    )

    const common = {
      ...o.functionEnv,
      DATABASE_URL: databaseUrl,
      JWT_PUBLIC_KEYS: JSON.stringify({ keys: [publicJwkOf(privateJwk)] }),
    }
    const envOf = (name: string): Record<string, string> => {
      const sink = broker.sinkFor(name)
      return {
        ...common,
        ...(name === 'auth' ? { JWT_PRIVATE_KEY: JSON.stringify(privateJwk), ADMIN_EMAIL: o.adminEmail, ADMIN_PASSWORD: adminPassword } : {}),
        ...(name === 'cart' || name === 'order' ? { PRODUCT_URL: urls.product! } : {}),
        // The storefront calls the functions whose APIs its pages use, as any client does.
        ...(name === 'web' ? { AUTH_URL: urls.auth!, PRODUCT_URL: urls.product!, CART_URL: urls.cart!, ORDER_URL: urls.order! } : {}),
        ...(name === 'dead-letter' ? { BROKER_URLS: JSON.stringify(redriveTo) } : {}),
        ...(sink ? { K_SINK: sink } : {}),
      }
    }
    // Who calls whom, read from what each is given: a function stopping must still reach these.
    const callsOf = (name: string) => {
      const env = Object.values(envOf(name))
      return names.filter((other) => other !== name && env.some((value) => value === urls[other] || value.startsWith(`${urls[other]}/`)))
    }
    stops.push(async () => {
      for (const layer of stopOrder(Object.fromEntries(names.map((n) => [n, callsOf(n)])))) {
        const here = layer.filter((n) => supervised.has(n))
        if (here.length === 0) continue
        say(`stopping ${here.join(', ')}`)
        await Promise.all(here.map((n) => supervised.get(n)!.stop()))
      }
    })
    // Before the functions stop: deliveries under way finish while their subscribers still run.
    // The broker's ingresses stay up meanwhile, for what the functions publish as they finish.
    stops.push(() => broker.drain())
    // All at once: every URL is known already, and each migrates its own schema under a lock.
    // Settled, not raced: when one fails, the others must be supervised before stopping begins.
    const started = await Promise.allSettled(
      names.map(async (name, i) => {
        const fn = await startFunctionProcess({
          root: o.root,
          name,
          port: ports[i]!,
          env: envOf(name),
          output: o.output,
          ...(o.functionPortBase ? {} : { nextPort: freePort }),
          ...(o.signal ? { signal: o.signal } : {}),
        })
        urls[name] = fn.url
        running.set(name, fn)
        // Started again on the port it has now: the URL the others, the ingress and the broker use.
        const port = Number(new URL(fn.url).port)
        supervised.set(
          name,
          superviseFunction({
            first: fn,
            start: (signal) => startFunctionProcess({ root: o.root, name, port, env: envOf(name), output: o.output, signal }, 1),
            say,
            // Down, it resolves to nothing: the ingress answers 503, the broker retries.
            onChange: (now) => (now ? running.set(name, now) : running.delete(name)),
          }),
        )
      }),
    )
    checkpoint()
    const failed = started.find((s) => s.status === 'rejected')
    if (failed) throw failed.reason

    const ingress = await startIngress({
      routes: await loadRoutes(o.root, o.ingress ?? 'nginx'),
      resolve: (service) => (running.has(service) ? urls[service] : undefined),
      port: o.ingressPort,
    })
    stops.push(ingress.stop)
    checkpoint()

    const admin = { email: o.adminEmail, password: adminPassword }
    if (o.demoCatalog) await loadDemoCatalog(ingress.url, admin, say)
    checkpoint()

    return {
      ingressUrl: ingress.url,
      functions: urls,
      database: database.description,
      broker: broker.mode === 'rabbitmq' ? `RabbitMQ at ${redact(o.amqpUrl ?? '')}, namespace ${broker.namespace}` : 'in memory',
      brokers: broker.brokers,
      admin,
      /** How many times each function was started again after it exited. */
      restarts: (): Record<string, number> => Object.fromEntries([...supervised].map(([name, s]) => [name, s.restarts])),
      /** The PID of a function's process now; undefined while it is down. */
      pid: (name: string): number | undefined => supervised.get(name)?.current?.child.pid,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')

/** Builds the bundles when one is missing or older than the sources; `signal` stops the build. */
export async function buildIfStale(root: string, say: (line: string) => void, signal?: AbortSignal) {
  const newest = async (dir: string): Promise<number> => {
    let max = 0
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) max = Math.max(max, await newest(path))
      else if (!entry.name.endsWith('.test.ts')) max = Math.max(max, (await stat(path)).mtimeMs)
    }
    return max
  }
  const sources = Math.max(await newest(join(root, 'functions')), await newest(join(root, 'shared')))
  const bundles = functions.map((f) => f.name).map((n) => join(root, 'dist', n, 'index.mjs'))
  const built = await Promise.all(bundles.map((b) => (existsSync(b) ? stat(b).then((s) => s.mtimeMs) : 0)))
  if (Math.min(...built) > sources) return
  say('building the function bundles (node build.mjs)')
  const { stdout } = await promisify(execFile)(process.execPath, ['build.mjs'], { cwd: root, ...(signal ? { signal } : {}) })
  for (const line of stdout.trim().split('\n')) say(line)
}

/** One signing key for the whole stack, kept in DATA_DIR so tokens survive a restart. */
async function keptSigningKey(dataDir: string): Promise<PrivateJwk> {
  const file = join(dataDir, 'jwt-private-key.json')
  if (existsSync(file)) return v.parse(PrivateJwk, JSON.parse(await readFile(file, 'utf8')))
  const { privateJwk } = await generateSigningKey()
  await writeFile(file, JSON.stringify(privateJwk), { mode: 0o600 })
  return privateJwk
}

/** A random value (`make`; default a secret of 16 characters) made on first start and kept in `file`. */
async function keptSecret(file: string, make = () => randomBytes(12).toString('base64url')): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim()
  const secret = make()
  await writeFile(file, secret + '\n', { mode: 0o600 })
  return secret
}

/** On first start (an empty catalog), a few products to shop for, created through the API. */
async function loadDemoCatalog(base: string, admin: { email: string; password: string }, say: (line: string) => void) {
  const list = (await (await fetch(`${base}/api/products?limit=1`)).json()) as { total: number }
  if (list.total > 0) return
  const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(admin) })
  if (!login.ok) throw new Error(`the demo catalog needs the admin login, which answered ${login.status}`)
  const { token } = (await login.json()) as { token: string }
  for (const product of demoCatalog) {
    const res = await fetch(`${base}/api/products`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify(product),
    })
    if (!res.ok) throw new Error(`creating the demo product ${product.name} answered ${res.status}`)
  }
  say(`loaded the demo catalog: ${demoCatalog.length} products (DEMO_CATALOG=off skips this)`)
}
