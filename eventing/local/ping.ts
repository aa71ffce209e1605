/**
 * @module
 * PingSources: on each tick of its schedule, one `dev.knative.sources.ping` event to its sink, as
 * the PingSource adapter sends it (knative/eventing pkg/apis/sources/v1/ping_lifecycle.go): source
 * `/apis/v1/namespaces/<ns>/pingsources/<name>`, data and content type from the spec. One attempt
 * per tick, like the adapter: the next tick is the retry. Schedules are read in the PingSource's
 * `timezone` (UTC without one), an override's too.
 */
import { randomUUID } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import type { Logger } from '../../shared/log.ts'
import type { StoredEvent } from './cloudevent.ts'
import { parseSchedule } from './cron.ts'
import { post, type Target } from './dispatch.ts'
import type { PingSourceManifest } from './manifests.ts'

type PingDeps = {
  namespace: string
  pingSources: PingSourceManifest[]
  /** PingSource name → a schedule that replaces its `spec.schedule` (cron.ts lists the forms). */
  overrides?: Record<string, string>
  target: (source: PingSourceManifest) => Target
  log: Logger
}

/** Starts every PingSource; the returned function stops them and aborts sends in flight. */
export function startPingSources({ namespace, pingSources, overrides = {}, target, log }: PingDeps): () => void {
  const stopped = new AbortController()
  setMaxListeners(0, stopped.signal)
  const timers = pingSources.map((ping) => {
    const schedule = parseSchedule(overrides[ping.name] ?? ping.schedule, ping.timezone)
    const fire = async () => {
      const event: StoredEvent = {
        headers: {
          specversion: '1.0',
          id: randomUUID(),
          source: `/apis/v1/namespaces/${namespace}/pingsources/${ping.name}`,
          type: 'dev.knative.sources.ping',
          time: new Date().toISOString(),
          ...(ping.contentType ? { 'content-type': ping.contentType } : {}),
        },
        body: ping.data ?? Buffer.alloc(0),
      }
      const { url, display } = target(ping)
      const attempt = url ? await post(url, event, { signal: stopped.signal, timeoutMs: 30_000 }) : { error: `${display} is not up` }
      if (stopped.signal.aborted) return
      if ('status' in attempt && attempt.status < 300) log.debug('ping sent', { pingSource: ping.name, sink: display, status: attempt.status })
      else {
        const outcome = 'status' in attempt ? { status: attempt.status } : { error: attempt.error }
        log.warn('ping not delivered; the next tick tries again', { pingSource: ping.name, sink: display, ...outcome })
      }
    }
    log.info('PingSource scheduled', { pingSource: ping.name, schedule: schedule.text, sink: target(ping).display })
    return schedule.start(() => void fire())
  })
  return () => {
    stopped.abort()
    for (const stop of timers) stop()
  }
}
