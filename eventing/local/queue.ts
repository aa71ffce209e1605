/**
 * @module
 * The storage under the local broker, in RabbitMQ's terms so that the dispatch and retry logic is
 * written once: publish to an exchange (routed by the bindings of the topology), consume a queue
 * with manual acks and a prefetch. Two implementations: `queue-memory.ts` (lost on exit) and
 * `queue-amqp.ts` (RabbitMQ, laid out as eventing-rabbitmq lays it out).
 */
import type { StoredEvent } from './cloudevent.ts'

/** One message handed to a consumer; it counts against the prefetch until acked or given back. */
export type Received = {
  event: StoredEvent
  /** True when an earlier consumer had it and did not ack it (a restart, a dropped connection). */
  redelivered: boolean
  /** Done with it: success, dropped or dead-lettered. Removes it from the queue for good. */
  ack(): void
  /**
   * Aborts when the message can no longer be acked (stopping, connection lost): stop working on
   * it. RabbitMQ gives it to the next consumer; the memory queue is going away with it.
   */
  signal: AbortSignal
  /**
   * Aborts when the broker stops delivering (`drain`): finish the attempt under way, start no
   * other (a retry not yet made gives the message back, and it stays queued).
   */
  draining: AbortSignal
}

export type EventQueues = {
  mode: 'memory' | 'rabbitmq'
  /**
   * Stores `event` in every queue bound to `exchange` that matches it, and resolves once it is
   * stored (RabbitMQ: after the publisher confirm). Rejects when it cannot be stored.
   */
  publish(exchange: string, event: StoredEvent): Promise<void>
  /**
   * Hands the messages of `queue` to `handle`, in queue order, at most `prefetch` unacked at
   * once. A message whose handler settles without `ack()` goes back to the queue.
   */
  consume(queue: string, prefetch: number, handle: (message: Received) => Promise<void>): void
  /**
   * Hands out no more messages and waits, up to `timeoutMs`, for the handlers under way to settle;
   * what they give back stays queued. Publishing still works.
   */
  drain(timeoutMs: number): Promise<void>
  /** Stops consuming without acking what is in flight (it stays queued), then closes. */
  close(): Promise<void>
}
