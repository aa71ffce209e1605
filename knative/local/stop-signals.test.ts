import { afterEach, describe, expect, it } from 'vitest'
import { onStopSignals } from './stop-signals.ts'

describe('onStopSignals', () => {
  let remove = () => {}
  afterEach(() => remove())

  it('stops on the first signal and takes a copy that follows at once as the same one', () => {
    const calls: string[] = []
    remove = onStopSignals({ stop: (s) => calls.push(`stop ${s}`), force: (s) => calls.push(`force ${s}`), sameWithinMs: 60_000 })
    process.emit('SIGINT', 'SIGINT')
    process.emit('SIGINT', 'SIGINT')
    expect(calls).toEqual(['stop SIGINT'])
  })

  it('forces on a signal that comes later than the window', () => {
    const calls: string[] = []
    remove = onStopSignals({ stop: (s) => calls.push(`stop ${s}`), force: (s) => calls.push(`force ${s}`), sameWithinMs: 0 })
    process.emit('SIGTERM', 'SIGTERM')
    process.emit('SIGINT', 'SIGINT')
    expect(calls).toEqual(['stop SIGTERM', 'force SIGINT'])
  })

  it('removes its handlers', () => {
    const before = process.listenerCount('SIGINT')
    onStopSignals({ stop: () => {}, force: () => {} })()
    expect(process.listenerCount('SIGINT')).toBe(before)
  })
})
