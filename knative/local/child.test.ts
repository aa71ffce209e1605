import { once } from 'node:events'
import { readFileSync } from 'node:fs'
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

  it.runIf(process.platform === 'linux')('puts the child in a process group of its own, out of reach of a Ctrl-C meant for the parent', async () => {
    const child = startChild({ command: process.execPath, args: ['-e', 'process.send("up"); setInterval(() => {}, 1000)'], cwd: '.', env })
    await once(child.process, 'message')
    // Field 5 of /proc/<pid>/stat is the process group; the command name before it is in parentheses.
    const group = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2])
    expect(group(child.pid)).toBe(child.pid)
    expect(group(child.pid)).not.toBe(group(process.pid))
    await child.stop()
  })

  it('throws at once for a command that does not exist', () => {
    expect(() => startChild({ command: 'no-such-command-here', args: [], cwd: '.', env })).toThrow('cannot start no-such-command-here')
  })
})
