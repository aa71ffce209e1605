/**
 * @module
 * The broker tests' fixtures, on vitest: brokers on test manifests in a namespace of their own
 * (stopped, and their RabbitMQ queues deleted, after each test), a log that can be counted, a
 * patient `waitFor`, a TCP proxy that stands in for a RabbitMQ outage, and small helpers to send
 * events and hold answers. The plain parts that benchmarks also use at run time are elsewhere:
 * recording-subscriber.ts, temp-manifests.ts and delete-topology.ts.
 */
import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { afterEach, expect, vi } from 'vitest'
import { createLogger, type Logger } from '../../shared/log.ts'
import { startLocalBroker, type LocalBroker, type LocalBrokerOptions } from './broker.ts'
import { deleteTopology } from './delete-topology.ts'
import { startSubscriber, type Subscriber } from './recording-subscriber.ts'
import { objects, writeManifests } from './temp-manifests.ts'

/** A namespace no other test run uses, so RabbitMQ names never clash. */
export const testNamespace = () => `t${randomBytes(5).toString('hex')}`

/** One JSON log line: its `msg`, `level` and whatever fields came with it. */
export type LogLine = { msg: string; level: string } & Record<string, unknown>
/** A Logger whose lines the test can count (`count('event dead-lettered')`). */
export function captureLog(): { log: Logger; lines: LogLine[]; count(msg: string): number } {
  const lines: LogLine[] = []
  const log = createLogger({ name: 'broker', level: 'debug', write: (line) => lines.push(JSON.parse(line) as LogLine) })
  return { log, lines, count: (msg) => lines.filter((l) => l.msg === msg).length }
}

/** A running broker on test manifests: its temp `dir`, `namespace`, captured `logs`, and `cleanup()`. */
export type TestBroker = LocalBroker & { dir: string; namespace: string; logs: ReturnType<typeof captureLog>; cleanup(): Promise<void> }
type TestBrokerOptions = { services: Record<string, string | undefined>; amqpUrl?: string | undefined } & Partial<Pick<LocalBrokerOptions, 'pingSchedules'>>

/**
 * Starts a broker on test manifests in a fresh namespace; `cleanup()` stops it, deletes what it
 * declared in RabbitMQ (with `amqpUrl`) and removes the temp dir.
 */
export async function startTestBroker(docs: object[], o: TestBrokerOptions): Promise<TestBroker> {
  const namespace = testNamespace()
  const dir = await writeManifests(namespace, docs)
  const broker = await startBrokerOn(dir, o)
  return {
    ...broker,
    namespace,
    async cleanup() {
      await broker.stop()
      if (o.amqpUrl) await deleteTopology(o.amqpUrl, dir)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Starts a broker on manifests already written (a second broker on the same queues). */
export async function startBrokerOn(dir: string, o: TestBrokerOptions): Promise<LocalBroker & { dir: string; logs: ReturnType<typeof captureLog> }> {
  const logs = captureLog()
  const broker = await startLocalBroker({
    manifestsDir: dir,
    resolve: (name) => o.services[name],
    log: logs.log,
    ...(o.amqpUrl ? { amqpUrl: o.amqpUrl } : {}),
    ...(o.pingSchedules ? { pingSchedules: o.pingSchedules } : {}),
  })
  return { ...broker, dir, logs }
}

/**
 * `vi.waitFor` with room for a loaded CI machine (its default gives up after 1 s). Tests wait
 * for outcomes this way, never for a fixed time.
 */
export const waitFor = <T>(check: () => T | Promise<T>, timeout = 8_000) => vi.waitFor(check, { timeout, interval: 20 })

/** The two storages the semantics tests run on; RabbitMQ only when AMQP_URL is set. */
export const brokerModes = [
  { mode: 'memory', amqpUrl: undefined },
  { mode: 'rabbitmq', amqpUrl: process.env.AMQP_URL },
] as const

/** Subscribers and brokers for one describe block, all stopped (and deleted) after each test. */
export function brokerFixtures(mode: 'memory' | 'rabbitmq', amqpUrl: string | undefined) {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  const subscriber = async (answer?: Subscriber['answer']) => {
    const s = await startSubscriber(answer)
    cleanups.push(s.close)
    return s
  }
  const start = async (docs: object[], services: Record<string, string | undefined>, pingSchedules?: Record<string, string>) => {
    const b = await startTestBroker([objects.config(), ...docs], { services, amqpUrl, ...(pingSchedules ? { pingSchedules } : {}) })
    cleanups.push(b.cleanup)
    expect(b.mode).toBe(mode)
    return b
  }
  return { subscriber, start, cleanups }
}

/** POSTs a CloudEvent to an ingress in binary content mode (CloudEvents 1.0 HTTP binding: `ce-*` headers, JSON body); answers the HTTP status. */
export async function send(url: string, attributes: Record<string, string>, data: unknown = { ok: true }): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  const all = { specversion: '1.0', id: randomBytes(8).toString('hex'), source: '/test', ...attributes }
  for (const [name, value] of Object.entries(all)) headers[`ce-${name}`] = value
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(data) })
  await res.body?.cancel()
  return res.status
}

/** A promise and the function that settles it (a subscriber's `hold`). */
export function gate(): { promise: Promise<void>; open(): void } {
  let open = () => {}
  const promise = new Promise<void>((resolve) => (open = resolve))
  return { promise, open }
}

/** `port` on 127.0.0.1; `cut()` drops every connection and refuses new ones until `restore()`. */
export type TcpProxy = { port: number; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }

/**
 * A TCP proxy the test owns in front of RabbitMQ: `cut()` drops every connection and refuses new
 * ones, as a RabbitMQ restart would, without touching the shared server.
 */
export async function startTcpProxy(host: string, port: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  const server = createNetServer((client) => {
    const upstream = netConnect(port, host)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    client.pipe(upstream).pipe(client)
  })
  const listen = (at: number) => new Promise<void>((resolve) => server.listen(at, '127.0.0.1', resolve))
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of sockets) s.destroy()
    })
  await listen(0)
  const proxyPort = (server.address() as AddressInfo).port
  return { port: proxyPort, cut: stop, restore: () => listen(proxyPort), close: () => (server.listening ? stop() : Promise.resolve()) }
}
