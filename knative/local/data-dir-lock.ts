/**
 * @module
 * One shop per data directory. Two runners on one DATA_DIR would open the same embedded database
 * twice and overwrite each other's keys, so the first thing a runner does is create
 * `DATA_DIR/shop.lock` holding its PID; a second one finds it and refuses at once. A lock whose
 * PID is no longer running was left by a runner that was killed (SIGKILL leaves no time to remove
 * it): the next one takes it over and says so.
 */
import { readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isRunning } from './postgres/leftover-server.ts'

/** Another live process holds the directory; the message is one line, for people. */
export class DataDirLocked extends Error {
  override name = 'DataDirLocked'
  constructor(
    readonly dataDir: string,
    /** Undefined while the other one is still writing its PID. */
    readonly pid: number | undefined,
    readonly file: string,
  ) {
    super(
      `another shop${pid ? ` (PID ${pid})` : ''} is running on ${dataDir}: stop it first, or set DATA_DIR to another directory ` +
        `(if no shop runs there, delete ${file})`,
    )
  }
}

export type DataDirLock = {
  file: string
  /** The PID of a killed runner whose lock this one took over, if any. */
  tookOverFrom?: number
  /** Removes the lock, if it is still ours. */
  release(): Promise<void>
}

/**
 * Creates `dataDir/shop.lock` with this process's PID (the directory must exist). Rejects with
 * `DataDirLocked` when a running process holds it (this one included: a second shop in the same
 * process is refused too); takes over a lock whose PID is dead.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const file = join(dataDir, 'shop.lock')
  const mine = String(process.pid)
  let tookOverFrom: number | undefined
  for (;;) {
    try {
      // `wx`: create or fail, in one step, so two runners starting together cannot both get it.
      await writeFile(file, `${mine}\n`, { flag: 'wx' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = Number((await readFile(file, 'utf8').catch(() => '')).trim())
    // An empty file: a runner between creating it and writing its PID. Still held.
    if (!holder || isRunning(holder)) throw new DataDirLocked(dataDir, holder || undefined, file)
    // Not airtight: two runners taking over one stale lock within microseconds of each other
    // could both get it. Runners are started by hand, seconds apart; this is for a killed one.
    await unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err
    })
    tookOverFrom = holder
  }
  return {
    file,
    ...(tookOverFrom !== undefined ? { tookOverFrom } : {}),
    async release() {
      const holder = (await readFile(file, 'utf8').catch(() => '')).trim()
      if (holder === mine) await unlink(file).catch(() => {})
    },
  }
}
