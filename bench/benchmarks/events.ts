/**
 * Benchmark 5, the event pipeline.
 * - Orders through the whole local stack (startShop: bundles as processes, the ingress, the local
 *   broker on RabbitMQ, PAYMENT_DELAY_MS=0): orders per second from the first POST until every
 *   order is paid or failed.
 * - The broker alone: events per second from its ingress to a trivial subscriber, against plain
 *   amqplib publishing to the same kind of exchange and queue on the same RabbitMQ with publisher
 *   confirms, awaiting each confirm and with a window as wide as the broker's HTTP publishers.
 * - With the 2 s payment delay, the payment Trigger at parallelism 1 and at 20 (two stacks on
 *   temp copies of eventing/ that differ in that annotation only), to show throughput scales.
 * The bench process hosts the stacks' ingress and broker, so it is not pinned to core 0 for the
 * stacks; the broker alone runs as a process of its own on the server cores (bench/apps/broker.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'amqplib'
import * as v from 'valibot'
import { deleteTopology } from '../../eventing/local/delete-topology.ts'
import { startSubscriber } from '../../eventing/local/recording-subscriber.ts'
import { objects, writeManifests } from '../../eventing/local/temp-manifests.ts'
import { startChild } from '../../knative/local/child.ts'
import { startShop } from '../../knative/local/runner.ts'
import { PrivateJwk } from '../../shared/auth.ts'
import type { Pool } from '../../shared/db.ts'
import { inTurns, medianOf } from '../compare.ts'
import { onServerCores, unpinned } from '../cpus.ts'
import type { BenchmarkResult, Context } from '../context.ts'
import { cpuSeconds, runLoad } from '../http-load.ts'
import { createKeys, type BenchUser } from '../keys.ts'
import { goals, row, type Row } from '../report.ts'
import { ensureProducts, pick, type SeededProduct } from '../seed.ts'

const B = '5 events'
const SHOPPERS = 20
const PUBLISHERS = 20
const PARALLELISM = 20

type Out = { rows: Row[]; notes: string[]; raw: Record<string, unknown> }

export async function events(ctx: Context): Promise<BenchmarkResult> {
  const out: Out = {
    rows: [],
    notes: [
      `5: the stacks' ingress and broker run in the bench process (as npm start runs them in the runner), so for them the bench process and the functions use every core; ` +
        `the broker alone runs as a process of its own${ctx.placement.pinned ? ` on core ${ctx.placement.serverCores}, the load, the subscriber and the amqplib baseline on core ${ctx.placement.loadCores}` : ''}. ` +
        `RabbitMQ: ${ctx.amqpUrl ? 'yes' : 'none answered, in-memory broker'}.`,
    ],
    raw: {},
  }
  await unpinned(ctx.placement, () => pipeline(ctx, out))
  if (ctx.amqpUrl) await brokerAlone(ctx, ctx.amqpUrl, out)
  else out.rows.push(row({ benchmark: B, metric: 'broker events/s / amqplib', unit: 'events/s', goal: goals.ratioAtLeast(0.5), note: 'not measured: no RabbitMQ answered (set AMQP_URL)' }))
  await unpinned(ctx.placement, () => parallelism(ctx, out))
  return out
}

/** Orders through the whole stack with PAYMENT_DELAY_MS=0. */
async function pipeline(ctx: Context, { rows, notes, raw }: Out) {
  const { options, say } = ctx
  const stacks: Stack[] = []
  try {
    const stack = await startStack(ctx, { root: ctx.root, label: 'pipeline', databaseUrl: ctx.db.url, pool: ctx.db.pool, delayMs: 0 })
    stacks.push(stack)
    say(`  ${options.orders} orders by ${SHOPPERS} shoppers through the ingress, PAYMENT_DELAY_MS=0, until every order is final`)
    const runs = await inTurns(
      {
        stack: () => orderRun(stack, options.orders, SHOPPERS),
      },
      options.rounds,
      say,
      showOrders,
    )
    const r = runs.stack
    rows.push(
      row({ benchmark: B, metric: `${options.orders} orders, delay 0: POST → all final`, unit: 'orders/s', subject: medianOf(r, (x) => x.ordersPerS) }),
      row({ benchmark: B, metric: `${options.orders} orders, delay 0: POSTs alone`, unit: 'orders/s', subject: medianOf(r, (x) => x.postsPerS) }),
    )
    notes.push(
      `5: pipeline = startShop (every bundle a process, the local ingress, the local broker ${ctx.amqpUrl ? 'on RabbitMQ' : 'in memory'}, the manifests of eventing/), PAYMENT_DELAY_MS=0, ` +
        `${SHOPPERS} shoppers POSTing /api/orders (2 lines each) through the ingress, then polling the database until no order of the run is pending. No baseline: orders/s only, median of ${options.rounds} runs.`,
    )
    const broken = Object.values(runs).flat().filter((x) => x.problem)
    if (broken.length) notes.push(`5: pipeline runs with problems: ${broken.map((x) => x.problem).join('; ')}`)
    raw.pipeline = runs
  } finally {
    for (const s of stacks) await s.stop()
  }
}

/** The local broker's ingress → subscriber against plain amqplib with confirms. */
async function brokerAlone(ctx: Context, amqpUrl: string, { rows, notes, raw }: Out) {
  const { options, say } = ctx
  const n = options.events
  const subscriber = await startSubscriber(() => 204)
  const closeSubscriber = ctx.cleanup.add('close the bench subscriber', () => subscriber.close())
  const started: BrokerProcess[] = []
  let plain: Awaited<ReturnType<typeof plainAmqp>> | undefined
  try {
    const broker = await startBrokerProcess(ctx, amqpUrl, subscriber.url, 'dist/bench/apps/broker.mjs', 'broker-alone')
    started.push(broker)
    plain = await plainAmqp(ctx, amqpUrl, broker.namespace)
    const timeoutMs = Math.max(60_000, n * 20)

    const viaBroker = (target: BrokerProcess) => async (count: number) => {
      subscriber.received.length = 0
      let seq = 0
      const cpu0 = await cpuSeconds(target.pid)
      const t0 = performance.now()
      // Timed by the subscriber, not by the load: autocannon notices it is done only on its 1 s tick.
      const load = runLoad({
        url: target.url,
        connections: PUBLISHERS,
        durationS: 3600,
        amount: count,
        request: { method: 'POST', path: '/', headers: { 'Content-Type': 'application/json', 'ce-specversion': '1.0', 'ce-type': 'bench.event', 'ce-source': '/bench' } },
        next: () => ({ headers: { 'ce-id': `e${++seq}` }, body: eventBody(seq) }),
      })
      await until(() => subscriber.received.length >= count, timeoutMs, () => `${count} events at the subscriber (got ${subscriber.received.length})`)
      const seconds = (performance.now() - t0) / 1000
      const cpu1 = await cpuSeconds(target.pid)
      const accepted = (await load).statuses['202'] ?? 0
      return {
        eventsPerS: count / seconds,
        seconds,
        ...(cpu0 !== undefined && cpu1 !== undefined ? { cpuUs: ((cpu1 - cpu0) / count) * 1e6 } : {}),
        ...(accepted !== count ? { problem: `the ingress accepted ${accepted} of ${count}` } : {}),
      }
    }
    const show = (r: { eventsPerS: number; cpuUs?: number; problem?: string }) =>
      `${Math.round(r.eventsPerS)} events/s${r.cpuUs ? `  broker cpu ${Math.round(r.cpuUs)} µs/event` : ''}${r.problem ? `  (${r.problem})` : ''}`

    say(`  ${n} events per run; broker: ${PUBLISHERS} HTTP publishers → ingress → RabbitMQ → Trigger (parallelism ${PARALLELISM}) → subscriber; amqplib: the same exchange/queue kinds, prefetch ${PARALLELISM}`)
    // Warm-up: connections, JIT, queue leaders.
    const warm = Math.min(200, n)
    await viaBroker(broker)(warm)
    await plain.run(warm, PUBLISHERS)
    const p = plain
    const runs = await inTurns(
      {
        'local broker, HTTP ingress': () => viaBroker(broker)(n),
        [`amqplib, window of ${PUBLISHERS}`]: () => p.run(n, PUBLISHERS),
        'amqplib, each confirm awaited': () => p.run(n, 1),
      },
      options.rounds,
      say,
      show,
    )
    const brokerRate = medianOf(runs['local broker, HTTP ingress'], (r) => r.eventsPerS)
    rows.push(
      row({
        benchmark: B,
        metric: `broker events/s / amqplib window ${PUBLISHERS}`,
        unit: 'events/s',
        subject: brokerRate,
        baseline: medianOf(runs[`amqplib, window of ${PUBLISHERS}`], (r) => r.eventsPerS),
        goal: goals.ratioAtLeast(0.5),
      }),
      row({ benchmark: B, metric: 'broker events/s / amqplib each confirm', unit: 'events/s', subject: brokerRate, baseline: medianOf(runs['amqplib, each confirm awaited'], (r) => r.eventsPerS) }),
      row({ benchmark: B, metric: 'broker process CPU per event', unit: 'µs', subject: medianOf(runs['local broker, HTTP ingress'], (r) => ('cpuUs' in r ? r.cpuUs : undefined)) }),
    )
    notes.push(
      `5: broker alone = bench/apps/broker.ts, eventing/local startLocalBroker as a process of its own, logging at info to a file, on test manifests (one Broker, one Trigger filtering type=bench.event, parallelism ${PARALLELISM}, quorum queue) in a fresh namespace, ` +
        `${PUBLISHERS} HTTP connections POSTing binary CloudEvents to its ingress (202 after RabbitMQ's confirm), a subscriber answering 204; time from the first POST to the last delivery. ` +
        'Baseline = plain amqplib on the same RabbitMQ: a durable headers exchange and quorum queue bound like the Trigger\'s, persistent messages with the same headers, a confirm channel, ' +
        `a consumer with prefetch ${PARALLELISM} and manual acks on the same connection, opened with { noDelay: true } as a tuned client would (without it, Nagle's algorithm holds each publish behind ` +
        `an unacknowledged ack: about 25 msg/s awaiting each confirm on this machine); "window ${PUBLISHERS}" keeps up to ${PUBLISHERS} messages unconfirmed (as many as the broker's concurrent publishers), ` +
        '"each confirm" awaits every confirm before the next publish. The goal (≥ 0.5×) is against the window, the like-for-like concurrency.',
    )
    const broken = Object.values(runs).flat().filter((r) => r.problem)
    if (broken.length) notes.push(`5: broker runs with problems: ${broken.map((r) => r.problem).join('; ')}`)
    raw.broker = runs
  } finally {
    for (const b of started) await b.stop()
    await plain?.close()
    await closeSubscriber()
  }
}

const eventBody = (n: number) => `{"n":${n},"note":"an event of about the size of order.created, padded to look like one ${'.'.repeat(200)}"}`

type BrokerProcess = { url: string; pid: number; namespace: string; stop: () => Promise<void> }

/** `script` (the bundle of bench/apps/broker.ts) on test manifests in a namespace of its own, on the server cores. */
async function startBrokerProcess(ctx: Context, amqpUrl: string, subscriberUrl: string, script: string, label: string): Promise<BrokerProcess> {
  const namespace = `bench${randomBytes(4).toString('hex')}`
  const dir = await writeManifests(namespace, [
    objects.config(),
    objects.broker('bench'),
    objects.trigger('bench-sink', { broker: 'bench', service: 'sink', filter: { type: 'bench.event' }, parallelism: PARALLELISM }),
  ])
  ctx.cleanup.add(`remove the ${label} manifests`, () => rm(dir, { recursive: true, force: true }))
  ctx.cleanup.add(`delete the ${label} topology`, () => deleteTopology(amqpUrl, dir))
  const [command, args] = onServerCores(ctx.placement, process.execPath, [join(ctx.root, script)])
  const started = startChild({
    command,
    args,
    cwd: ctx.root,
    env: { PATH: process.env.PATH ?? '', MANIFESTS_DIR: dir, AMQP_URL: amqpUrl, SINK_URL: subscriberUrl, LOG_FILE: join(ctx.scratch, `${label}.log`) },
  })
  const child = started.process
  const stop = ctx.cleanup.add(`stop the ${label} broker`, started.stop)
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const ready = new Promise<Record<string, string>>((resolve, reject) => {
    let buffered = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buffered += d
      const line = buffered.split('\n')[0]
      if (buffered.includes('\n') && line) resolve((JSON.parse(line) as { brokers: Record<string, string> }).brokers)
    })
    child.once('exit', (code) => reject(new Error(`the ${label} broker exited (${code}): ${stderr.trim()}`)))
    setTimeout(() => reject(new Error(`the ${label} broker was not ready in 30 s: ${stderr.trim()}`)), 30_000).unref()
  })
  try {
    const brokers = await ready
    return { url: brokers.bench!, pid: child.pid!, namespace, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Plain amqplib: one exchange and queue laid out as the broker's, publish with confirms, consume with acks. */
async function plainAmqp(ctx: Context, url: string, namespace: string) {
  const exchange = `b.${namespace}.plain`
  const queue = `${namespace}.plain`
  const connection = await connect(url, { noDelay: true })
  const dispose = ctx.cleanup.add('delete the plain amqplib queue', async () => {
    const ch = await connection.createChannel()
    await ch.deleteQueue(queue).catch(() => {})
    await ch.deleteExchange(exchange).catch(() => {})
    await connection.close()
  })
  const publisher = await connection.createConfirmChannel()
  const consumer = await connection.createChannel()
  await publisher.assertExchange(exchange, 'headers', { durable: true, autoDelete: false })
  await publisher.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
  await publisher.bindQueue(queue, exchange, '', { type: 'bench.event', 'x-match': 'all' })
  await consumer.prefetch(PARALLELISM)

  let acked = 0
  await consumer.consume(queue, (msg) => {
    if (!msg) return
    consumer.ack(msg)
    acked++
  })

  return {
    /** `n` messages, at most `window` unconfirmed at once; resolves when all were consumed. */
    async run(n: number, window: number): Promise<{ eventsPerS: number; seconds: number; cpuUs?: number; problem?: string }> {
      acked = 0
      const t0 = performance.now()
      let inFlight = 0
      let wake: (() => void) | undefined
      const confirmed: Promise<void>[] = []
      for (let i = 1; i <= n; i++) {
        while (inFlight >= window) await new Promise<void>((r) => (wake = r))
        inFlight++
        const headers = { specversion: '1.0', id: `p${i}`, source: '/bench', type: 'bench.event', 'content-type': 'application/json' }
        confirmed.push(
          new Promise<void>((resolve, reject) => {
            publisher.publish(exchange, '', Buffer.from(eventBody(i)), { persistent: true, headers, messageId: headers.id, contentType: 'application/json' }, (err: unknown) => {
              inFlight--
              wake?.()
              if (err) reject(new Error('RabbitMQ did not confirm a message'))
              else resolve()
            })
          }),
        )
      }
      await Promise.all(confirmed)
      await until(() => acked >= n, Math.max(60_000, n * 20), () => `${n} messages consumed (got ${acked})`)
      const seconds = (performance.now() - t0) / 1000
      return { eventsPerS: n / seconds, seconds }
    },
    close: dispose,
  }
}

/** Two stacks, payment Trigger parallelism 1 and 20, PAYMENT_DELAY_MS=2000, orders in turns. */
async function parallelism(ctx: Context, { rows, notes, raw }: Out) {
  const { options, say } = ctx
  const stacks: Stack[] = []
  try {
    for (const p of [1, 20]) {
      const root = await rootWithParallelism(ctx, p)
      const db = await ctx.db.another(`p${p}`)
      stacks.push(await startStack(ctx, { root, label: `parallelism-${p}`, databaseUrl: db.url, pool: db.pool, delayMs: 2000 }))
    }
    const [one, twenty] = stacks as [Stack, Stack]
    const { p1, p20 } = options.slowOrders
    say(`  PAYMENT_DELAY_MS=2000: ${p1} orders at parallelism 1, ${p20} at parallelism 20, by ${SHOPPERS} shoppers at most`)
    const runs = await inTurns(
      {
        'payment parallelism 1': () => orderRun(one, p1, SHOPPERS),
        'payment parallelism 20': () => orderRun(twenty, p20, SHOPPERS),
      },
      options.rounds,
      say,
      showOrders,
    )
    rows.push(
      row({
        benchmark: B,
        metric: 'delay 2 s: parallelism 20 / parallelism 1',
        unit: 'orders/s',
        subject: medianOf(runs['payment parallelism 20'], (r) => r.ordersPerS),
        baseline: medianOf(runs['payment parallelism 1'], (r) => r.ordersPerS),
        goal: goals.atLeast(8, 'orders/s'),
      }),
    )
    notes.push(
      `5: parallelism = two stacks as above with PAYMENT_DELAY_MS=2000, each on a temp copy of eventing/ whose payment-on-order-created Trigger has rabbitmq.eventing.knative.dev/parallelism "1" or "20" ` +
        `(everything else linked to this repository), each with a database of its own; ${p1} orders (parallelism 1) or ${p20} orders (parallelism 20), time from the first POST until all are final. ` +
        'At 2 s a payment, parallelism 20 carries at most 10 orders/s and parallelism 1 at most 0.5; a batch also pays for its POSTs and one payment\'s latency, so it lands below (goal ≥ 8).',
    )
    const broken = Object.values(runs).flat().filter((r) => r.problem)
    if (broken.length) notes.push(`5: parallelism runs with problems: ${broken.map((r) => r.problem).join('; ')}`)
    raw.parallelism = runs
  } finally {
    for (const s of stacks) await s.stop()
  }
}

type Stack = Awaited<ReturnType<typeof startStack>>

/** startShop on `root`, tokens of its signing key for shoppers, and the products of its database. */
async function startStack(ctx: Context, o: { root: string; label: string; databaseUrl: string; pool: Pool; delayMs: number }) {
  const dataDir = await mkdtemp(join(tmpdir(), `shop-bench-${o.label}-`))
  ctx.cleanup.add(`remove ${dataDir}`, () => rm(dataDir, { recursive: true, force: true }))
  const namespace = `bench${randomBytes(4).toString('hex')}`
  const log = createWriteStream(join(ctx.scratch, `shop-${o.label}.log`))
  const products = await ensureProducts(o.pool, 200)
  // Registered first: the topology is deleted even if the start fails half-way.
  const removeTopology = ctx.cleanup.add(`delete the ${o.label} topology`, async () => {
    if (ctx.amqpUrl) await deleteTopology(ctx.amqpUrl, join(o.root, 'eventing'), namespace)
  })
  const shop = await startShop({
    root: o.root,
    ingressPort: 0,
    functionPortBase: 0,
    dataDir,
    databaseUrl: o.databaseUrl,
    ...(ctx.amqpUrl ? { amqpUrl: ctx.amqpUrl } : {}),
    brokerNamespace: namespace,
    demoCatalog: false,
    adminEmail: 'bench-admin@example.test',
    adminPassword: randomUUID(),
    // Migrated already; the admin's bcrypt at cost 4 so that starting is quick (no login is measured here).
    functionEnv: { PAYMENT_DELAY_MS: String(o.delayMs), MIGRATE: 'off', BCRYPT_COST: '4' },
    output: (source, line) => log.write(`${source} ${line}\n`),
  })
  const stopShop = ctx.cleanup.add(`stop the ${o.label} stack`, async () => {
    await shop.stop()
    log.end()
  })
  // startShop keeps its signing key in DATA_DIR (README: "Data, the signing key … live in .data/").
  const keys = await createKeys(v.parse(PrivateJwk, JSON.parse(await readFile(join(dataDir, 'jwt-private-key.json'), 'utf8'))))
  return {
    ingressUrl: shop.ingressUrl,
    pool: o.pool,
    products,
    users: await keys.users(100),
    async stop() {
      await stopShop()
      await removeTopology()
    },
  }
}

type OrderRun = { ordersPerS: number; postsPerS: number; seconds: number; problem?: string }
const showOrders = (r: OrderRun) => `${r.ordersPerS.toFixed(1)} orders/s (POSTs ${r.postsPerS.toFixed(0)}/s)${r.problem ? `  (${r.problem})` : ''}`

/** `n` orders by `shoppers` concurrent clients through the ingress; time until none is pending. */
async function orderRun(stack: Stack, n: number, shoppers: number): Promise<OrderRun> {
  const ids: string[] = []
  const failed: string[] = []
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: Math.min(shoppers, n) }, async () => {
      while (next < n) {
        next++
        const res = await placeOrder(stack.ingressUrl, pick(stack.users), stack.products)
        if (res.id) ids.push(res.id)
        else failed.push(res.status)
      }
    }),
  )
  const posted = performance.now()
  await until(async () => (await pending(stack.pool, ids)) === 0, Math.max(60_000, n * 3_000), () => `${ids.length} orders to be final`, 50)
  const seconds = (performance.now() - t0) / 1000
  const { rows } = await stack.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM payment.payments WHERE order_id = ANY($1::uuid[])', [ids])
  const problems = [
    ...(failed.length ? [`${failed.length} POSTs failed (${[...new Set(failed)].join(', ')})`] : []),
    ...(rows[0]!.n !== ids.length ? [`${rows[0]!.n} payments for ${ids.length} orders`] : []),
  ]
  return { ordersPerS: ids.length / seconds, postsPerS: n / ((posted - t0) / 1000), seconds, ...(problems.length ? { problem: problems.join('; ') } : {}) }
}

async function placeOrder(base: string, user: BenchUser, products: SeededProduct[]): Promise<{ id?: string; status: string }> {
  try {
    const res = await fetch(`${base}/api/orders`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${user.token}`, 'Idempotency-Key': randomUUID() },
      body: JSON.stringify({ items: [{ product_id: pick(products).id, quantity: 1 }, { product_id: pick(products).id, quantity: 2 }] }),
    })
    const body = (await res.json().catch(() => ({}))) as { id?: string }
    return res.status === 201 && body.id ? { id: body.id, status: '201' } : { status: String(res.status) }
  } catch (err) {
    return { status: (err as Error).message }
  }
}

async function pending(pool: Pool, ids: string[]): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders.orders WHERE id = ANY($1::uuid[]) AND status = 'pending'`, [ids])
  return rows[0]!.n
}

/** A root whose eventing/ is a copy with the payment Trigger's parallelism set; the rest are links to this repository. */
async function rootWithParallelism(ctx: Context, parallelism: number): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), `shop-bench-root-p${parallelism}-`))
  ctx.cleanup.add(`remove ${root}`, () => rm(root, { recursive: true, force: true }))
  for (const entry of ['dist', 'functions', 'shared', 'knative', 'node_modules', 'build.mjs', 'package.json']) await symlink(join(ctx.root, entry), join(root, entry))
  const eventing = join(root, 'eventing')
  await mkdir(eventing)
  for (const file of await readdir(join(ctx.root, 'eventing'))) {
    if (file.endsWith('.yaml')) await copyFile(join(ctx.root, 'eventing', file), join(eventing, file))
  }
  const trigger = join(eventing, '300-trigger-payment-on-order-created.yaml')
  const text = await readFile(trigger, 'utf8')
  const changed = text.replace(/(rabbitmq\.eventing\.knative\.dev\/parallelism:\s*)"\d+"/, `$1"${parallelism}"`)
  if (!changed.includes(`parallelism: "${parallelism}"`)) throw new Error(`${trigger}: found no parallelism annotation to set`)
  await writeFile(trigger, changed)
  return root
}

/** Waits until `done()` holds, checking every `intervalMs`; throws after `timeoutMs`. */
async function until(done: () => boolean | Promise<boolean>, timeoutMs: number, what: () => string, intervalMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
