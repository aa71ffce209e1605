/**
 * @module
 * What a benchmark reports: rows of (metric, subject, baseline, ratio, goal, met?), the goals
 * they are checked against, and the table printed at the end. Pure.
 */
import { ratio as divide } from './stats.ts'

export type Unit = 'req/s' | 'ms' | 'µs' | 'KB' | 'MB' | 'orders/s' | 'events/s' | 'logins/s' | 'x'

type Values = { subject?: number; baseline?: number; ratio?: number }

export type Goal = { text: string; met: (v: Values) => boolean }

/** The goals a row can be held to (the README's "Performance" tables show them), as checks on its values. */
export const goals = {
  /** subject ÷ baseline ≥ x (throughput). */
  ratioAtLeast: (x: number): Goal => ({ text: `≥ ${x}×`, met: ({ ratio }) => ratio !== undefined && ratio >= x }),
  /** subject ÷ baseline ≤ x (latency). */
  ratioAtMost: (x: number): Goal => ({ text: `≤ ${x}×`, met: ({ ratio }) => ratio !== undefined && ratio <= x }),
  /** The subject alone at or over a floor. */
  atLeast: (floor: number, unit: Unit): Goal => ({ text: `≥ ${floor} ${unit}`, met: ({ subject }) => subject !== undefined && subject >= floor }),
  /** The subject alone under a limit. */
  below: (limit: number, unit: Unit): Goal => ({ text: `< ${limit} ${unit}`, met: ({ subject }) => subject !== undefined && subject < limit }),
  /** The subject at most `delta` above the baseline (cold start over `node -e 0`). */
  within: (delta: number, unit: Unit): Goal => ({
    text: `≤ base+${delta} ${unit}`,
    met: ({ subject, baseline }) => subject !== undefined && baseline !== undefined && subject <= baseline + delta,
  }),
}

export type Row = {
  benchmark: string
  metric: string
  unit: Unit
  subject?: number
  baseline?: number
  ratio?: number
  goal?: string
  met?: boolean
  /** Why a value is missing, or what to keep in mind reading it. */
  note?: string
}

export function row(r: { benchmark: string; metric: string; unit: Unit; subject?: number; baseline?: number; goal?: Goal; note?: string }): Row {
  const ratio = divide(r.subject, r.baseline)
  const values = { subject: r.subject, baseline: r.baseline, ratio }
  return {
    benchmark: r.benchmark,
    metric: r.metric,
    unit: r.unit,
    ...(r.subject !== undefined ? { subject: r.subject } : {}),
    ...(r.baseline !== undefined ? { baseline: r.baseline } : {}),
    ...(ratio !== undefined ? { ratio } : {}),
    ...(r.goal ? { goal: r.goal.text, met: r.goal.met(values) } : {}),
    ...(r.note ? { note: r.note } : {}),
  }
}

/** A number as people read it in its unit: 12,345 req/s, 3.42 ms, 180.3 KB. */
export function formatValue(n: number | undefined, unit: Unit): string {
  if (n === undefined || !Number.isFinite(n)) return '–'
  const digits = (d: number) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
  switch (unit) {
    case 'ms':
      return `${digits(n < 10 ? 2 : n < 100 ? 1 : 0)} ms`
    case 'KB':
    case 'MB':
      return `${digits(1)} ${unit}`
    case 'x':
      return `${digits(2)}×`
    default:
      return `${digits(n < 100 ? 1 : 0)} ${unit}`
  }
}

/** The table: one line per row, columns padded; notes as numbered footnotes under it. */
export function formatTable(rows: readonly Row[]): string {
  const notes: string[] = []
  const cells = rows.map((r) => {
    let metric = r.metric
    if (r.note) {
      notes.push(r.note)
      metric += ` [${notes.length}]`
    }
    return [
      r.benchmark,
      metric,
      formatValue(r.subject, r.unit),
      formatValue(r.baseline, r.unit),
      r.ratio === undefined ? '–' : `${r.ratio.toFixed(2)}×`,
      r.goal ?? '',
      r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    ]
  })
  const header = ['benchmark', 'metric', 'subject', 'baseline', 'ratio', 'goal', 'met?']
  const right = new Set([2, 3, 4])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)))
  const line = (c: string[]) =>
    c
      .map((s, i) => (right.has(i) ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)]
  if (notes.length) out.push('', ...notes.map((n, i) => `[${i + 1}] ${n}`))
  return out.join('\n')
}
