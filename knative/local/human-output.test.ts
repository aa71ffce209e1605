import { describe, expect, it } from 'vitest'
import { humanOutput } from './processes.ts'

describe('humanOutput', () => {
  const lines = () => {
    const out: string[] = []
    return { out, output: humanOutput((s) => out.push(s), false) }
  }

  it('shortens a function’s access-log line', () => {
    const { out, output } = lines()
    output('product', JSON.stringify({ time: '2026-11-29T12:00:01.000Z', level: 'info', fn: 'product', msg: 'request', method: 'GET', path: '/api/products', status: 200, ms: 1.2 }))
    expect(out).toEqual(['product     12:00:01 info  GET /api/products 200 1.2ms\n'])
  })

  it('shows control characters from a client’s path escaped: no forged line, no terminal escape', () => {
    const { out, output } = lines()
    const path = '/api/products/x\nshop        admin password changed\u001b[31m\u0000'
    output('product', JSON.stringify({ time: '2026-11-29T12:00:01.000Z', level: 'info', fn: 'product', msg: 'request', method: 'GET', path, status: 404, ms: 1 }))
    output('product', 'plain\u001b[2J text')
    expect(out.join('')).toBe(
      'product     12:00:01 info  GET /api/products/x\\nshop        admin password changed\\u001b[31m\\u0000 404 1ms\n' + 'product     plain\\u001b[2J text\n',
    )
  })
})
