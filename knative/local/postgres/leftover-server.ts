/**
 * @module
 * A PostgreSQL server that an earlier run left on a data directory. A runner killed with SIGKILL
 * (or a closed terminal) cannot stop its server, which then lives on, reparented, holding the
 * directory and its port: the next start finds it through the directory's `postmaster.pid`
 * (line 1: the postmaster's PID, line 4: its port) and stops it. Only a server no live run owns
 * may be stopped this way: the runner's DATA_DIR lock and the throwaway directories' owner file
 * make sure of that before this is called.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile, realpath, rm } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { promisify } from 'node:util'

export type Leftover = { pid: number; port: number }

/**
 * The server that `dataDir/postmaster.pid` names, if one runs. A pid file whose PID is dead is
 * ignored (PostgreSQL itself starts over it); one whose PID now belongs to another program is
 * removed, since PostgreSQL would refuse to start over a live PID.
 */
export async function findLeftoverServer(dataDir: string): Promise<Leftover | undefined> {
  const file = join(dataDir, 'postmaster.pid')
  let lines: string[]
  try {
    lines = (await readFile(file, 'utf8')).split('\n')
  } catch {
    return undefined
  }
  const pid = Number(lines[0])
  if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid)) return undefined
  if (!(await isPostmasterOf(pid, dataDir, lines[1] ?? ''))) {
    await rm(file, { force: true })
    return undefined
  }
  return { pid, port: Number(lines[3]) }
}

/**
 * Stops a server by its postmaster's PID and resolves once it has exited: a fast shutdown
 * (SIGINT: sessions ended, a checkpoint written), then an immediate one (SIGQUIT), then SIGKILL
 * if it still hangs. Throws when the PID is not ours to signal.
 */
export async function stopServer(pid: number, { fastMs = 10_000, immediateMs = 5_000 } = {}): Promise<void> {
  for (const [signal, waitMs] of [['SIGINT', fastMs], ['SIGQUIT', immediateMs], ['SIGKILL', 5_000]] as const) {
    try {
      process.kill(pid, signal)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return
      throw err
    }
    if (await exited(pid, waitMs)) return
  }
  throw new Error(`PostgreSQL (PID ${pid}) did not exit after SIGKILL`)
}

async function exited(pid: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs
  while (Date.now() < deadline) {
    if (!isRunning(pid)) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return !isRunning(pid)
}

/** Alive and not a zombie (an exited process its parent has not reaped yet holds its PID). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  if (process.platform !== 'linux') return true
  try {
    // /proc/<pid>/stat: "pid (comm) state …"; the name may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/**
 * Whether `pid` is a postmaster serving `dataDir`: a program named `postgres` started with `-D`
 * naming that directory (as `dataDir`, or as the path PostgreSQL wrote on line 2 of its pid file).
 * A PID in a stale pid file may have been given to anything since (a reboot after a killed run):
 * a `psql -U postgres`, a backend of the machine's own PostgreSQL. None of those may be stopped.
 */
async function isPostmasterOf(pid: number, dataDir: string, writtenDir: string): Promise<boolean> {
  let argv: string[]
  try {
    if (process.platform === 'linux') argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
    else argv = (await promisify(execFile)('ps', ['-p', String(pid), '-o', 'command='])).stdout.trim().split(/\s+/)
  } catch {
    // Cannot tell (Windows, no ps): assume it is, so nothing is removed that PostgreSQL needs.
    return true
  }
  if (basename(argv[0] ?? '') !== 'postgres') return false
  const dir = argv[argv.indexOf('-D') + 1]
  if (argv.indexOf('-D') < 0 || !dir) return false
  const real = (path: string) => realpath(path).catch(() => resolve(path))
  return dir === writtenDir || (await real(dir)) === (await real(dataDir))
}
