/**
 * Password hashing with bcryptjs on worker threads, so hashing never blocks the event loop.
 */
import { Worker } from 'node:worker_threads'

/**
 * bcrypt off the event loop: `hash` answers a bcrypt hash string (`$2b$…`, salt and cost inside),
 * `verify` whether a password matches one, `close` stops the workers. Both reject when a worker
 * fails.
 */
export type PasswordHasher = {
  hash(password: string): Promise<string>
  verify(password: string, hash: string): Promise<boolean>
  close(): Promise<void>
}

type Job = { resolve: (value: never) => void; reject: (err: Error) => void }
type Slot = { worker: Worker; jobs: Map<number, Job> }

/**
 * A `PasswordHasher` on `threads` worker threads running bcryptjs, each job going to the least
 * busy worker; a worker that dies fails its jobs and is replaced on next use.
 *
 * @param cost bcrypt's cost, log2 of its rounds (10 or more in production; each +1 doubles the time).
 * @param threads workers hashing at once; started on first use, not at cold start.
 */
export function createPasswordHasher({ cost, threads = 1 }: { cost: number; threads?: number }): PasswordHasher {
  const slots: (Slot | undefined)[] = Array.from({ length: threads }, () => undefined)
  let nextId = 0

  const spawn = (i: number): Slot => {
    const worker = new Worker(new URL('./hash-worker.mjs', import.meta.url))
    const slot: Slot = { worker, jobs: new Map() }
    worker.on('message', ({ id, result, error }: { id: number; result?: never; error?: string }) => {
      const job = slot.jobs.get(id)
      slot.jobs.delete(id)
      if (error) job?.reject(new Error(error))
      else job?.resolve(result as never)
    })
    const fail = (err: Error) => {
      for (const job of slot.jobs.values()) job.reject(err)
      slot.jobs.clear()
      if (slots[i] === slot) slots[i] = undefined
    }
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`hash worker exited with code ${code}`)))
    // Idle workers must not keep a stopping process alive.
    worker.unref()
    slots[i] = slot
    return slot
  }

  const run = <T>(message: Record<string, unknown>): Promise<T> => {
    // The least busy worker; empty places are spawned on first use.
    let best = 0
    for (let i = 0; i < slots.length; i++) {
      if ((slots[i]?.jobs.size ?? 0) < (slots[best]?.jobs.size ?? 0)) best = i
    }
    const slot = slots[best] ?? spawn(best)
    const id = nextId++
    return new Promise<T>((resolve, reject) => {
      slot.jobs.set(id, { resolve: resolve as (v: never) => void, reject })
      slot.worker.postMessage({ id, ...message })
    })
  }

  return {
    hash: (password) => run<string>({ op: 'hash', password, cost }),
    verify: (password, hash) => run<boolean>({ op: 'verify', password, hash }),
    close: async () => {
      await Promise.all(slots.map((s) => s?.worker.terminate()))
    },
  }
}
