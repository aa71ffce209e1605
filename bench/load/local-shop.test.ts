import { describe, expect, it } from 'vitest'
import { quietOutput } from './local-shop.ts'
import { createProgress } from './progress.ts'

describe('the local stack’s output during a load run', () => {
  it('shows warnings and errors, crashes and failures, nothing else', () => {
    const shown: string[] = []
    const out = quietOutput((source, line) => shown.push(`${source} ${line}`))
    out('order', JSON.stringify({ level: 'info', msg: 'request' }))
    out('order', JSON.stringify({ level: 'warn', msg: 'slow' }))
    out('broker', JSON.stringify({ level: 'error', msg: 'redelivering' }))
    out('shop', 'building the function bundles (node build.mjs)')
    out('shop', 'stop failed: Error: boom')
    out('payment', 'TypeError: x is not a function')
    out('cart', '{not json')
    expect(shown).toEqual([
      'order {"level":"warn","msg":"slow"}',
      'broker {"level":"error","msg":"redelivering"}',
      'shop stop failed: Error: boom',
      'payment TypeError: x is not a function',
      'cart {not json',
    ])
  })

  it('shows more when LOG_LEVEL asks for it', () => {
    const shown: string[] = []
    quietOutput((_, line) => shown.push(line), 'info')(`order`, JSON.stringify({ level: 'info', msg: 'request' }))
    expect(shown).toHaveLength(1)
  })
})

describe('the progress line', () => {
  it('is redrawn in place on a terminal, with log lines above it', () => {
    let out = ''
    let n = 0
    const p = createProgress({ write: (s) => (out += s), tty: true, render: () => `line ${++n}`, intervalMs: 10_000 })
    p.log('before')
    p.start()
    p.stop()
    expect(out).toBe('before\n\rline 1\x1b[K\n')
  })

  it('is a plain line otherwise', () => {
    let out = ''
    const p = createProgress({ write: (s) => (out += s), tty: false, render: () => 'now' })
    p.start()
    p.log('a warning')
    p.stop()
    p.stop()
    expect(out).toBe('a warning\nnow\n')
  })
})
