/**
 * Starting and restarting function processes for real, on a stand-in bundle (a few lines of
 * node:http in a temp dir) so that each start costs a Node start, not a database: a process that
 * dies before it is ready is tried again on its port unless the port was taken, and a supervised
 * one killed outright is back on the same port.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertPortsFree, freePort, startFunctionProcess, superviseFunction, type FunctionProcess } from './processes.ts'

// Fails its first start (as a function timing out on the migration lock would, or with FAIL_WITH),
// then serves 200 on every path until it is stopped.
const FAKE = `
import { createServer } from 'node:http'
import { existsSync, writeFileSync } from 'node:fs'
if (process.env.MARKER && !existsSync(process.env.MARKER)) {
  writeFileSync(process.env.MARKER, '')
  console.error(process.env.FAIL_WITH || 'fake: failed to start: timeout waiting for the migration lock')
  process.exit(Number(process.env.EXIT_CODE || 1))
}
const server = createServer((req, res) => res.end(String(process.pid))).listen(Number(process.env.PORT), process.env.HOST)
process.on('SIGTERM', () => server.close(() => process.exit(0)))
process.on('disconnect', () => process.exit(0))
`

describe('function processes', () => {
  let root: string
  const started: FunctionProcess[] = []
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'shop-processes-'))
    await mkdir(join(root, 'dist', 'fake'), { recursive: true })
    await writeFile(join(root, 'dist', 'fake', 'index.mjs'), FAKE)
  })
  afterAll(async () => {
    for (const p of started) await p.stop()
    await rm(root, { recursive: true, force: true })
  })

  const start = async (env: Record<string, string>, port: number, nextPort?: () => Promise<number>) => {
    const lines: string[] = []
    const fn = await startFunctionProcess({ root, name: 'fake', port, env, output: (source, line) => lines.push(`${source} ${line}`), ...(nextPort ? { nextPort } : {}) })
    started.push(fn)
    return { fn, lines }
  }

  it('starts one that died before it was ready again on the same port: the others were given that URL', async () => {
    const port = await freePort()
    const { fn, lines } = await start({ MARKER: join(root, 'first-try-1') }, port, freePort)
    expect(fn.url).toBe(`http://127.0.0.1:${port}`)
    expect(lines).toContain('shop fake exited before it was ready; starting it again (2 of 3)')
    expect((await fetch(`${fn.url}/healthz`)).status).toBe(200)
  })

  it('never starts again one whose configuration is wrong (exit 78): the message, once', async () => {
    const lines: string[] = []
    const failed = startFunctionProcess({
      root,
      name: 'fake',
      port: await freePort(),
      env: { MARKER: join(root, 'config-error'), EXIT_CODE: '78', FAIL_WITH: 'fake: invalid configuration:\n  FAKE_RATE: must be a number (got "abc")' },
      output: (source, line) => lines.push(`${source} ${line}`),
    })
    await expect(failed).rejects.toThrow(/^fake: invalid configuration: FAKE_RATE: must be a number \(got "abc"\)$/)
    expect(lines).toEqual(['fake fake: invalid configuration:', 'fake   FAKE_RATE: must be a number (got "abc")'])
  })

  it('says in one line which given ports another process has, and which setting moves them', async () => {
    const held = createServer()
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve))
    const port = (held.address() as AddressInfo).port
    const free = await freePort()
    try {
      await expect(assertPortsFree([{ port: free, owner: 'auth', setting: 'FUNCTION_PORT_BASE' }])).resolves.toBeUndefined()
      await expect(
        assertPortsFree([
          { port: free, owner: 'auth', setting: 'FUNCTION_PORT_BASE' },
          { port, owner: 'cart', setting: 'FUNCTION_PORT_BASE' },
        ]),
      ).rejects.toThrow(`port ${port} (cart) is in use by another process: stop it, or set FUNCTION_PORT_BASE to free ports (0 picks free ones)`)
    } finally {
      await new Promise((resolve) => held.close(resolve))
    }
  })

  it('moves to another port only when its port was taken', async () => {
    const port = await freePort()
    const next = await freePort()
    const { fn } = await start({ MARKER: join(root, 'first-try-2'), FAIL_WITH: 'Error: listen EADDRINUSE: address already in use' }, port, async () => next)
    expect(fn.url).toBe(`http://127.0.0.1:${next}`)
  })

  it('supervised, one killed outright is started again on the same port and counted', async () => {
    const { fn } = await start({}, await freePort())
    const lines: string[] = []
    const port = Number(new URL(fn.url).port)
    const supervisor = superviseFunction({
      first: fn,
      start: (signal) => startFunctionProcess({ root, name: 'fake', port, env: {}, output: () => {}, signal }, 1),
      say: (line) => lines.push(line),
      policy: { firstDelayMs: 10, maxDelayMs: 100, resetAfterMs: 60_000 },
    })
    try {
      process.kill(fn.child.pid, 'SIGKILL')
      await expect.poll(() => supervisor.current !== undefined && supervisor.current !== fn, { timeout: 15_000, interval: 50 }).toBe(true)
      expect(supervisor.current!.url).toBe(fn.url)
      expect(await (await fetch(`${fn.url}/`)).text()).toBe(String(supervisor.current!.child.pid))
      expect(supervisor.restarts).toBe(1)
      expect(lines).toEqual(['fake exited with code none (signal SIGKILL); restarting in 10ms (restart #1)'])
    } finally {
      const last = supervisor.current
      await supervisor.stop()
      expect(last?.child.done ?? true).toBe(true)
    }
  })
})
