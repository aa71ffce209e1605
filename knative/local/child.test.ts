import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { startChild } from './child.ts'

const env = { PATH: process.env.PATH ?? '' }

describe('startChild', () => {
  it('stops with SIGTERM a child that heeds it', async () => {
    const child = startChild({ command: process.execPath, args: ['-e', 'process.send("up"); setInterval(() => {}, 1000)'], cwd: '.', env })
    await once(child.process, 'message')
    await child.stop()
    expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' })
    expect(child.done).toBe(true)
  })

  it('kills with SIGKILL, after the grace period, a child that ignores SIGTERM', async () => {
    const child = startChild({
      command: process.execPath,
      args: ['-e', 'process.on("SIGTERM", () => {}); process.send("up"); setInterval(() => {}, 1000)'],
      cwd: '.',
      env,
      graceMs: 200,
    })
    await once(child.process, 'message')
    await child.stop()
    expect((await child.exited).signal).toBe('SIGKILL')
  })

  it('gives the child a channel that closes when the parent lets go of it', async () => {
    const child = startChild({ command: process.execPath, args: ['-e', 'process.on("disconnect", () => process.exit(7)); process.send("up")'], cwd: '.', env })
    await once(child.process, 'message')
    // What the kernel does for a parent that dies: its end of the channel closes.
    child.process.disconnect()
    expect(await child.exited).toEqual({ code: 7, signal: null })
  })

  it('throws at once for a command that does not exist', () => {
    expect(() => startChild({ command: 'no-such-command-here', args: [], cwd: '.', env })).toThrow('cannot start no-such-command-here')
  })
})
