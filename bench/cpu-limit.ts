/**
 * @module
 * Half a CPU, as a Knative container with `limits.cpu: 500m` gets: a cgroup with a CFS quota of
 * 50 ms per 100 ms (cgroup v2 `cpu.max`, else cgroup v1 `cpu.cfs_quota_us`), which needs root;
 * without one, `taskset` to one core plus `nice -n 10`, a weaker stand-in (it yields to others
 * but takes a whole idle core), and the output says which was used.
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Placement } from './cpus.ts'

export type CpuLimit = {
  kind: 'cgroup v2' | 'cgroup v1' | 'taskset + nice'
  description: string
  /** The command line that starts `command` inside the limit. */
  wrap(command: string, args: string[]): [string, string[]]
  remove(): Promise<void>
}

const PERIOD_US = 100_000

export async function createCpuLimit(placement: Placement, cpus = 0.5): Promise<CpuLimit> {
  const quota = Math.round(cpus * PERIOD_US)
  const name = `shop-bench-${process.pid}`
  // Pinned as the servers are, so that the only difference from the unlimited runs is the quota.
  const pin = (command: string, args: string[]): string[] => (placement.pinned ? ['taskset', '-c', placement.serverCores, command, ...args] : [command, ...args])
  // The shell puts itself in the group, then becomes the process: its pid is the measured one.
  const inGroup = (dir: string) => (command: string, args: string[]): [string, string[]] => [
    'sh',
    ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, ...pin(command, args)],
  ]
  const remove = (dir: string) => async () => {
    // The group can only go once its processes have: they are stopped before this runs.
    for (let i = 0; i < 50; i++) {
      try {
        await rmdir(dir)
        return
      } catch {
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }

  const v2 = await cgroup2Root()
  if (v2) {
    const dir = join(v2, name)
    try {
      await mkdir(dir)
      await writeFile(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`)
      return { kind: 'cgroup v2', description: `cgroup v2 ${dir}: cpu.max = ${quota} ${PERIOD_US}`, wrap: inGroup(dir), remove: remove(dir) }
    } catch {
      await rmdir(dir).catch(() => {})
    }
  }
  const v1 = '/sys/fs/cgroup/cpu'
  if (existsSync(join(v1, 'cpu.cfs_quota_us'))) {
    const dir = join(v1, name)
    try {
      await mkdir(dir)
      await writeFile(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US))
      await writeFile(join(dir, 'cpu.cfs_quota_us'), String(quota))
      return { kind: 'cgroup v1', description: `cgroup v1 ${dir}: cpu.cfs_quota_us = ${quota} per ${PERIOD_US} µs`, wrap: inGroup(dir), remove: remove(dir) }
    } catch {
      await rmdir(dir).catch(() => {})
    }
  }
  const core = placement.pinned ? placement.serverCores : '0'
  return {
    kind: 'taskset + nice',
    description: `no writable cgroup: taskset -c ${core} + nice -n 10 (not a real 0.5-CPU quota)`,
    wrap: (command, args) => ['taskset', ['-c', core, 'nice', '-n', '10', command, ...args]],
    remove: async () => {},
  }
}

/** The unified hierarchy's mount point, if the cpu controller is available in it. */
async function cgroup2Root(): Promise<string | undefined> {
  const mounts = await readFile('/proc/mounts', 'utf8').catch(() => '')
  for (const line of mounts.split('\n')) {
    const [, dir, type] = line.split(' ')
    if (type !== 'cgroup2' || !dir) continue
    const controllers = await readFile(join(dir, 'cgroup.controllers'), 'utf8').catch(() => '')
    if (!controllers.split(/\s+/).includes('cpu')) continue
    // Children get the cpu controller only when the root hands it down; that is the host's
    // setting, not ours to change.
    const subtree = await readFile(join(dir, 'cgroup.subtree_control'), 'utf8').catch(() => '')
    if (subtree.split(/\s+/).includes('cpu')) return dir
  }
  return undefined
}
