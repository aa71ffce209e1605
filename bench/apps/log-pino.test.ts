import { describe, expect, it } from 'vitest'
import { createLogger as ours } from '../../shared/log.ts'
import { createLogger as onPino } from './log-pino.ts'

// Benchmark 6 is a fair race only if both loggers write the same thing.
describe('the pino logger of benchmark 6', () => {
  it('writes the same fields and values as shared/log.ts, Errors included', () => {
    const err = Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' })
    const write = (create: typeof ours) => {
      const lines: string[] = []
      const log = create({ name: 'order', level: 'info', write: (l) => lines.push(l) })
      log.debug('hidden')
      log.child({ request_id: 'r1' }).info('request', { status: 201, ms: 1.5 })
      log.error('failed', { err })
      return lines.map((l) => {
        const { time, ...rest } = JSON.parse(l) as { time: string }
        expect(new Date(time).toISOString()).toBe(time)
        return rest
      })
    }
    const theirs = write(onPino)
    expect(theirs).toEqual(write(ours))
    expect(theirs[1]).toMatchObject({ level: 'error', err: { name: 'Error', message: 'connection refused', code: 'ECONNREFUSED' } })
  })
})
