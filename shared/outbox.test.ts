import { randomUUID } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { refuseOutboxMarks } from '../test/outbox-faults.ts'
import { testPool } from '../test/support.ts'
import type { OutgoingEvent, Publisher } from './events.ts'
import { createLogger, type LogFields } from './log.ts'
import { createMetrics, type Metrics } from './metrics.ts'
import { createOutbox, type OutboxEvent } from './outbox.ts'

const pool = testPool()

// Each test has an outbox table of its own (like the order function's, in its schema), so that
// no other test's sweep takes its rows; dropped with what the tests hung on them.
const cleanups: string[] = []
afterAll(async () => {
  for (const statement of cleanups.reverse()) await pool.query(statement)
})

type Options = { publish?: Publisher; batchSize?: number; retryAfterMs?: number; maxRetryAfterMs?: number }

/**
 * An outbox on a fresh table whose broker is `publish` (default: one that takes everything), with
 * the events the broker took in `accepted` and the log lines in `lines`.
 */
async function setup({ publish, ...options }: Options = {}) {
  const table = `orders.outbox_t${randomUUID().replaceAll('-', '').slice(0, 10)}`
  await pool.query(`CREATE TABLE ${table} (LIKE orders.outbox INCLUDING ALL)`)
  cleanups.push(`DROP TABLE IF EXISTS ${table}`)
  const accepted: OutgoingEvent[] = []
  const broker: Publisher = publish ?? (async (e) => void accepted.push(e))
  const lines: LogFields[] = []
  const log = createLogger({ name: 'test', level: 'debug', write: (line) => lines.push(JSON.parse(line)) })
  const metrics = createMetrics({ defaults: false })
  // Retries far off unless a test wants them: the test decides when a sweep happens.
  const outbox = createOutbox({ pool, table, publish: broker, log, metrics, retryAfterMs: 60_000, ...options })
  const unsent = async () => (await pool.query<{ id: string }>(`SELECT id FROM ${table} WHERE sent_at IS NULL ORDER BY created_at`)).rows.map((r) => r.id)
  /** `n` events in the outbox, as `add` writes them, oldest first. */
  const addRows = async (n: number) => {
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO ${table} (id, type, source, data, created_at)
       SELECT gen_random_uuid(), 'test.event', '/test', jsonb_build_object('n', g), now() + g * interval '1 microsecond'
         FROM generate_series(1, $1::int) g
       RETURNING id`,
      [n],
    )
    return rows.map((r) => r.id)
  }
  /** Makes PostgreSQL refuse to mark a row sent, the first `times` times; resolves to `repair`. */
  const breakMarking = async (times?: number) => {
    const { repair, cleanup } = await refuseOutboxMarks(pool, table, times)
    cleanups.push(...cleanup)
    return repair
  }
  const logged = (msg: string) => lines.filter((l) => l.msg === msg)
  return { table, outbox, accepted, lines, logged, metrics, unsent, addRows, breakMarking }
}

const event = (): OutboxEvent => ({ id: randomUUID(), type: 'test.event', source: '/test', data: { n: 0 } })

/** Writes `e` the way a caller does: in its own transaction, committed. */
async function commit(outbox: ReturnType<typeof createOutbox>, e: OutboxEvent) {
  const client = await pool.connect()
  try {
    await outbox.add(client, e)
  } finally {
    client.release()
  }
}

async function counter(metrics: Metrics, name: string) {
  return (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0
}

const idsOf = (events: OutgoingEvent[]) => events.map((e) => e.id)
const waitFor = <T>(check: () => Promise<T>) => expect.poll(check, { timeout: 15_000, interval: 20 })

describe('send, when the broker took the event but the row cannot be marked sent', () => {
  it('answers true without throwing, counts and logs it, and keeps the row for a later sweep, which sends the same id again', async () => {
    const { outbox, accepted, logged, metrics, unsent, breakMarking } = await setup()
    const repair = await breakMarking()
    const e = event()
    await commit(outbox, e)
    expect(await outbox.send(e)).toBe(true)
    expect(idsOf(accepted)).toEqual([e.id])
    expect(await unsent()).toEqual([e.id])
    expect(await counter(metrics, 'outbox_mark_sent_failures_total')).toBe(1)
    expect(logged('event published but not marked sent; it will be sent again')).toEqual([expect.objectContaining({ level: 'warn', id: e.id })])

    await repair()
    expect(await outbox.flush()).toEqual({ sent: 1, failed: 0, pending: 0 })
    expect(idsOf(accepted)).toEqual([e.id, e.id])
    expect(await outbox.flush()).toEqual({ sent: 0, failed: 0, pending: 0 })
    outbox.close()
  })

  it('sends it again by itself, waiting longer each time, until the row is marked', async () => {
    const { outbox, accepted, logged, unsent, breakMarking } = await setup({ retryAfterMs: 10, maxRetryAfterMs: 40 })
    await breakMarking(4)
    const e = event()
    await commit(outbox, e)
    expect(await outbox.send(e)).toBe(true)
    // No call from here on: the outbox's own sweeps send it until the fifth mark goes through.
    await waitFor(unsent).toEqual([])
    expect(idsOf(accepted)).toEqual([e.id, e.id, e.id, e.id, e.id])
    expect(logged('outbox sweeps again later').map((l) => l.waitMs)).toEqual([10, 20, 40, 40])
    outbox.close()
  })

  it('ends a sweep at the first row it cannot mark, rather than sending the same rows round again', async () => {
    const { outbox, accepted, addRows, unsent, breakMarking } = await setup({ batchSize: 10 })
    const repair = await breakMarking()
    const ids = await addRows(30)
    expect(await outbox.flush()).toEqual({ sent: 1, failed: 0, pending: 30 })
    expect(idsOf(accepted)).toEqual([ids[0]])
    // Nothing stays claimed: the next sweep takes them all, the first one again.
    await repair()
    expect(await outbox.flush()).toEqual({ sent: 30, failed: 0, pending: 0 })
    expect(idsOf(accepted)).toEqual([ids[0], ...ids])
    expect(await unsent()).toEqual([])
    outbox.close()
  })
})

describe('flush', () => {
  it('drains 250 rows in batches of 100 in one call', async () => {
    const { outbox, accepted, addRows, unsent } = await setup({ batchSize: 100 })
    const ids = await addRows(250)
    expect(await outbox.flush()).toEqual({ sent: 250, failed: 0, pending: 0 })
    expect(idsOf(accepted)).toEqual(ids)
    expect(await unsent()).toEqual([])
    outbox.close()
  })

  it('called while a sweep runs, sweeps again after it: what was written meanwhile goes out', async () => {
    let release = () => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    const asked: string[] = []
    const accepted: OutgoingEvent[] = []
    const { outbox } = await setup({
      publish: async (e) => {
        asked.push(e.id ?? '')
        if (accepted.length === 0) await held
        accepted.push(e)
      },
    })
    const first = event()
    await commit(outbox, first)
    const running = outbox.flush()
    // The running sweep has taken its batch: the broker holds its first event.
    await waitFor(async () => asked).toEqual([first.id])
    const later = event()
    await commit(outbox, later)
    const called = [outbox.flush(), outbox.flush()]
    release()
    expect(await running).toEqual({ sent: 1, failed: 0, pending: 1 })
    expect(await Promise.all(called)).toEqual([
      { sent: 1, failed: 0, pending: 0 },
      { sent: 1, failed: 0, pending: 0 },
    ])
    expect(idsOf(accepted)).toEqual([first.id, later.id])
    outbox.close()
  })

  it('is followed at once by another sweep when its time bound cut it short, until the outbox is empty', async () => {
    const { outbox, accepted, addRows, unsent } = await setup({ batchSize: 100 })
    const ids = await addRows(250)
    // No time at all: one batch, then the bound.
    expect(await outbox.flush({ maxMs: 0 })).toEqual({ sent: 100, failed: 0, pending: 150 })
    await waitFor(unsent).toEqual([])
    expect(idsOf(accepted)).toEqual(ids)
    outbox.close()
  })

  it('sweeps again by itself, backing off, while the broker refuses, and drains every row in one sweep once it takes them', async () => {
    let refusals = 3
    const accepted: OutgoingEvent[] = []
    const { outbox, addRows, unsent, logged } = await setup({
      batchSize: 100,
      retryAfterMs: 20,
      publish: async (e) => {
        if (refusals > 0) {
          refusals--
          throw new Error('the broker answered 503')
        }
        accepted.push(e)
      },
    })
    const ids = await addRows(250)
    expect(await outbox.flush()).toEqual({ sent: 0, failed: 1, pending: 250 })
    // No traffic and no flush from here on. The sweep logs once it has counted what is left.
    await waitFor(async () => logged('outbox flushed').at(-1)?.pending).toBe(0)
    expect(await unsent()).toEqual([])
    expect(idsOf(accepted)).toEqual(ids)
    expect(logged('outbox sweeps again later').map((l) => l.waitMs)).toEqual([20, 40, 80])
    expect(logged('outbox flushed').map(({ sent, failed, pending }) => ({ sent, failed, pending }))).toEqual([
      { sent: 0, failed: 1, pending: 250 },
      { sent: 0, failed: 1, pending: 250 },
      { sent: 0, failed: 1, pending: 250 },
      { sent: 250, failed: 0, pending: 0 },
    ])
    outbox.close()
  })
})

describe('send, after failures', () => {
  it('sweeps everything earlier sends left once one goes through', async () => {
    let down = true
    const accepted: OutgoingEvent[] = []
    const { outbox, unsent } = await setup({
      batchSize: 10,
      publish: async (e) => {
        if (down) throw new Error('connect ECONNREFUSED')
        accepted.push(e)
      },
    })
    const left = Array.from({ length: 35 }, event)
    for (const e of left) {
      await commit(outbox, e)
      expect(await outbox.send(e)).toBe(false)
    }
    expect(await unsent()).toHaveLength(35)
    down = false
    const next = event()
    await commit(outbox, next)
    expect(await outbox.send(next)).toBe(true)
    await waitFor(unsent).toEqual([])
    expect(idsOf(accepted)).toEqual([next.id, ...left.map((e) => e.id)])
    outbox.close()
  })

  it('stops sweeping by itself on close()', async () => {
    const { outbox, logged } = await setup({ retryAfterMs: 10, publish: async () => Promise.reject(new Error('down')) })
    const e = event()
    await commit(outbox, e)
    expect(await outbox.send(e)).toBe(false)
    await waitFor(async () => logged('outbox flushed').length).toBeGreaterThanOrEqual(2)
    outbox.close()
    // The sweep that may be under way ends; after it, nothing more is scheduled.
    await outbox.flush().catch(() => {})
    const scheduled = logged('outbox sweeps again later').length
    await outbox.flush()
    expect(logged('outbox sweeps again later')).toHaveLength(scheduled)
  })
})
