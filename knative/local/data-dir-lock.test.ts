import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DataDirLocked, lockDataDir } from './data-dir-lock.ts'

describe('lockDataDir', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shop-lock-'))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  it('writes this process’s PID to shop.lock, and removes it on release', async () => {
    const lock = await lockDataDir(dir)
    expect(lock.file).toBe(join(dir, 'shop.lock'))
    expect((await readFile(lock.file, 'utf8')).trim()).toBe(String(process.pid))
    expect(lock.tookOverFrom).toBeUndefined()
    await lock.release()
    await expect(readFile(lock.file, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('refuses while a running process holds it, naming the PID, the directory and the file', async () => {
    const held = await lockDataDir(dir)
    const refused = await lockDataDir(dir).catch((err: unknown) => err)
    expect(refused).toBeInstanceOf(DataDirLocked)
    expect((refused as DataDirLocked).pid).toBe(process.pid)
    expect((refused as Error).message).toBe(
      `another shop (PID ${process.pid}) is running on ${dir}: stop it first, or set DATA_DIR to another directory (if no shop runs there, delete ${held.file})`,
    )
    // The refused one took nothing: the lock is still the first one's.
    expect((await readFile(held.file, 'utf8')).trim()).toBe(String(process.pid))
    await held.release()
  })

  it('takes over a lock whose PID is no longer running, and says whose it was', async () => {
    const gone = spawn(process.execPath, ['-e', '0'])
    await once(gone, 'exit')
    await writeFile(join(dir, 'shop.lock'), `${gone.pid}\n`)
    const lock = await lockDataDir(dir)
    expect(lock.tookOverFrom).toBe(gone.pid)
    expect((await readFile(lock.file, 'utf8')).trim()).toBe(String(process.pid))
    await lock.release()
  })

  it('leaves a lock that is no longer its own on release', async () => {
    const lock = await lockDataDir(dir)
    await writeFile(lock.file, '1\n')
    await lock.release()
    expect((await readFile(lock.file, 'utf8')).trim()).toBe('1')
  })
})
