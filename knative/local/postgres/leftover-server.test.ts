import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { findLeftoverServer, isRunning } from './leftover-server.ts'

const started: number[] = []
afterEach(() => {
  for (const pid of started.splice(0)) if (isRunning(pid)) process.kill(pid, 'SIGKILL')
})

describe('a postmaster.pid an earlier run left', () => {
  it('never names a live process that is not that directory’s postmaster, however much it says "postgres"', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'shop-leftover-'))
    try {
      // As a reused PID might be: a client whose command line names postgres and even this directory.
      const decoy = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'psql', '-U', 'postgres', '-D', dataDir], { stdio: 'ignore' })
      started.push(decoy.pid!)
      const pidFile = join(dataDir, 'postmaster.pid')
      await writeFile(pidFile, `${decoy.pid}\n${dataDir}\n1700000000\n5999\n`)

      expect(await findLeftoverServer(dataDir)).toBeUndefined()
      expect(isRunning(decoy.pid!)).toBe(true)
      // PostgreSQL would refuse to start over a live PID that is not its own: the stale file goes.
      expect(existsSync(pidFile)).toBe(false)
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
