/**
 * @module
 * PingSource schedules. A PingSource's `spec.schedule` is a 5-field cron (minute hour
 * day-of-month month day-of-week), read the way the PingSource adapter's robfig/cron reads it:
 * `*`, numbers, ranges `a-b`, steps (`*`, `a-b` or `a` followed by `/n`) and comma lists of
 * those; day-of-week 0-7 (0 and 7 are Sunday); when both day fields are restricted, a day
 * matches either. Times are UTC.
 *
 * For tests and `npm start` (the `pingSchedules` override, never in a manifest) it also takes:
 * - a 6-field cron whose first field is the second (`0,30 * * * * *`: every 30 s);
 * - `@every <n><ms|s|m|h>` (`@every 250ms`): a fixed interval from when the schedule starts.
 * robfig's descriptors `@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly` work too.
 */

/** When a schedule fires next: strictly after `after`. */
export type Schedule = { next(after: Date): Date; text: string }

type Field = { name: string; min: number; max: number }
const SECOND: Field = { name: 'second', min: 0, max: 59 }
const MINUTE: Field = { name: 'minute', min: 0, max: 59 }
const HOUR: Field = { name: 'hour', min: 0, max: 23 }
const DAY: Field = { name: 'day of month', min: 1, max: 31 }
const MONTH: Field = { name: 'month', min: 1, max: 12 }
const WEEKDAY: Field = { name: 'day of week', min: 0, max: 7 }

const descriptors: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

/** A parsed cron: the allowed values of each field. */
export type Cron = {
  seconds: Set<number>
  minutes: Set<number>
  hours: Set<number>
  days: Set<number>
  months: Set<number>
  weekdays: Set<number>
  /** robfig: a day field is "any" only when written `*` (or `?`); a step such as `/2` after `*` restricts it. */
  anyDay: boolean
  anyWeekday: boolean
}

/** Parses a 5-field cron, or a 6-field one with seconds first. Throws with the field at fault. */
export function parseCron(text: string): Cron {
  const fields = text.trim().split(/\s+/)
  if (fields.length !== 5 && fields.length !== 6) {
    throw new Error(`cron "${text}": expected 5 fields (minute hour day month weekday), got ${fields.length}`)
  }
  const [second, minute, hour, day, month, weekday] = fields.length === 6 ? fields : ['0', ...fields]
  const parse = (expr: string | undefined, field: Field) => parseField(text, expr ?? '', field)
  const weekdays = parse(weekday, WEEKDAY)
  if (weekdays.delete(7)) weekdays.add(0)
  return {
    seconds: parse(second, SECOND),
    minutes: parse(minute, MINUTE),
    hours: parse(hour, HOUR),
    days: parse(day, DAY),
    months: parse(month, MONTH),
    weekdays,
    anyDay: day === '*' || day === '?',
    anyWeekday: weekday === '*' || weekday === '?',
  }
}

function parseField(text: string, expr: string, { name, min, max }: Field): Set<number> {
  const fail = (why: string): never => {
    throw new Error(`cron "${text}": ${name} "${expr}" ${why}`)
  }
  const int = (s: string) => (/^\d+$/.test(s) ? Number(s) : fail(`has "${s}", not a number`))
  const values = new Set<number>()
  for (const part of expr.split(',')) {
    const [range = '', stepText, extra] = part.split('/')
    if (extra !== undefined) fail('has more than one "/"')
    const step = stepText === undefined ? 1 : int(stepText)
    if (step < 1) fail('has a step of 0')
    let low: number
    let high: number
    if (range === '*' || range === '?') {
      low = min
      high = max
    } else {
      const [a = '', b] = range.split('-')
      low = int(a)
      // `5/15` means from 5 to the end, stepping 15 (robfig, Vixie cron)
      high = b !== undefined ? int(b) : stepText !== undefined ? max : low
    }
    if (low < min || high > max) fail(`is outside ${min}-${max}`)
    if (low > high) fail(`has a range that runs backwards`)
    for (let v = low; v <= high; v += step) values.add(v)
  }
  return values
}

/** The first time after `after` (whole seconds, UTC) that `cron` allows. */
export function nextCron(cron: Cron, after: Date): Date {
  let t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000)
  const limit = after.getUTCFullYear() + 8 // covers 29 February on a given weekday
  const dayMatches = (d: Date) => {
    const day = cron.days.has(d.getUTCDate())
    const weekday = cron.weekdays.has(d.getUTCDay())
    if (cron.anyDay || cron.anyWeekday) return day && weekday
    return day || weekday
  }
  const utc = (y: number, mo: number, d = 1, h = 0, mi = 0, s = 0) => new Date(Date.UTC(y, mo, d, h, mi, s))
  // Jump field by field instead of ticking second by second.
  while (t.getUTCFullYear() <= limit) {
    const [y, mo, d, h, mi] = [t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate(), t.getUTCHours(), t.getUTCMinutes()]
    if (!cron.months.has(mo + 1)) t = utc(y, mo + 1)
    else if (!dayMatches(t)) t = utc(y, mo, d + 1)
    else if (!cron.hours.has(h)) t = utc(y, mo, d, h + 1)
    else if (!cron.minutes.has(mi)) t = utc(y, mo, d, h, mi + 1)
    else if (!cron.seconds.has(t.getUTCSeconds())) t = new Date(t.getTime() + 1000)
    else return t
  }
  throw new Error('this cron never fires')
}

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Parses any schedule this module accepts (see the module comment). */
export function parseSchedule(text: string): Schedule {
  const trimmed = text.trim()
  const every = /^@every\s+(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(trimmed)
  if (every) {
    const ms = Number(every[1]) * (units[every[2] ?? 's'] ?? 1000)
    if (!(ms >= 1)) throw new Error(`schedule "${text}": the interval must be at least 1 ms`)
    return { text, next: (after) => new Date(after.getTime() + ms) }
  }
  if (trimmed.startsWith('@') && !descriptors[trimmed]) {
    throw new Error(`schedule "${text}": unknown descriptor (use @every <n>ms|s|m|h, @hourly, @daily, …)`)
  }
  const cron = parseCron(descriptors[trimmed] ?? trimmed)
  // A cron fires on wall-clock boundaries, whatever the time it was started.
  return { text, next: (after) => nextCron(cron, after) }
}

/**
 * Calls `fire` each time `schedule` comes due, until the returned function is called.
 * A slow `fire` does not delay the next one (the PingSource adapter does not wait either).
 */
export function runSchedule(schedule: Schedule, fire: () => void, now: () => number = Date.now): () => void {
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const arm = (from: number) => {
    const due = schedule.next(new Date(from)).getTime()
    // setTimeout holds at most ~24.8 days; wake up and re-arm for a longer wait.
    const wait = Math.min(Math.max(due - now(), 0), 2 ** 31 - 1)
    timer = setTimeout(() => {
      if (stopped) return
      if (now() < due) return arm(from) // woke early (a capped wait): sleep again
      fire()
      // From now, not from `due`: after a suspended laptop, fire once rather than catch up.
      arm(now())
    }, wait)
    timer.unref()
  }
  arm(now())
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}
