import { describe, expect, it } from 'vitest'
import { createLogger } from './log.ts'

describe('createLogger', () => {
  it('writes one JSON line per call with name, level and fields, and drops what is below its level', () => {
    const lines: string[] = []
    const log = createLogger({ name: 'order', level: 'info', write: (l) => lines.push(l) })
    log.debug('hidden')
    log.child({ request_id: 'r1' }).info('request', { status: 201 })
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', fn: 'order', msg: 'request', request_id: 'r1', status: 201 })
  })

  it('writes an Error with its message, code and stack, never as {}', () => {
    const lines: string[] = []
    const err = Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' })
    createLogger({ name: 'x', write: (l) => lines.push(l) }).error('failed', { err })
    expect(JSON.parse(lines[0]!).err).toMatchObject({ name: 'Error', message: 'connection refused', code: 'ECONNREFUSED' })
  })
})
