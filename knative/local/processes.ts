/**
 * Function bundles as child processes: started with their environment (and tied to the runner,
 * see child.ts), their JSON log lines shown with the function's name in front, started again
 * when they exit (`superviseFunction`), stopped with SIGTERM (then SIGKILL if they hang) in an
 * order that keeps what they call up (`stopOrder`).
 */
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { EXIT_CONFIG } from '../../shared/config.ts'
import { startChild, type Child } from './child.ts'

export type Output = (source: string, line: string) => void

/** A free loopback port, so every URL is known before any process starts. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * Rejects, in one line naming each port, whose it is and the variable that sets it, when any of
 * `ports` cannot be listened on at 127.0.0.1 (another process has it). Fixed ports only: a port
 * taken by someone else would otherwise answer the readiness probe, or the shop's own requests,
 * in the function's place.
 *
 * @example
 * ```ts
 * await assertPortsFree([{ port: 8080, owner: 'the ingress', setting: 'INGRESS_PORT' }])
 * ```
 */
export async function assertPortsFree(ports: { port: number; owner: string; setting: string }[]): Promise<void> {
  const taken: typeof ports = []
  for (const p of ports) {
    const server = createServer()
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false))
      server.listen(p.port, '127.0.0.1', () => resolve(true))
    })
    if (free) await new Promise((resolve) => server.close(resolve))
    else taken.push(p)
  }
  if (taken.length === 0) return
  const settings = [...new Set(taken.map((t) => t.setting))]
  throw new Error(
    `${taken.map((t) => `port ${t.port} (${t.owner})`).join(', ')} ${taken.length === 1 ? 'is' : 'are'} in use by another process: stop it, or set ${settings.join(' and ')} to free ports (0 picks free ones)`,
  )
}

export type FunctionProcess = { name: string; url: string; child: Child; stop: () => Promise<void> }

type StartOptions = {
  root: string
  name: string
  port: number
  env: Record<string, string>
  output: Output
  readyTimeoutMs?: number
  /**
   * A port for a second try when this one turned out to be taken (a free port may be taken by
   * another process meanwhile). Any other early exit is tried again on the same port.
   */
  nextPort?: () => Promise<number>
  /** Aborting stops the process that is starting and rejects with the signal's reason. */
  signal?: AbortSignal
}

/**
 * Starts `node dist/<name>/index.mjs` and resolves once its /healthz answers 200. Like the
 * kubelet, starts it again (up to `attempts` times) when it dies before it is ready: while six
 * functions migrate at once, one may time out waiting for the database. Rejects when it never
 * gets ready (the last lines it wrote in the message), or when `signal` aborts; either way the
 * process it started is stopped first.
 */
export async function startFunctionProcess(o: StartOptions, attempts = 3): Promise<FunctionProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(o)
    } catch (err) {
      if (attempt >= attempts || !(err instanceof EarlyExit) || err.configError || o.signal?.aborted) throw err
      // Only a port that was taken moves: the others were handed this URL already (cart and
      // order get PRODUCT_URL before product is ready), and would go on calling the old one.
      if (o.nextPort && err.portTaken) o = { ...o, port: await o.nextPort() }
      o.output('shop', `${o.name} exited before it was ready; starting it again (${attempt + 1} of ${attempts})`)
    }
  }
}

class EarlyExit extends Error {
  constructor(
    message: string,
    /** It said its port was in use. */
    readonly portTaken: boolean,
    /** It exited with `EXIT_CONFIG`: its configuration is wrong, and another start would fail the same way. */
    readonly configError: boolean,
  ) {
    super(message)
  }
}

async function startOnce({ root, name, port, env, output, readyTimeoutMs = 60_000, signal }: StartOptions): Promise<FunctionProcess> {
  signal?.throwIfAborted()
  const child = startChild({
    command: process.execPath,
    args: [`dist/${name}/index.mjs`],
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
  })
  // The last lines, to say why a process that dies before it is ready died, and whether its port was taken.
  const tail: string[] = []
  let portTaken = false
  for (const stream of [child.process.stdout!, child.process.stderr!]) {
    let rest = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) {
        if (!line) continue
        output(name, line)
        if (line.includes('EADDRINUSE')) portTaken = true
        tail.push(line)
        if (tail.length > 10) tail.shift()
      }
    })
  }
  const url = `http://127.0.0.1:${port}`

  try {
    const deadline = Date.now() + readyTimeoutMs
    for (;;) {
      signal?.throwIfAborted()
      if (child.done) {
        // Its last lines may still be on their way: the exit can come before its output ends.
        if (child.process.stdout?.readable || child.process.stderr?.readable) {
          await Promise.race([new Promise((resolve) => child.process.once('close', resolve)), sleep(1_000)])
        }
        const code = child.process.exitCode
        // Its message, one line: "payment: invalid configuration: PAYMENT_SUCCESS_RATE: must be … (got "abc")".
        if (code === EXIT_CONFIG) throw new EarlyExit(tail.map((line) => line.trim()).join(' '), portTaken, true)
        throw new EarlyExit(`${name} exited with code ${code} before it was ready:\n${tail.join('\n')}`, portTaken, false)
      }
      if (Date.now() > deadline) throw new Error(`${name} was not ready within ${readyTimeoutMs} ms`)
      const probe = AbortSignal.timeout(1_000)
      const ready = await fetch(`${url}/healthz`, { signal: signal ? AbortSignal.any([signal, probe]) : probe }).then(
        (r) => r.ok,
        () => false,
      )
      if (ready) return { name, url, child, stop: child.stop }
      await sleep(100, undefined, signal ? { signal } : {}).catch(() => {})
    }
  } catch (err) {
    await child.stop()
    throw err
  }
}

/**
 * How a function that exits after it was ready is started again: the kubelet's CrashLoopBackOff
 * (10 s doubling to 5 min, reset after 10 min up), scaled to a laptop, where a crash is usually
 * a bug being fixed and a minute's wait would only be in the way.
 */
export type RestartPolicy = {
  /** The wait before the first restart; each further one doubles it. */
  firstDelayMs: number
  maxDelayMs: number
  /** A process that stayed up this long crashed for a new reason: its next restart waits `firstDelayMs` again. */
  resetAfterMs: number
}

/** 1 s, 2 s, 4 s … up to 30 s; back to 1 s after a minute up. */
export const RESTART_POLICY: RestartPolicy = { firstDelayMs: 1_000, maxDelayMs: 30_000, resetAfterMs: 60_000 }

/** A function kept running by `superviseFunction`. */
export type SupervisedFunction = {
  name: string
  /** The process serving now; undefined while it is down (from its exit until the next one is ready). */
  readonly current: FunctionProcess | undefined
  /** How many times it was started again after exiting. */
  readonly restarts: number
  /** Restarts no more, and stops the process (a start under way is abandoned, its process stopped). */
  stop(): Promise<void>
}

type SuperviseOptions = {
  /** The process as first started and ready. */
  first: FunctionProcess
  /** Starts it again, ready, on the same port (what others resolve must not change); aborting `signal` stops that start. */
  start: (signal: AbortSignal) => Promise<FunctionProcess>
  say: (line: string) => void
  /** Told when the function goes down (`undefined`) and when a new process is ready. */
  onChange?: (current: FunctionProcess | undefined) => void
  policy?: RestartPolicy
  /** The clock and the wait, for tests; the wait rejects or resolves early when `signal` aborts. */
  now?: () => number
  sleep?: (ms: number, signal: AbortSignal) => Promise<unknown>
}

/**
 * Watches a ready function and, like the kubelet, starts it again whenever it exits: on the same
 * port, after a backoff that doubles with each restart (`policy`), each restart said with its exit
 * code and counted. A start that fails counts as another restart and waits longer. Only `stop()`
 * ends this: an exit while stopping is what was asked for.
 */
export function superviseFunction({ first, start, say, onChange, policy = RESTART_POLICY, now = Date.now, sleep: wait = (ms, signal) => sleep(ms, undefined, { signal }) }: SuperviseOptions): SupervisedFunction {
  const stopping = new AbortController()
  let current: FunctionProcess | undefined = first
  let restarts = 0
  const seconds = (ms: number) => (ms < 1_000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`)

  const watch = async () => {
    let delay = policy.firstDelayMs
    let upSince = now()
    for (let running = first; ; ) {
      const { code, signal } = await running.child.exited
      if (stopping.signal.aborted) return
      current = undefined
      onChange?.(undefined)
      if (now() - upSince >= policy.resetAfterMs) delay = policy.firstDelayMs
      let why = `exited with code ${code ?? 'none'} (signal ${signal ?? 'none'})`
      for (;;) {
        restarts += 1
        say(`${first.name} ${why}; restarting in ${seconds(delay)} (restart #${restarts})`)
        try {
          await wait(delay, stopping.signal)
        } catch {
          return // stopping
        }
        if (stopping.signal.aborted) return
        delay = Math.min(delay * 2, policy.maxDelayMs)
        try {
          running = await start(stopping.signal)
          break
        } catch (err) {
          if (stopping.signal.aborted) return
          // The first line says why; the lines the process wrote were shown as it wrote them.
          const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.replace(/:$/, '')
          why = `did not start again (${reason})`
        }
      }
      if (stopping.signal.aborted) {
        await running.stop()
        return
      }
      upSince = now()
      current = running
      onChange?.(running)
    }
  }
  const watching = watch()

  return {
    name: first.name,
    get current() {
      return current
    },
    get restarts() {
      return restarts
    },
    async stop() {
      stopping.abort()
      // The watch waits for an exit: stop the process first, then the watch sees it and ends
      // (a start under way sees the abort, stops what it started and ends the watch too).
      await current?.stop()
      await watching
    },
  }
}

/**
 * The order to stop functions in, from who calls whom (`calls[name]`: the functions `name` sends
 * requests to): first those no other function calls, then those only they called, and so on, so
 * that a function finishing its requests in flight can still reach what they need. When only
 * functions that call each other in a circle (and what they call) are left, they stop together.
 */
export function stopOrder(calls: Record<string, readonly string[]>): string[][] {
  const left = new Set(Object.keys(calls))
  const layers: string[][] = []
  while (left.size > 0) {
    const called = new Set([...left].flatMap((n) => calls[n]!.filter((m) => m !== n && left.has(m))))
    const layer = [...left].filter((n) => !called.has(n))
    const next = layer.length > 0 ? layer : [...left]
    layers.push(next)
    for (const n of next) left.delete(n)
  }
  return layers
}

const colors = [36, 33, 35, 32, 34, 31, 90]

/**
 * Writes log lines for people: `12:00:01 order   info  request POST /api/orders 201 12.3ms`. JSON
 * lines of our functions are shortened; anything else is shown as it came.
 */
export function humanOutput(write: (s: string) => void = (s) => process.stdout.write(s), color = process.stdout.isTTY): Output {
  const palette = new Map<string, number>()
  return (source, line) => {
    if (!palette.has(source)) palette.set(source, colors[palette.size % colors.length]!)
    const name = source.padEnd(11)
    const tag = color ? `\x1b[${palette.get(source)}m${name}\x1b[0m` : name
    write(`${tag} ${visible(pretty(line))}\n`)
  }
}

// Control characters shown escaped: a request path is the client's text, and a newline or an
// escape sequence in it (decoded from the JSON line) must not forge a log line or repaint the terminal.
const visible = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => JSON.stringify(c).slice(1, -1))

function pretty(line: string): string {
  if (!line.startsWith('{')) return line
  try {
    const { time, level, fn: _fn, msg, ...fields } = JSON.parse(line) as Record<string, unknown>
    const clock = typeof time === 'string' ? time.slice(11, 19) : ''
    if (msg === 'request') {
      const { method, path, status, ms } = fields
      return `${clock} ${String(level).padEnd(5)} ${method} ${path} ${status} ${ms}ms`
    }
    const rest = Object.entries(fields)
      .map(([k, val]) => `${k}=${typeof val === 'string' ? val : JSON.stringify(val)}`)
      .join(' ')
    return `${clock} ${String(level).padEnd(5)} ${msg}${rest ? ` ${rest}` : ''}`
  } catch {
    return line
  }
}
