/**
 * Password hashing with bcryptjs on worker threads, so hashing never blocks the event loop.
 */
import { Worker } from 'node:worker_threads'

export type PasswordHasher = {
  hash(password: string): Promise<string>
  verify(password: string, hash: string): Promise<boolean>
  close(): Promise<void>
}

type Job = { resolve: (value: never) => void; reject: (err: Error) => void }
type Slot = { worker: Worker; jobs: Map<number, Job> }

/**
 * @param cost bcrypt's cost (10 or more in production).
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
