import { describe, expect, it } from 'vitest'
import { createCleanup } from './cleanup.ts'

describe('createCleanup', () => {
  it('undoes last-first, each once, and goes on past a failure', async () => {
    const done: string[] = []
    const reported: string[] = []
    const cleanup = createCleanup((line) => reported.push(line))
    cleanup.add('a', () => done.push('a'))
    cleanup.add('b', () => {
      throw new Error('boom')
    })
    const c = cleanup.add('c', async () => done.push('c'))
    await c()
    await c()
    await cleanup.run()
    await cleanup.run()
    expect(done).toEqual(['c', 'a'])
    expect(reported).toEqual(['cleanup: b failed: boom'])
  })
})
