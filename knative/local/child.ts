/**
 * @module
 * How the runner starts the functions and the benchmarks start their servers: processes they must
 * stop again. Each child gets an IPC channel to its parent besides its output. When the parent
 * dies, however it dies (SIGKILL included, which no handler sees), the kernel closes the channel
 * and the child gets `disconnect`: every program built on shared/server.ts stops on it, so none
 * outlives the process that started it. (A program that ignores the channel, such as a
 * benchmark's plain node:http baseline, still can.) Stopping is SIGTERM, then SIGKILL after a
 * grace period.
 *
 * Each child leads a process group of its own. A terminal sends Ctrl-C to its whole foreground
 * group: were the children in the parent's, every function would stop at the same instant, the
 * ones that others call included, and requests in flight between them would fail. Only the
 * parent gets the signal, and it stops them in the order it chooses.
 */
import { spawn, type ChildProcess } from 'node:child_process'

/** How a child ended: its exit code, or the signal that ended it. */
export type Exit = { code: number | null; signal: NodeJS.Signals | null }

export type ChildOptions = {
  command: string
  args: string[]
  cwd: string
  /** The whole environment: nothing of the parent's is passed on unless it is here. */
  env: Record<string, string>
  /** Where stdout and stderr go: `pipe` (read them from `Child.process`), `ignore`, or an open file descriptor. */
  output?: 'pipe' | 'ignore' | number
  /** How long `stop()` waits after SIGTERM before SIGKILL, in ms. */
  graceMs?: number
}

export type Child = {
  /** The Node handle, for its `stdout`/`stderr` when `output` is `pipe`. */
  process: ChildProcess
  pid: number
  /** Resolves once it has exited (never rejects). */
  exited: Promise<Exit>
  /** Whether it has exited. */
  readonly done: boolean
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited, at once if it had. */
  stop(): Promise<void>
  /** SIGKILL; resolves once it has exited. */
  kill(): Promise<void>
}

/**
 * Starts `command args` with an IPC channel as fd 3 (Node finds it through `NODE_CHANNEL_FD`, also
 * across an `exec` such as `taskset … node …`). Throws at once when it cannot be spawned (an unknown
 * command).
 *
 * @example
 * ```ts
 * const child = startChild({ command: process.execPath, args: ['dist/product/index.mjs'], cwd: root, env })
 * await child.stop()
 * ```
 */
export function startChild({ command, args, cwd, env, output = 'pipe', graceMs = 8_000 }: ChildOptions): Child {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', output, output, 'ipc'], detached: process.platform !== 'win32' })
  // Spawn failures (ENOENT), a kill or a channel write after the child died: all come as 'error'
  // events, which would crash the parent unheard. The failures that matter are thrown or awaited here.
  child.on('error', () => {})
  if (child.pid === undefined) throw new Error(`cannot start ${command}: not found or not executable`)
  let done = false
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => {
      done = true
      resolve({ code, signal })
    }),
  )
  const signalAndWait = async (signal: NodeJS.Signals) => {
    if (done) return
    child.kill(signal)
    await exited
  }
  return {
    process: child,
    pid: child.pid,
    exited,
    get done() {
      return done
    },
    async stop() {
      if (done) return
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      try {
        await signalAndWait('SIGTERM')
      } finally {
        clearTimeout(timer)
      }
    },
    kill: () => signalAndWait('SIGKILL'),
  }
}
