/**
 * @module
 * The live progress line on stderr: redrawn in place each second on a terminal, a plain line
 * every 5 s otherwise (CI logs keep every line, so fewer of them). Log lines of the local stack go
 * through here too, so that they never end up in the middle of the progress line.
 */

export type ProgressOptions = {
  write: (s: string) => void
  tty: boolean
  /** The line to show now (no newline). */
  render: () => string
  intervalMs?: number
}

export type Progress = ReturnType<typeof createProgress>

export function createProgress({ write, tty, render, intervalMs = tty ? 1_000 : 5_000 }: ProgressOptions) {
  let timer: NodeJS.Timeout | undefined
  // What was drawn last: a log line redraws it as it was (rendering again would skew the rate).
  let current: string | undefined
  const draw = () => {
    current = render()
    write(tty ? `\r${current}\x1b[K` : `${current}\n`)
  }
  return {
    start() {
      timer ??= setInterval(draw, intervalMs)
      // Never the reason the process stays up.
      timer.unref()
    },
    /** A line of its own, above the progress line. */
    log(line: string) {
      if (tty && current !== undefined) write(`\r\x1b[K${line}\n${current}\x1b[K`)
      else write(`${line}\n`)
    },
    /** Draws the line a last time and leaves it. */
    stop() {
      if (!timer) return
      clearInterval(timer)
      timer = undefined
      draw()
      if (tty) write('\n')
      current = undefined
    },
  }
}

/**
 * A renderer for the load's numbers: requests per second over the time since it last drew, so
 * the rate is what is happening now, not the average since the start.
 */
export function loadLine(read: () => { phase: string; elapsedMs: number; requests: number; errors: number; placed: number; final: number }) {
  let last = { at: performance.now(), requests: 0 }
  return () => {
    const now = performance.now()
    const r = read()
    const rate = now > last.at ? ((r.requests - last.requests) * 1000) / (now - last.at) : 0
    last = { at: now, requests: r.requests }
    return `${r.phase} ${(r.elapsedMs / 1000).toFixed(0).padStart(4)}s  ${rate.toFixed(0).padStart(6)} req/s  ${String(r.errors).padStart(5)} errors  ${String(r.placed).padStart(6)} orders placed  ${String(r.final).padStart(6)} final`
  }
}
