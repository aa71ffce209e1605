/**
 * @module
 * A Broker's ingress, as eventing-rabbitmq's (cmd/ingress/main.go): `POST /` with a CloudEvent in
 * binary or structured mode → 202 once stored (with RabbitMQ, after the publisher confirm); 400
 * for an invalid event; 405 for another method on `/`; 404 for another path; 500 when it cannot
 * be stored. Each Broker gets its own server, so its URL is `http://127.0.0.1:<port>/` as a
 * cluster's is `http://<broker>-broker-ingress.<ns>.svc.cluster.local/`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../../shared/log.ts'
import { describeEvent, parseHttpEvent } from './cloudevent.ts'
import type { EventQueues } from './queue.ts'

const MAX_BODY_BYTES = 4 * 1024 * 1024

type IngressDeps = { broker: string; exchange: string; queues: EventQueues; log: Logger }
export type Ingress = { url: string; close(): Promise<void> }

export async function startIngress({ broker, exchange, queues, log }: IngressDeps): Promise<Ingress> {
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('ingress failed', { broker, err })
      if (!res.headersSent) answer(res, 500, 'internal error')
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = new URL(req.url ?? '/', 'http://ingress').pathname
    if (path !== '/') return answer(res, 404, 'not found: events go to POST /')
    if (req.method !== 'POST') return answer(res, 405, 'method not allowed: events go to POST /', { Allow: 'POST' })
    const body = await readBody(req)
    if (!body) return answer(res, 413, `an event is at most ${MAX_BODY_BYTES} bytes`)
    const parsed = parseHttpEvent(req.headers, body)
    if (!parsed.ok) {
      log.warn('event refused', { broker, reason: parsed.reason })
      return answer(res, 400, parsed.reason)
    }
    const ids = { broker, ...describeEvent(parsed.event) }
    try {
      await queues.publish(exchange, parsed.event)
    } catch (err) {
      log.error('event not stored', { ...ids, err })
      return answer(res, 500, 'the event could not be stored; try again')
    }
    log.info('event accepted', ids)
    answer(res, 202)
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function answer(res: ServerResponse, status: number, text?: string, headers: Record<string, string> = {}) {
  res.writeHead(status, text ? { ...headers, 'Content-Type': 'text/plain; charset=utf-8' } : headers)
  res.end(text)
}

/** The request body, or undefined when it is over the limit. */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) return undefined
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}
