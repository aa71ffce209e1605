/**
 * @module
 * What a run must undo however it ends (processes, databases, RabbitMQ queues, cgroups): each
 * step registers its undo here as it succeeds; they run last-first, on success, failure or Ctrl-C.
 */
export type Cleanup = {
  /** Registers `undo`; the returned function runs it now (once) and takes it off the stack. */
  add(what: string, undo: () => Promise<unknown> | unknown): () => Promise<void>
  /** Runs everything still registered, last-first; failures are reported, not thrown. */
  run(): Promise<void>
}

export function createCleanup(report: (line: string) => void = (line) => console.error(line)): Cleanup {
  const stack: { what: string; undo: () => Promise<unknown> | unknown; done: boolean }[] = []
  const runOne = async (entry: (typeof stack)[number]) => {
    if (entry.done) return
    entry.done = true
    try {
      await entry.undo()
    } catch (err) {
      report(`cleanup: ${entry.what} failed: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  return {
    add(what, undo) {
      const entry = { what, undo, done: false }
      stack.push(entry)
      return async () => {
        const at = stack.indexOf(entry)
        if (at >= 0) stack.splice(at, 1)
        await runOne(entry)
      }
    },
    async run() {
      while (stack.length) await runOne(stack.pop()!)
    },
  }
}
