/**
 * @module
 * Servers under test as child processes: started with a bare environment (as the local runner
 * starts functions), their output to a log file (writing it costs them what a container's log
 * pipe would; reading it would cost the load generator), ready once an HTTP path answers 200.
 */
import type { ChildProcess } from 'node:child_process'
import { openSync, closeSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { get } from 'node:http'
import { join } from 'node:path'
import { startChild } from '../knative/local/child.ts'
import type { Cleanup } from './cleanup.ts'

export type Server = {
  name: string
  url: string
  pid: number
  child: ChildProcess
  /** SIGTERM, then SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>
  /** The last lines it wrote, for error messages. */
  tail(lines?: number): Promise<string>
}

type StartOptions = {
  name: string
  /** The whole command line, e.g. `taskset -c 1 node dist/product/index.mjs`. */
  command: [string, string[]]
  env: Record<string, string>
  port: number
  logDir: string
  cwd: string
  readyPath?: string
  timeoutMs?: number
  cleanup: Cleanup
}

export async function startServer({ name, command, env, port, logDir, cwd, readyPath = '/healthz', timeoutMs = 30_000, cleanup }: StartOptions): Promise<Server> {
  const logFile = join(logDir, `${name}.log`)
  const fd = openSync(logFile, 'a')
  const [cmd, args] = command
  let started
  try {
    started = startChild({ command: cmd, args, cwd, env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' }, output: fd, graceMs: 5_000 })
  } finally {
    closeSync(fd)
  }
  const child = started.process
  const remove = cleanup.add(`stop ${name}`, started.stop)
  const tail = async (lines = 15) => (await readFile(logFile, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-lines).join('\n')
  const url = `http://127.0.0.1:${port}`
  try {
    await waitForHttp(`${url}${readyPath}`, { child, timeoutMs })
  } catch (err) {
    await remove()
    throw new Error(`${name} did not start: ${(err as Error).message}\n${await tail()}`)
  }
  return { name, url, pid: child.pid!, child, stop: remove, tail }
}

/**
 * Resolves once `url` answers 200, polling every `intervalMs`; rejects when `child` exits first or
 * the time is up. A fresh connection per attempt: it must not hold the server's first socket.
 */
export async function waitForHttp(url: string, { child, timeoutMs = 30_000, intervalMs = 20 }: { child?: ChildProcess; timeoutMs?: number; intervalMs?: number }): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`it exited (${child.exitCode ?? child.signalCode}) before answering`)
    if ((await status(url)) === 200) return
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** One GET; its status, or 0 when the connection failed. */
export function status(url: string, timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', () => resolve(0))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
  })
}

/** Resident memory of a process in MiB (VmRSS in /proc/<pid>/status); undefined if unreadable. */
export async function rssMiB(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(text)?.[1]
  return kb ? Number(kb) / 1024 : undefined
}
