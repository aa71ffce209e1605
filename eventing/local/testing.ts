/**
 * @module
 * What the broker tests share: subscribers that are real HTTP servers on 127.0.0.1 answering
 * scripted statuses and recording what they got, test manifests written to a temp dir in a
 * namespace of their own, a log that can be counted, and cleanup of what RabbitMQ was given.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, vi } from 'vitest'
import { stringify } from 'yaml'
import { createLogger, type Logger } from '../../shared/log.ts'
import { startLocalBroker, type LocalBroker, type LocalBrokerOptions } from './broker.ts'
import { deleteTopology } from './delete-topology.ts'

export type Request = { path: string; headers: Record<string, string>; body: Buffer; n: number }
/** A status, or a full answer; `hold` delays it (the request counts as in flight meanwhile). */
export type Answer = number | { status: number; headers?: Record<string, string>; body?: string; hold?: Promise<unknown> }

export type Subscriber = {
  url: string
  received: Request[]
  inFlight: number
  maxInFlight: number
  answer: (request: Request) => Answer | Promise<Answer>
  close(): Promise<void>
}

/** An HTTP server that records each request and answers with `answer` (default 204). */
export async function startSubscriber(answer: Subscriber['answer'] = () => 204): Promise<Subscriber> {
  const subscriber: Subscriber = { url: '', received: [], inFlight: 0, maxInFlight: 0, answer, close: async () => {} }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]))
      const request = { path: req.url ?? '/', headers, body: Buffer.concat(chunks), n: subscriber.received.length + 1 }
      subscriber.received.push(request)
      subscriber.inFlight += 1
      subscriber.maxInFlight = Math.max(subscriber.maxInFlight, subscriber.inFlight)
      try {
        const a = await subscriber.answer(request)
        const full = typeof a === 'number' ? { status: a } : a
        await full.hold
        res.writeHead(full.status, full.headers ?? {})
        res.end(full.body)
      } finally {
        subscriber.inFlight -= 1
      }
    })().catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  subscriber.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  subscriber.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  return subscriber
}

/** A namespace no other test run uses, so RabbitMQ names never clash. */
export const testNamespace = () => `t${randomBytes(5).toString('hex')}`

export type LogLine = { msg: string; level: string } & Record<string, unknown>
/** A Logger whose lines the test can count (`count('event dead-lettered')`). */
export function captureLog(): { log: Logger; lines: LogLine[]; count(msg: string): number } {
  const lines: LogLine[] = []
  const log = createLogger({ name: 'broker', level: 'debug', write: (line) => lines.push(JSON.parse(line) as LogLine) })
  return { log, lines, count: (msg) => lines.filter((l) => l.msg === msg).length }
}

type Delivery = Record<string, unknown>
/** Knative objects, in the form the manifests have, for test manifests. */
export const objects = {
  config: (queueType = 'quorum') => ({
    apiVersion: 'eventing.knative.dev/v1alpha1',
    kind: 'RabbitmqBrokerConfig',
    metadata: { name: 'config' },
    spec: { queueType },
  }),
  broker: (name: string, delivery?: Delivery) => ({
    apiVersion: 'eventing.knative.dev/v1',
    kind: 'Broker',
    metadata: { name, annotations: { 'eventing.knative.dev/broker.class': 'RabbitMQBroker' } },
    spec: { config: { apiVersion: 'eventing.knative.dev/v1alpha1', kind: 'RabbitmqBrokerConfig', name: 'config' }, ...(delivery ? { delivery } : {}) },
  }),
  trigger: (name: string, o: { broker: string; filter?: Record<string, string>; service: string; uri?: string; delivery?: Delivery; parallelism?: number }) => ({
    apiVersion: 'eventing.knative.dev/v1',
    kind: 'Trigger',
    metadata: { name, ...(o.parallelism ? { annotations: { 'rabbitmq.eventing.knative.dev/parallelism': String(o.parallelism) } } : {}) },
    spec: {
      broker: o.broker,
      filter: { attributes: o.filter ?? {} },
      subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: o.service }, ...(o.uri ? { uri: o.uri } : {}) },
      ...(o.delivery ? { delivery: o.delivery } : {}),
    },
  }),
  deadLetterSink: (service: string) => ({ ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: service } }),
}

/** Writes `docs` as one YAML file in a new temp dir, in namespace `namespace`. */
export async function writeManifests(namespace: string, docs: object[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'eventing-test-'))
  const withNs = docs.map((d) => {
    const { metadata } = d as { metadata: object }
    return { ...d, metadata: { ...metadata, namespace } }
  })
  await writeFile(join(dir, 'manifests.yaml'), withNs.map((d) => stringify(d)).join('---\n'))
  return dir
}

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

export { deleteTopology }

/** POSTs an event to an ingress in binary mode; answers the status. */
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
