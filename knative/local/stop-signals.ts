/**
 * @module
 * Ctrl-C, SIGTERM and SIGHUP (the terminal closed) for a command people run with `npm run`: the
 * first one stops, another one forces. Under npm a single Ctrl-C arrives twice: the terminal sends SIGINT to the whole process
 * group, and npm passes on the copy it got too, milliseconds later. Taken as a second one, that
 * copy would force an exit in the middle of a clean stop.
 */

type StopSignalOptions = {
  /** The first SIGINT, SIGTERM or SIGHUP: stop cleanly. */
  stop: (signal: NodeJS.Signals) => void
  /** Another one, later than `sameWithinMs` after the first: give up on the clean stop. */
  force: (signal: NodeJS.Signals) => void
  /** Signals within this many ms of the first are that same one, passed on by npm. */
  sameWithinMs?: number
}

/** Installs the handlers; returns a function that removes them. */
export function onStopSignals({ stop, force, sameWithinMs = 2_000 }: StopSignalOptions): () => void {
  let first: number | undefined
  const handler = (signal: NodeJS.Signals) => {
    if (first === undefined) {
      first = Date.now()
      stop(signal)
    } else if (Date.now() - first >= sameWithinMs) {
      force(signal)
    }
  }
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
  for (const signal of signals) process.on(signal, handler)
  return () => {
    for (const signal of signals) process.off(signal, handler)
  }
}
