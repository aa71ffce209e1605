/**
 * @module
 * Queues in this process's memory, routed like RabbitMQ's headers exchanges. Quick and with no
 * server, but whatever is not yet delivered when the process ends is lost: the broker says so
 * when it starts in this mode.
 */
import { setMaxListeners } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../../shared/log.ts'
import type { StoredEvent } from './cloudevent.ts'
import type { EventQueues, Received } from './queue.ts'
import { bindingMatches, type Topology } from './topology.ts'

type Entry = { event: StoredEvent; redelivered: boolean }
type Queue = {
  name: string
  exchange: string
  args: Record<string, string>
  ready: Entry[]
  unacked: number
  consumer?: { prefetch: number; handle: (message: Received) => Promise<void> }
}

export function createMemoryQueues({ topology, log }: { topology: Topology; log: Logger }): EventQueues {
  const queues = new Map<string, Queue>(
    topology.queues.map((q) => [q.name, { name: q.name, exchange: q.exchange, args: q.args, ready: [], unacked: 0 }]),
  )
  const exchanges = new Set(topology.exchanges)
  const closing = new AbortController()
  setMaxListeners(0, closing.signal) // every delivery in flight listens to it
  const draining = new AbortController()
  setMaxListeners(0, draining.signal)
  const running = new Set<Promise<void>>()

  // Hands out ready messages while the consumer has room under its prefetch.
  const pump = (queue: Queue) => {
    const { consumer } = queue
    while (consumer && !closing.signal.aborted && !draining.signal.aborted && queue.unacked < consumer.prefetch) {
      const entry = queue.ready.shift()
      if (!entry) return
      queue.unacked += 1
      let settled = false
      const settle = (acked: boolean) => {
        if (settled) return
        settled = true
        queue.unacked -= 1
        // Given back, it goes first again: with prefetch 1 the order holds.
        if (!acked && !closing.signal.aborted) queue.ready.unshift({ event: entry.event, redelivered: true })
        pump(queue)
      }
      const received: Received = { ...entry, ack: () => settle(true), signal: closing.signal, draining: draining.signal }
      const work = Promise.resolve()
        .then(() => consumer.handle(received))
        .catch((err: unknown) => log.error('consumer failed', { queue: queue.name, err }))
        .finally(() => {
          running.delete(work)
          settle(false)
        })
      running.add(work)
    }
  }

  return {
    mode: 'memory',
    async publish(exchange, event) {
      if (closing.signal.aborted) throw new Error('the broker is stopping')
      if (!exchanges.has(exchange)) throw new Error(`no exchange ${exchange}`)
      for (const queue of queues.values()) {
        if (queue.exchange === exchange && bindingMatches(queue.args, event.headers)) {
          queue.ready.push({ event, redelivered: false })
          pump(queue)
        }
      }
    },
    consume(name, prefetch, handle) {
      const queue = queues.get(name)
      if (!queue) throw new Error(`no queue ${name}`)
      queue.consumer = { prefetch, handle }
      pump(queue)
    },
    async drain(timeoutMs) {
      draining.abort()
      const timer = new AbortController()
      await Promise.race([Promise.allSettled([...running]), sleep(timeoutMs, undefined, { signal: timer.signal }).catch(() => {})])
      timer.abort()
    },
    async close() {
      closing.abort()
      await Promise.allSettled([...running])
    },
  }
}
