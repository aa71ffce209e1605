/**
 * Benchmark 3, login and tokens.
 * - Logins on the auth bundle at BCRYPT_COST=10 (its default and production's floor), with one
 *   bcrypt thread (BCRYPT_THREADS default): the latency of one login alone (1 connection), and
 *   logins per second when 10 connections saturate it, while a probe asks `/healthz` 50 times a
 *   second: its p99 shows whether hashing stays off the event loop. The same probe on the idle
 *   function is the baseline.
 * - An authenticated read: `GET /api/cart` on the cart bundle with Bearer tokens (verified once per
 *   token, then cached) against bench/apps/cart-open.ts, the same route, SQL and middleware stack
 *   with no authentication at all (the user named by X-User-ID). The ratio is the whole price of
 *   authentication, which is the fairest comparison: everything else is the same code.
 */
import bcrypt from 'bcryptjs'
import { inTurns, medianOf } from '../compare.ts'
import { functionEnv, startBundle, startNode, type BenchmarkResult, type Context } from '../context.ts'
import { failures, runLoad, type LoadResult } from '../http-load.ts'
import { goals, row, type Row } from '../report.ts'
import { ensureLoginUsers, pick } from '../seed.ts'
import { show } from './overhead.ts'

const B = '3 login'
const COST = 10
const SATURATING = 10
const PROBE_RATE = 50
const CART_CONNECTIONS = 50
const USERS = 500

export async function login(ctx: Context): Promise<BenchmarkResult> {
  const { options, say } = ctx
  const rows: Row[] = []
  const notes: string[] = []

  // Logins. Failures would lock accounts (10 a minute): every login here succeeds.
  const password = 'correct horse battery'
  const emails = Array.from({ length: 50 }, (_, i) => `bench-login-${i}@example.test`)
  await ensureLoginUsers(ctx.db.pool, emails, await bcrypt.hash(password, COST))
  const auth = await startBundle(ctx, 'auth', { BCRYPT_COST: String(COST), JWT_PRIVATE_KEY: ctx.keys.privateKey })
  const logins = (connections: number) =>
    runLoad({
      url: auth.url,
      connections,
      durationS: options.durationS,
      warmupS: options.warmupS,
      serverPid: auth.pid,
      request: { method: 'POST', path: '/api/auth/login', headers: { 'Content-Type': 'application/json' } },
      next: () => ({ body: JSON.stringify({ email: pick(emails), password }) }),
    })
  const probe = () => runLoad({ url: auth.url, connections: 1, rate: PROBE_RATE, durationS: options.durationS, request: { path: '/healthz' } })
  say(`  auth at BCRYPT_COST=${COST}, 1 bcrypt thread: one login at a time; ${SATURATING} connections of logins with a /healthz probe at ${PROBE_RATE}/s; the probe alone`)
  type Saturated = { logins: LoadResult; probe: LoadResult }
  const runs = await inTurns<LoadResult | Saturated>(
    {
      'login, 1 connection': () => logins(1),
      [`logins x${SATURATING} + /healthz probe`]: async () => {
        const [l, p] = await Promise.all([logins(SATURATING), (async () => {
          // The probe starts once the logins' warm-up is over, and ends with them.
          await new Promise((r) => setTimeout(r, options.warmupS * 1000))
          return probe()
        })()])
        return { logins: l, probe: p }
      },
      '/healthz probe, idle': probe,
    },
    options.rounds,
    say,
    (r) => ('logins' in r ? `logins ${show(r.logins)} | healthz p99 ${r.probe.p99?.toFixed(2)} ms` : show(r)),
  )
  await auth.stop()
  const single = runs['login, 1 connection'] as LoadResult[]
  const saturated = runs[`logins x${SATURATING} + /healthz probe`] as Saturated[]
  const idle = runs['/healthz probe, idle'] as LoadResult[]
  rows.push(
    row({ benchmark: B, metric: `login p50, one at a time (cost ${COST})`, unit: 'ms', subject: medianOf(single, (r) => r.p50), goal: goals.below(150, 'ms') }),
    row({ benchmark: B, metric: `logins/s, ${SATURATING} connections`, unit: 'logins/s', subject: medianOf(saturated, (r) => r.logins.rps) }),
    row({ benchmark: B, metric: `login p50, ${SATURATING} connections (queued)`, unit: 'ms', subject: medianOf(saturated, (r) => r.logins.p50) }),
    row({
      benchmark: B,
      metric: '/healthz p99 under logins / idle',
      unit: 'ms',
      subject: medianOf(saturated, (r) => r.probe.p99),
      baseline: medianOf(idle, (r) => r.p99),
      goal: goals.below(20, 'ms'),
    }),
  )
  notes.push(
    `3: logins on dist/auth/index.mjs at BCRYPT_COST=${COST}, BCRYPT_THREADS=1 (defaults), 50 accounts, every login right (a wrong one counts towards the lockout). ` +
      `"One at a time" is a single connection: the latency of a login itself (goal < 150 ms). With ${SATURATING} connections logins queue for the one bcrypt thread, so their p50 is mostly waiting; ` +
      `meanwhile a probe GETs /healthz ${PROBE_RATE} times a second on its own connection (goal p99 < 20 ms); the baseline column is the same probe on the idle function.`,
  )

  // Authenticated read.
  const users = await ctx.keys.users(USERS)
  const cart = await startBundle(ctx, 'cart', { PRODUCT_URL: 'http://127.0.0.1:9' })
  const open = await startNode(ctx, 'cart-open', 'dist/bench/apps/cart-open.mjs', functionEnv(ctx))
  const read = (server: typeof cart, headers: (u: (typeof users)[number]) => Record<string, string>) => () =>
    runLoad({
      url: server.url,
      connections: CART_CONNECTIONS,
      durationS: options.durationS,
      warmupS: options.warmupS,
      serverPid: server.pid,
      request: { path: '/api/cart' },
      next: () => ({ headers: headers(pick(users)) }),
    })
  say(`  GET /api/cart for ${USERS} users, ${CART_CONNECTIONS} connections: Bearer token vs no authentication`)
  const reads = await inTurns(
    {
      'cart bundle, Bearer token': read(cart, (u) => ({ Authorization: `Bearer ${u.token}` })),
      'same route, no auth (X-User-ID)': read(open, (u) => ({ 'X-User-ID': u.id })),
    },
    options.rounds,
    say,
    show,
  )
  await cart.stop()
  await open.stop()
  const signed = reads['cart bundle, Bearer token']
  const unsigned = reads['same route, no auth (X-User-ID)']
  rows.push(
    row({ benchmark: B, metric: 'GET /cart req/s: token / no auth', unit: 'req/s', subject: medianOf(signed, (r) => r.rps), baseline: medianOf(unsigned, (r) => r.rps), goal: goals.ratioAtLeast(0.8) }),
    row({ benchmark: B, metric: 'GET /cart p99: token / no auth', unit: 'ms', subject: medianOf(signed, (r) => r.p99), baseline: medianOf(unsigned, (r) => r.p99) }),
    row({ benchmark: B, metric: 'GET /cart server CPU/req: token / no auth', unit: 'µs', subject: medianOf(signed, (r) => r.cpuUs), baseline: medianOf(unsigned, (r) => r.cpuUs) }),
  )
  notes.push(
    `3: authenticated read = dist/cart/index.mjs with a Bearer token of one of ${USERS} users (each token verified once, then served from the verifier's cache) vs bench/apps/cart-open.ts: ` +
      'the same GET /api/cart SQL and statement names behind the same createApp stack and pool, built the same way, with no authentication (user from X-User-ID). ' +
      'Everything but authentication is the same code, so the ratio is its whole price (bearer parsing, cache lookup, the first verification of each token).',
  )
  for (const [what, rs] of [...Object.entries(runs), ...Object.entries(reads)]) {
    const bad = rs.flatMap((r) => ('logins' in r ? [r.logins, r.probe] : [r])).map(failures).filter(Boolean)
    if (bad.length) notes.push(`3: ${what} had failed requests: ${bad.join('; ')}`)
  }
  return { rows, notes, raw: { logins: runs, reads } }
}
