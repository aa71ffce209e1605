/**
 * Function bundles as child processes: started with their environment, their JSON log lines
 * shown with the function's name in front, stopped with SIGTERM (then SIGKILL if they hang).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'

export type Output = (source: string, line: string) => void

/** A free loopback port, so every URL is known before any process starts. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

export type FunctionProcess = { name: string; url: string; child: ChildProcess; stop: () => Promise<void> }

/** Starts `node dist/<name>/index.mjs`; resolves once its /healthz answers 200. */
export async function startFunctionProcess({
  root,
  name,
  port,
  env,
  output,
  readyTimeoutMs = 60_000,
}: {
  root: string
  name: string
  port: number
  env: Record<string, string>
  output: Output
  readyTimeoutMs?: number
}): Promise<FunctionProcess> {
  const child = spawn(process.execPath, [`dist/${name}/index.mjs`], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  for (const stream of [child.stdout, child.stderr]) {
    let rest = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) if (line) output(name, line)
    })
  }
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const url = `http://127.0.0.1:${port}`

  const deadline = Date.now() + readyTimeoutMs
  let ready = false
  while (!ready) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} before it was ready`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${name} was not ready within ${readyTimeoutMs} ms`)
    }
    ready = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.ok,
      () => false,
    )
    if (!ready) await new Promise((r) => setTimeout(r, 100))
  }

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 8_000)
    await exited
    clearTimeout(timer)
  }
  return { name, url, child, stop }
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
