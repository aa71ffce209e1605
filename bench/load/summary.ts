/**
 * @module
 * The end of a run: one JSON-able summary (written with --json) and the text shown on stdout.
 */
import type { Percentiles } from './histogram.ts'
import type { InvariantResult } from './invariants.ts'
import type { RouteStats } from './recorder.ts'

export type Summary = {
  target: string
  started_at: string
  users: number
  duration_s: number
  /** The shoppers' requests (sign-up included), from the first to the last answer. */
  load: {
    elapsed_s: number
    requests: number
    errors: number
    requests_per_s: number
    latency_ms: Percentiles
    routes: RouteStats[]
    error_examples: string[]
  }
  /** Requests made around the run: reading the catalog before, waiting for orders and reading back after. */
  checks: { requests: number; errors: number; routes: RouteStats[]; error_examples: string[] }
  orders: { placed: number; by_status: Record<string, number>; settled_s: number; settle_limit_s: number }
  invariants: InvariantResult[]
  passed: boolean
}

const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1))
const s = (n: number) => `${Math.round(n * 10) / 10}s`

export function formatSummary(sm: Summary): string {
  const out: string[] = []
  const { load } = sm
  out.push(`npm run load: ${sm.users} shoppers for ${s(sm.duration_s)} against ${sm.target}`)
  out.push(`  ${load.requests} requests in ${s(load.elapsed_s)}: ${load.requests_per_s.toFixed(1)} req/s, ${load.errors} errors`)
  out.push('')

  const rows = [...load.routes.map((r) => ({ ...r })), { route: 'all', requests: load.requests, errors: load.errors, statuses: {}, latency_ms: load.latency_ms }]
  const width = Math.max(5, ...rows.map((r) => r.route.length))
  const head = `${'route'.padEnd(width)}  ${'requests'.padStart(8)}  ${'errors'.padStart(6)}  ${'p50 ms'.padStart(7)}  ${'p90 ms'.padStart(7)}  ${'p99 ms'.padStart(7)}  ${'max ms'.padStart(7)}  statuses`
  out.push(head)
  for (const r of rows) {
    const statuses = Object.entries(r.statuses).map(([code, n]) => `${code}×${n}`).join(' ')
    const l = r.latency_ms
    out.push(
      `${r.route.padEnd(width)}  ${String(r.requests).padStart(8)}  ${String(r.errors).padStart(6)}  ${ms(l.p50).padStart(7)}  ${ms(l.p90).padStart(7)}  ${ms(l.p99).padStart(7)}  ${ms(l.max).padStart(7)}  ${statuses}`,
    )
  }
  if (load.error_examples.length) out.push('', 'errors, for example:', ...load.error_examples.map((e) => `  ${e}`))
  out.push('')

  const byStatus = Object.entries(sm.orders.by_status).map(([status, n]) => `${status} ${n}`).join(', ')
  out.push(`orders: ${sm.orders.placed} placed${byStatus ? `: ${byStatus}` : ''} (waited ${s(sm.orders.settled_s)} of at most ${s(sm.orders.settle_limit_s)} after the run)`)
  out.push(`around the run: ${sm.checks.requests} requests to read the catalog, follow orders and read them back, ${sm.checks.errors} errors`)
  if (sm.checks.error_examples.length) out.push(...sm.checks.error_examples.map((e) => `  ${e}`))
  out.push('')

  out.push('invariants:')
  const nameWidth = Math.max(...sm.invariants.map((i) => i.name.length))
  for (const i of sm.invariants) {
    out.push(`  ${i.pass ? 'PASS' : 'FAIL'}  ${i.name.padEnd(nameWidth)}  ${String(i.count).padStart(6)}  ${i.detail}`)
    if (!i.pass) for (const e of i.examples) out.push(`        ${e}`)
  }
  const held = sm.invariants.filter((i) => i.pass).length
  out.push('', `${sm.passed ? 'PASS' : 'FAIL'}: ${held} of ${sm.invariants.length} invariants hold`)
  return out.join('\n') + '\n'
}
