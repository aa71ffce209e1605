/**
 * `npm start` as a user runs it: the runner as a process of its own, stopped by signals, killed
 * outright, started twice on one DATA_DIR. Every process it starts must go when it goes. On the
 * database DATABASE_URL names when it is set (the run's test database), else the runner's own
 * embedded PostgreSQL in its DATA_DIR, as a new user would have it; the tests that keep the shop
 * from getting up use the run's test database either way, holding its migration locks.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { functions } from '../../functions/catalog.ts'
import { isRunning } from './postgres/leftover-server.ts'
import { testClient } from '../../test/support.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const UP = 'The shop is up'

// What each test started, to be killed should the test fail half-way.
const started: Runner[] = []
const seen = new Set<number>()
const dirs: string[] = []
afterEach(async () => {
  for (const r of started.splice(0)) if (r.exitCode === undefined) process.kill(r.pid, 'SIGKILL')
  for (const pid of seen) if (isRunning(pid)) process.kill(pid, 'SIGKILL')
  seen.clear()
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
})

describe('the runner as a process', () => {
  it('SIGKILL: every function it started exits; the next start takes its DATA_DIR over and stops cleanly', async () => {
    const dataDir = await tempDir()
    const first = startRunner({ dataDir, env: database() })
    await first.waitFor(UP)
    const before = await descendants(first.pid)
    const bundles = before.filter((p) => /dist\/[\w-]+\/index\.mjs/.test(p.args))
    expect(bundles).toHaveLength(functions.length)

    process.kill(first.pid, 'SIGKILL')
    await first.exited
    await waitUntil('every function of the killed runner to exit', () => bundles.every((p) => !isRunning(p.pid)))

    const second = startRunner({ dataDir, env: database() })
    await second.waitFor(UP)
    expect(second.output()).toContain(`took over ${join(dataDir, 'shop.lock')} from PID ${first.pid}`)
    const after = await descendants(second.pid)
    process.kill(second.pid, 'SIGTERM')
    expect(await second.exited).toBe(0)
    // Whatever the killed runner left (an embedded PostgreSQL), the second one stopped.
    await waitUntil('every process of both runners to exit', () => [...before, ...after].every((p) => !isRunning(p.pid)))
    await expect(readFile(join(dataDir, 'shop.lock'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' })
  }, 240_000)

  it('SIGINT before the shop is up: stops every function it started, and exits', async () => {
    await withMigrationsHeld(async (env) => {
      const runner = startRunner({ dataDir: await tempDir(), env })
      // Held at their migrations, the functions run but cannot be ready: the shop cannot be up.
      await waitUntil('every function to be started', async () => {
        const found = (await descendants(runner.pid)).filter((p) => /dist\/[\w-]+\/index\.mjs/.test(p.args))
        return found.length === functions.length ? found : undefined
      })
      const all = await descendants(runner.pid)
      process.kill(runner.pid, 'SIGINT')
      expect(await runner.exited).toBe(0)
      expect(runner.output()).not.toContain(UP)
      expect(runner.output()).toContain('SIGINT: stopping')
      await waitUntil('every process of the runner to exit', () => all.every((p) => !isRunning(p.pid)))
    })
  }, 120_000)

  it('a second runner on the same DATA_DIR refuses at once, naming the first one’s PID', async () => {
    await withMigrationsHeld(async (env) => {
      const dataDir = await tempDir()
      const first = startRunner({ dataDir, env })
      const lock = join(dataDir, 'shop.lock')
      await waitUntil('the first runner to hold DATA_DIR', async () => (await readFile(lock, 'utf8').catch(() => '')).trim() === String(first.pid))

      const second = startRunner({ dataDir, env })
      expect(await second.exited).toBe(1)
      expect(second.output().trim()).toBe(
        `shop        another shop (PID ${first.pid}) is running on ${dataDir}: stop it first, or set DATA_DIR to another directory (if no shop runs there, delete ${lock})`,
      )
      expect((await readFile(lock, 'utf8')).trim()).toBe(String(first.pid))

      const all = await descendants(first.pid)
      process.kill(first.pid, 'SIGINT')
      expect(await first.exited).toBe(0)
      await waitUntil('every process of the first runner to exit', () => all.every((p) => !isRunning(p.pid)))
    })
  }, 120_000)

  it('SIGTERM to `npm start` reaches the runner: it stops everything and npm exits', async () => {
    const npm = startRunner({ dataDir: await tempDir(), env: database(), via: 'npm' })
    await npm.waitFor(UP)
    const all = await descendants(npm.pid)
    expect(all.filter((p) => /dist\/[\w-]+\/index\.mjs/.test(p.args))).toHaveLength(functions.length)
    process.kill(npm.pid, 'SIGTERM')
    expect(await npm.exited).toBe(0)
    expect(npm.output()).toContain('SIGTERM: stopping')
    expect(npm.output()).toMatch(/^shop +stopped$/m)
    await waitUntil('every process under npm to exit', () => all.every((p) => !isRunning(p.pid)))
  }, 180_000)

  it('SIGKILL to `npm start`, which passes nothing on: the runner sees its parent gone and stops everything', async () => {
    const npm = startRunner({ dataDir: await tempDir(), env: database(), via: 'npm' })
    await npm.waitFor(UP)
    const all = await descendants(npm.pid)
    const runner = all.find((p) => p.args.includes('knative/local/main.ts'))
    expect(runner).toBeDefined()
    process.kill(npm.pid, 'SIGKILL')
    await npm.exited
    // npm's pipes outlive npm in the runner, which still writes to them.
    await waitUntil('the runner to say it stops', () => npm.output().includes(`the process that started this one (${npm.pid}) is gone: stopping`))
    await waitUntil('every process under npm to exit', () => all.every((p) => !isRunning(p.pid)))
    expect(npm.output()).toMatch(/^shop +stopped$/m)
  }, 180_000)

  it('Ctrl-C on `npm start` (SIGINT to the whole process group, npm passing on its copy too) stops cleanly, not forced', async () => {
    // A process group of its own, as a terminal gives the command it runs.
    const npm = startRunner({ dataDir: await tempDir(), env: database(), via: 'npm', group: true })
    await npm.waitFor(UP)
    const all = await descendants(npm.pid)
    process.kill(-npm.pid, 'SIGINT')
    expect(await npm.exited).toBe(0)
    expect(npm.output()).toMatch(/^shop +stopped$/m)
    // Only the runner got the signal, and it stopped each function in turn: none exited on its own
    // to be taken for a crash.
    expect(npm.output()).not.toContain('restarting')
    await waitUntil('every process under npm to exit', () => all.every((p) => !isRunning(p.pid)))
  }, 180_000)
})

type Runner = {
  pid: number
  /** Resolves to the exit code (a signal's name when one ended it). */
  exited: Promise<number | string>
  exitCode: number | string | undefined
  output(): string
  /** Resolves once the output has `text`; rejects when the runner exits first. */
  waitFor(text: string): Promise<void>
}

function startRunner({ dataDir, env, via = 'node', group = false }: { dataDir: string; env: Record<string, string>; via?: 'node' | 'npm'; group?: boolean }): Runner {
  const [command, args] = via === 'npm' ? ['npm', ['start', '--silent']] : [process.execPath, ['--import', 'tsx', 'knative/local/main.ts']]
  const child: ChildProcess = spawn(command, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmpdir(),
      INGRESS_PORT: '0',
      FUNCTION_PORT_BASE: '0',
      DATA_DIR: dataDir,
      DEMO_CATALOG: 'off',
      BCRYPT_COST: '4',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: group,
  })
  let text = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (text += d))
  const runner: Runner = {
    pid: child.pid!,
    exitCode: undefined,
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve((runner.exitCode = code ?? signal ?? -1)))),
    output: () => text,
    waitFor: (wanted) =>
      waitUntil(`"${wanted}" from the runner`, () => {
        if (text.includes(wanted)) return true
        if (runner.exitCode !== undefined) throw new Error(`the runner exited (${runner.exitCode}) before "${wanted}":\n${text.slice(-3000)}`)
        return false
      }, 180_000).then(() => {}),
  }
  started.push(runner)
  return runner
}

/** The database for a runner that must get up: the run's test database on DATABASE_URL's server, else none (the embedded default). */
const database = (): Record<string, string> => (process.env.DATABASE_URL ? { DATABASE_URL: inject('databaseUrl') } : {})

/**
 * Runs `fn` while this test holds every function's migration lock on the run's test database (a
 * real PostgreSQL either way): functions started on it run, but none can get ready until `fn` is
 * done. `fn` gets the environment that points a runner at that database.
 */
async function withMigrationsHeld(fn: (env: Record<string, string>) => Promise<void>) {
  const url = inject('databaseUrl')
  const client = testClient(url)
  await client.connect()
  try {
    for (const f of functions) await client.query('SELECT pg_advisory_lock(hashtext($1))', [`shop.migrate.${f.schema}`])
    await fn({ DATABASE_URL: url })
  } finally {
    await client.end()
  }
}

type Proc = { pid: number; args: string }

/** Every process: from /proc on Linux (no `ps` needed: a bare machine may lack procps), else `ps`. */
async function processTable(): Promise<{ pid: number; ppid: number; args: string }[]> {
  if (process.platform !== 'linux') {
    const { stdout } = await promisify(execFile)('ps', ['-A', '-o', 'pid=,ppid=,args='])
    return stdout
      .split('\n')
      .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }))
  }
  const table = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
      const stat = await readFile(`/proc/${name}/stat`, 'utf8')
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (state === 'Z') continue // exited, not yet reaped: as gone as it gets
      const args = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').join(' ').trim()
      table.push({ pid: Number(name), ppid: Number(ppid), args })
    } catch {
      // Gone between readdir and read.
    }
  }
  return table
}

/** Every process below `pid`; each is remembered, to be killed if the test fails. */
async function descendants(pid: number): Promise<Proc[]> {
  const all = await processTable()
  const found: Proc[] = []
  const below = (parent: number) => {
    for (const p of all.filter((q) => q.ppid === parent)) {
      found.push({ pid: p.pid, args: p.args })
      below(p.pid)
    }
  }
  below(pid)
  for (const p of found) seen.add(p.pid)
  return found
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shop-runner-'))
  dirs.push(dir)
  return dir
}

/** Polls `check` until it answers something truthy (returned), or throws after `timeoutMs`. */
async function waitUntil<T>(what: string, check: () => T | Promise<T>, timeoutMs = 60_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const result = await check()
    if (result) return result
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
