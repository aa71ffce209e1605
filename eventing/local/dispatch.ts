/**
 * @module
 * Delivery, as eventing-rabbitmq's dispatcher does it (pkg/dispatcher/dispatcher.go): POST the
 * event in binary mode; retry network errors, timeouts, 5xx, 404, 408, 409 and 429 with the
 * `delivery` backoff; take ANY other status as done (a 400 is acked and the event is gone); after
 * the last retry hand the event, marked with `knativeerrordest` and `knativeerrorcode`, to the
 * dead-letter queue, or drop it when there is no dead-letter sink. A 200 that carries a CloudEvent
 * is a reply, published to the same Broker. Unlike the real dispatcher, the original is acked
 * only once its dead letter is stored, so a RabbitMQ outage at that moment loses nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../../shared/log.ts'
import { binaryHeaders, carriesEvent, describeEvent, parseHttpEvent, withAttributes, type StoredEvent } from './cloudevent.ts'
import type { DeliverySpec } from './manifests.ts'
import type { EventQueues, Received } from './queue.ts'
import type { DeadLetterPlan, TriggerPlan } from './topology.ts'

/** Where to deliver, looked up at each attempt: a function may not be up yet (`url` undefined). */
export type Target = { url: string | undefined; display: string }

export type Attempt = { status: number; reply?: StoredEvent; badReply?: string } | { error: string }

const DEFAULT_RETRY = 5 // a `delivery` without `retry`
const DEFAULT_BACKOFF_MS = 50
const MAX_DEAD_LETTER_BACKOFF_MS = 30_000

/** kncloudevents.SelectiveRetry: what is worth another try. */
export function isRetryable(status: number) {
  return status >= 500 || status === 404 || status === 408 || status === 409 || status === 429
}

/** The wait before retry `n` (1-based): backoffDelay × n (linear) or × 2^n (exponential). */
export function backoffMs(delivery: DeliverySpec | undefined, n: number) {
  const delay = delivery?.backoffDelay ?? DEFAULT_BACKOFF_MS
  return delivery?.backoffPolicy === 'linear' ? delay * n : delay * 2 ** n
}

/** One POST. Redirects are not followed: a 3xx is an answer (not retried, so done). */
export async function post(url: string, event: StoredEvent, { timeoutMs, signal }: { timeoutMs?: number; signal: AbortSignal }): Promise<Attempt> {
  const timeout = timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: binaryHeaders(event),
      body: event.body,
      redirect: 'manual',
      signal: timeout ? AbortSignal.any([signal, timeout]) : signal,
    })
    const body = Buffer.from(await res.arrayBuffer())
    const headers = Object.fromEntries(res.headers)
    // 202 and 204 are never replies (data-plane spec); only a 200 may carry one.
    if (res.status !== 200 || !carriesEvent(headers)) return { status: res.status }
    const reply = parseHttpEvent(headers, body)
    return reply.ok ? { status: 200, reply: reply.event } : { status: 200, badReply: reply.reason }
  } catch (err) {
    if (timeout?.aborted) return { error: `no answer within ${timeoutMs} ms` }
    const { message, cause } = err as { message?: string; cause?: { message?: string } }
    return { error: cause?.message ?? message ?? String(err) }
  }
}

type TriggerDeps = { plan: TriggerPlan; queues: EventQueues; target: () => Target; log: Logger }

/** Delivers the messages of one Trigger's queue to its subscriber. */
export function triggerDispatcher({ plan, queues, target, log }: TriggerDeps) {
  const { trigger, delivery, deadLetter } = plan
  // No delivery on the Trigger or its Broker: eventing-rabbitmq drops after the first failure.
  const retry = delivery ? (delivery.retry ?? DEFAULT_RETRY) : 0

  return async function dispatch(message: Received) {
    const { event, signal } = message
    const ids = { trigger: trigger.name, ...describeEvent(event), ...(message.redelivered ? { redelivered: true } : {}) }
    let attempt: Attempt
    let destination: string
    for (let n = 0; ; n++) {
      const { url, display } = target()
      destination = display
      attempt = url ? await post(url, event, { signal, ...(delivery?.timeout ? { timeoutMs: delivery.timeout } : {}) }) : { error: `${display} is not up` }
      if (signal.aborted) return // stopping: not acked, it stays queued
      if ('status' in attempt && !isRetryable(attempt.status)) break
      const outcome = 'status' in attempt ? { status: attempt.status } : { error: attempt.error }
      if (n >= retry) {
        const code = 'status' in attempt ? attempt.status : undefined
        return toDeadLetter(message, { ...ids, subscriber: display, attempts: n + 1, ...outcome }, destination, code)
      }
      const waitMs = backoffMs(delivery, n + 1)
      log.warn('event retried', { ...ids, subscriber: display, retry: n + 1, of: retry, waitMs, ...outcome })
      // Draining: the retry is not made here; given back, the event waits in its queue.
      if (!(await pause(waitMs, AbortSignal.any([signal, message.draining])))) return
    }

    const fields = { ...ids, subscriber: destination, status: attempt.status }
    if (attempt.reply) {
      try {
        await queues.publish(plan.exchange, attempt.reply)
        log.info('event replied', { ...fields, reply: describeEvent(attempt.reply) })
      } catch (err) {
        // eventing-rabbitmq dead-letters the original when its reply cannot be sent.
        return toDeadLetter(message, { ...fields, reason: 'the reply could not be stored', err }, destination, 200)
      }
    }
    if (attempt.badReply) log.warn('the subscriber answered 200 with an invalid CloudEvent; no reply sent', { ...fields, reason: attempt.badReply })
    if (attempt.status < 300) log.info('event delivered', fields)
    // Acked as a success, as the RabbitMQ broker does: nothing keeps it but this line.
    else log.warn('event dropped', { ...fields, reason: `the subscriber answered ${attempt.status}, which is not retried` })
    message.ack()
  }

  async function toDeadLetter(message: Received, fields: Record<string, unknown>, destination: string, code: number | undefined) {
    if (!deadLetter) {
      const why = delivery ? 'no deadLetterSink' : 'no delivery spec: not retried'
      log.warn('event dropped', { ...fields, reason: typeof fields.reason === 'string' ? `${fields.reason}; ${why}` : why })
      return message.ack()
    }
    const dead = withAttributes(message.event, { knativeerrordest: destination, knativeerrorcode: code?.toString() })
    // Ack only once the dead letter is stored: until then the original is kept.
    for (let n = 1; ; n++) {
      try {
        await queues.publish(deadLetter.exchange, dead)
        break
      } catch (err) {
        log.warn('could not store a dead letter; trying again', { ...fields, err })
        if (!(await pause(Math.min(100 * 2 ** n, 5_000), message.signal))) return
      }
    }
    log.warn('event dead-lettered', { ...fields, queue: deadLetter.queue, knativeerrorcode: code })
    message.ack()
  }
}

type DeadLetterDeps = { plan: DeadLetterPlan; target: () => Target; log: Logger }

/**
 * Delivers what waits in a dead-letter queue to its sink, retrying until the sink takes it: the
 * sink is where nothing may be lost. Only a status that is never retried (a 400) ends it
 * otherwise, and that is logged as an error.
 */
export function deadLetterDispatcher({ plan, target, log }: DeadLetterDeps) {
  return async function dispatch(message: Received) {
    const { event, signal } = message
    const ids = { deadLetterQueue: plan.queue, owner: plan.owner, ...describeEvent(event) }
    for (let n = 1; ; n++) {
      const { url, display } = target()
      const timeoutMs = plan.delivery.timeout
      const attempt = url ? await post(url, event, { signal, ...(timeoutMs ? { timeoutMs } : {}) }) : { error: `${display} is not up` }
      if (signal.aborted) return
      if ('status' in attempt && !isRetryable(attempt.status)) {
        if (attempt.status < 300) log.info('dead letter delivered', { ...ids, sink: display, status: attempt.status })
        else log.error('the dead-letter sink refused the event; it is gone', { ...ids, sink: display, status: attempt.status })
        return message.ack()
      }
      const waitMs = Math.min(backoffMs(plan.delivery, n), MAX_DEAD_LETTER_BACKOFF_MS)
      const outcome = 'status' in attempt ? { status: attempt.status } : { error: attempt.error }
      log.warn('dead letter not delivered; retrying', { ...ids, sink: display, retry: n, waitMs, ...outcome })
      if (!(await pause(waitMs, AbortSignal.any([signal, message.draining])))) return
    }
  }
}

/** Waits; false when `signal` aborted meanwhile. */
async function pause(ms: number, signal: AbortSignal) {
  try {
    await sleep(ms, undefined, { signal })
    return true
  } catch {
    return false
  }
}
