/**
 * @module
 * Randomness the shoppers draw from. Everything takes a `random` function (0 ≤ x < 1) so tests
 * can give a seeded one and count what comes out.
 */

export type Random = () => number

/** mulberry32: a tiny seeded generator, good enough for picking actions (not for secrets). */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A whole number from `min` to `max`, both included. */
export const between = (random: Random, min: number, max: number) => min + Math.floor(random() * (max - min + 1))

/** One of `items` (which must not be empty). */
export const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!
