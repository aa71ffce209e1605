/**
 * @module
 * PingSource schedules. croner reads the cron the way the PingSource adapter's robfig/cron does
 * (5 fields, names such as `MON`, 0 or 7 for Sunday, a day matching either day field when both are
 * restricted, `@hourly` and the other descriptors) and runs it, in the PingSource's `timezone`.
 * croner also takes `L`, `W` and `#`, which the adapter refuses: keep them out of `eventing/`.
 *
 * For tests and `npm start` (the `pingSchedules` override, never in a manifest) it also takes:
 * - a 6-field cron whose first field is the second (`0,30 * * * * *`: every 30 s);
 * - `@every <n><ms|s|m|h>` (`@every 250ms`), which croner lacks: a fixed interval from the start.
 */
import { Cron, type CronOptions } from 'croner'

/** A checked schedule. `start` calls `fire` on each tick until the function it returns is called. */
export type Schedule = { text: string; start(fire: () => void): () => void }

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

const cronOptions = (timezone: string): CronOptions => ({
  timezone,
  // No 7th (year) field: robfig has none.
  mode: '5-or-6-parts',
  // robfig reads `5/20` as 5, 25, 45; croner refuses it unless told.
  sloppyRanges: true,
  // A pending tick must not keep a stopping process alive.
  unref: true,
})

/**
 * Checks `text` (a form the module comment lists) in `timezone`, an IANA name. Throws an Error
 * naming the schedule when croner refuses it, it never fires (`0 0 30 2 *`) or the timezone is unknown.
 * Ticks do not wait for a slow `fire` (neither does the PingSource adapter), and after a suspended
 * laptop the schedule fires once rather than catching up.
 */
export function parseSchedule(text: string, timezone = 'UTC'): Schedule {
  const trimmed = text.trim()
  const fail = (why: string): never => {
    throw new Error(`schedule "${text}": ${why}`)
  }
  if (/^@every\b/.test(trimmed)) {
    const every = /^@every\s+(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(trimmed) ?? fail('use @every <n>ms|s|m|h')
    const ms = Number(every[1]) * (units[every[2] ?? 's'] ?? 1000)
    if (!(ms >= 1)) fail('the interval must be at least 1 ms')
    return {
      text,
      start(fire) {
        const timer = setInterval(fire, ms)
        timer.unref()
        return () => clearInterval(timer)
      },
    }
  }
  let never: boolean
  try {
    // The first run is computed here so that a bad timezone fails now, not at the first tick.
    never = new Cron(trimmed, cronOptions(timezone)).nextRun() === null
  } catch (err) {
    return fail((err as Error).message)
  }
  if (never) fail('it never fires')
  return {
    text,
    start(fire) {
      const job = new Cron(trimmed, cronOptions(timezone), () => fire())
      return () => job.stop()
    },
  }
}
