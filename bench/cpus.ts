/**
 * @module
 * Server and load on separate cores where the machine has two or more: the bench process (which
 * generates the load) pins itself to core 0, and servers start under `taskset -c 1`. PostgreSQL
 * and RabbitMQ are shared servers and stay where the kernel puts them.
 */
import { execFileSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

export type Placement = {
  pinned: boolean
  /** Where the load generator (this process) runs. */
  loadCores: string
  /** Where servers run. */
  serverCores: string
  description: string
}

const hasTaskset = () => {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export function planPlacement(cores = availableParallelism()): Placement {
  const all = `0-${cores - 1}`
  if (cores < 2) return { pinned: false, loadCores: all, serverCores: all, description: 'one core: server and load share it (numbers understate the server)' }
  if (!hasTaskset()) return { pinned: false, loadCores: all, serverCores: all, description: 'no taskset: server and load share every core' }
  const servers = cores === 2 ? '1' : `1-${cores - 1}`
  return {
    pinned: true,
    loadCores: '0',
    serverCores: servers,
    description: `load generator (this process) on core 0, servers under taskset -c ${servers}; PostgreSQL and RabbitMQ unpinned`,
  }
}

/** Pins every thread of this process to the load cores (threads made later inherit it). */
export function pinSelf(p: Placement): void {
  if (p.pinned) execFileSync('taskset', ['-a', '-p', '-c', p.loadCores, String(process.pid)], { stdio: 'ignore' })
}

/**
 * Runs `fn` with this process free to use every core: for work where the bench process is part
 * of the system measured (the local broker and ingress of benchmark 5), and the processes it
 * starts must not inherit core 0.
 */
export async function unpinned<T>(p: Placement, fn: () => Promise<T>): Promise<T> {
  if (!p.pinned) return fn()
  execFileSync('taskset', ['-a', '-p', '-c', `0-${availableParallelism() - 1}`, String(process.pid)], { stdio: 'ignore' })
  try {
    return await fn()
  } finally {
    pinSelf(p)
  }
}

/** The command line that runs `command` on the server cores. */
export function onServerCores(p: Placement, command: string, args: string[]): [string, string[]] {
  return p.pinned ? ['taskset', ['-c', p.serverCores, command, ...args]] : [command, args]
}
