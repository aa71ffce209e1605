/**
 * The runner's kubelet part, on stand-in processes: when a crashed function is started again,
 * how long it waits, what it says and counts, and that stopping ends it all. The real thing, a
 * function bundle killed under load, is in test/faults.test.ts.
 */
import { describe, expect, it } from 'vitest'
import type { Child, Exit } from './child.ts'
import { stopOrder, superviseFunction, type FunctionProcess, type RestartPolicy } from './processes.ts'

const policy: RestartPolicy = { firstDelayMs: 1_000, maxDelayMs: 8_000, resetAfterMs: 60_000 }

/** A process stand-in: `exit()` ends it as a crash would, `stop()` as SIGTERM would. */
type Fake = FunctionProcess & { exit(e: Exit): void; stopped: boolean }
let pids = 100
function fakeProcess(name = 'payment'): Fake {
  let end!: (e: Exit) => void
  const exited = new Promise<Exit>((resolve) => (end = resolve))
  const fake = {
    name,
    url: 'http://127.0.0.1:9999',
    child: { pid: ++pids, exited } as unknown as Child,
    stopped: false,
    exit: (e: Exit) => end(e),
    stop: async () => {
      fake.stopped = true
      end({ code: 0, signal: null })
    },
  }
  return fake
}

/** A supervisor on fakes whose waits are recorded and pass at once, with a clock the test moves. */
function harness(o: { failStarts?: number } = {}) {
  const lines: string[] = []
  const waits: number[] = []
  const changes: (number | undefined)[] = []
  const started: Fake[] = []
  const signals: AbortSignal[] = []
  let clock = 0
  let failures = o.failStarts ?? 0
  let nextStart: (() => void) | undefined
  const first = fakeProcess()
  const supervisor = superviseFunction({
    first,
    policy,
    say: (line) => lines.push(line),
    now: () => clock,
    sleep: async (ms, signal) => {
      waits.push(ms)
      signal.throwIfAborted()
    },
    start: async (signal) => {
      signals.push(signal)
      if (failures > 0) {
        failures -= 1
        throw new Error('payment exited with code 1 before it was ready:\nError: boom')
      }
      if (nextStart) await new Promise<void>((resolve) => (nextStart = resolve))
      const p = fakeProcess()
      started.push(p)
      return p
    },
    onChange: (p) => changes.push(p?.child.pid),
  })
  /** Resolves once the supervisor has started `n` processes after the first. */
  const restarted = async (n: number) => {
    for (let i = 0; i < 1_000 && started.length < n; i++) await new Promise((r) => setImmediate(r))
    expect(started).toHaveLength(n)
    return started[n - 1]!
  }
  return {
    first,
    supervisor,
    lines,
    waits,
    changes,
    started,
    signals,
    restarted,
    advance: (ms: number) => (clock += ms),
    /** The next start is held until the returned function is called. */
    holdNextStart: () => {
      nextStart = () => {}
      return () => nextStart?.()
    },
  }
}

describe('superviseFunction', () => {
  it('starts a function that exited again, waiting 1 s, then twice as long each time up to the cap, and counts', async () => {
    const h = harness()
    h.first.exit({ code: null, signal: 'SIGKILL' })
    const second = await h.restarted(1)
    expect(h.supervisor.current).toBe(second)
    second.exit({ code: 1, signal: null })
    const third = await h.restarted(2)
    third.exit({ code: 1, signal: null })
    await h.restarted(3)
    h.started[2]!.exit({ code: 1, signal: null })
    await h.restarted(4)
    h.started[3]!.exit({ code: 1, signal: null })
    await h.restarted(5)

    expect(h.waits).toEqual([1_000, 2_000, 4_000, 8_000, 8_000])
    expect(h.supervisor.restarts).toBe(5)
    expect(h.lines.slice(0, 2)).toEqual([
      'payment exited with code none (signal SIGKILL); restarting in 1s (restart #1)',
      'payment exited with code 1 (signal none); restarting in 2s (restart #2)',
    ])
    // Down between an exit and the next ready process: the ingress and the broker resolve nothing then.
    expect(h.changes).toEqual(h.started.flatMap((p) => [undefined, p.child.pid]))
    await h.supervisor.stop()
  })

  it('waits 1 s again for a function that stayed up a minute before it exited', async () => {
    const h = harness()
    h.first.exit({ code: 1, signal: null })
    const second = await h.restarted(1)
    h.advance(10_000)
    second.exit({ code: 1, signal: null })
    const third = await h.restarted(2)
    h.advance(60_000)
    third.exit({ code: 1, signal: null })
    await h.restarted(3)
    expect(h.waits).toEqual([1_000, 2_000, 1_000])
    expect(h.supervisor.restarts).toBe(3)
    await h.supervisor.stop()
  })

  it('counts a start that fails as another restart, says why, and waits longer before the next', async () => {
    const h = harness({ failStarts: 2 })
    h.first.exit({ code: 1, signal: null })
    await h.restarted(1)
    expect(h.waits).toEqual([1_000, 2_000, 4_000])
    expect(h.supervisor.restarts).toBe(3)
    expect(h.lines[1]).toBe('payment did not start again (payment exited with code 1 before it was ready); restarting in 2s (restart #2)')
    await h.supervisor.stop()
  })

  it('stop(): stops the process and starts none again', async () => {
    const h = harness()
    await h.supervisor.stop()
    expect(h.first.stopped).toBe(true)
    expect(h.started).toHaveLength(0)
    expect(h.supervisor.restarts).toBe(0)
    expect(h.lines).toEqual([])
  })

  it('stop() while a start is under way: the start is told to give up, and what it made is stopped', async () => {
    const h = harness()
    const release = h.holdNextStart()
    h.first.exit({ code: 1, signal: null })
    for (let i = 0; i < 100 && h.signals.length === 0; i++) await new Promise((r) => setImmediate(r))
    const stopping = h.supervisor.stop()
    expect(h.signals[0]!.aborted).toBe(true)
    release()
    await stopping
    expect(h.started).toHaveLength(1)
    expect(h.started[0]!.stopped).toBe(true)
    expect(h.supervisor.current).toBeUndefined()
  })
})

describe('stopOrder', () => {
  it('stops the shop’s callers first and product, which cart and order call, last', () => {
    const calls = { auth: [], product: [], cart: ['product'], order: ['product'], payment: [], 'dead-letter': [] }
    expect(stopOrder(calls)).toEqual([['auth', 'cart', 'order', 'payment', 'dead-letter'], ['product']])
  })

  it('follows a chain to its end, and stops a cycle together, last', () => {
    expect(stopOrder({ c: [], b: ['c'], a: ['b'] })).toEqual([['a'], ['b'], ['c']])
    expect(stopOrder({ a: ['b'], b: ['a'], c: ['a'] })).toEqual([['c'], ['a', 'b']])
    expect(stopOrder({})).toEqual([])
  })
})
