import { describe, expect, it } from 'vitest'
import { createPicker, kindOf, SHOPPER_MIX } from './mix.ts'
import { seededRandom } from './random.ts'

describe('the shoppers’ mix', () => {
  it('draws about 10 browse : 5 cart : 1 checkout', () => {
    const next = createPicker(SHOPPER_MIX, seededRandom(42))
    const kinds: Record<string, number> = {}
    const actions: Record<string, number> = {}
    const draws = 160_000
    for (let i = 0; i < draws; i++) {
      const action = next()
      actions[action] = (actions[action] ?? 0) + 1
      kinds[kindOf(action)] = (kinds[kindOf(action)] ?? 0) + 1
    }
    // Expected 100,000 : 50,000 : 10,000; 2 % is over 10 standard deviations even for checkout.
    expect(kinds.browse! / 100_000).toBeCloseTo(1, 1)
    expect(Math.abs(kinds.browse! / 100_000 - 1)).toBeLessThan(0.02)
    expect(Math.abs(kinds.cart! / 50_000 - 1)).toBeLessThan(0.02)
    expect(Math.abs(kinds.checkout! / 10_000 - 1)).toBeLessThan(0.03)
    // Each action in its own proportion too.
    const sum = Object.values(SHOPPER_MIX).reduce((a, b) => a + b, 0)
    for (const [action, weight] of Object.entries(SHOPPER_MIX)) {
      expect(Math.abs(actions[action]! / ((draws * weight) / sum) - 1), action).toBeLessThan(0.04)
    }
  })

  it('never draws a zero weight, and always draws a lone one', () => {
    const next = createPicker({ a: 0, b: 1 }, seededRandom(1))
    for (let i = 0; i < 1_000; i++) expect(next()).toBe('b')
  })

  it('stays in range at the edges of random()', () => {
    expect(createPicker({ a: 1, b: 1 }, () => 0)()).toBe('a')
    expect(createPicker({ a: 1, b: 1 }, () => 0.9999999999)()).toBe('b')
  })

  it('needs a positive weight', () => {
    expect(() => createPicker({ a: 0 }, Math.random)).toThrow(/positive weight/)
  })
})
