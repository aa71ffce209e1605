/**
 * Function bundles as child processes: started with their environment (and tied to the runner,
 * see child.ts), their JSON log lines shown with the function's name in front, stopped with
 * SIGTERM (then SIGKILL if they hang).
 */
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
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

export type FunctionProcess = { name: string; url: string; child: Child; stop: () => Promise<void> }

type StartOptions = {
  root: string
  name: string
  port: number
  env: Record<string, string>
  output: Output
  readyTimeoutMs?: number
  /** A port for a second try (free ports may be taken by another process meanwhile). */
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
      if (attempt >= attempts || !(err instanceof EarlyExit) || o.signal?.aborted) throw err
      if (o.nextPort) o = { ...o, port: await o.nextPort() }
      o.output('shop', `${o.name} exited before it was ready; starting it again (${attempt + 1} of ${attempts})`)
    }
  }
}

class EarlyExit extends Error {}

async function startOnce({ root, name, port, env, output, readyTimeoutMs = 60_000, signal }: StartOptions): Promise<FunctionProcess> {
  signal?.throwIfAborted()
  const child = startChild({
    command: process.execPath,
    args: [`dist/${name}/index.mjs`],
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
  })
  // The last lines, to say why a process that dies before it is ready died.
  const tail: string[] = []
  for (const stream of [child.process.stdout!, child.process.stderr!]) {
    let rest = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) {
        if (!line) continue
        output(name, line)
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
      if (child.done) throw new EarlyExit(`${name} exited with code ${child.process.exitCode} before it was ready:\n${tail.join('\n')}`)
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
    write(`${tag} ${pretty(line)}\n`)
  }
}

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
