/**
 * @module
 * What a virtual shopper does next. The weights give a mix of about 10 browse : 5 cart : 1 checkout
 * (most visits look, fewer fill a cart, fewer still buy); inside each kind, the split is what a
 * shop's traffic roughly looks like (people look at lists and products alike, add more often than
 * they change or remove).
 */
import type { Random } from './random.ts'

export type Action = 'browse.list' | 'browse.product' | 'cart.add' | 'cart.update' | 'cart.remove' | 'cart.view' | 'checkout'

/** Relative weights: browse 20, cart 10, checkout 2, i.e. 10 : 5 : 1. */
export const SHOPPER_MIX: Record<Action, number> = {
  'browse.list': 10,
  'browse.product': 10,
  'cart.add': 4,
  'cart.update': 2,
  'cart.remove': 2,
  'cart.view': 2,
  checkout: 2,
}

/** The kind of an action: its name up to the dot. */
export const kindOf = (action: string) => action.split('.')[0]!

/**
 * A picker that draws names in proportion to their weights. One table of cumulative weights is
 * built once; each draw is one random number and a short scan (a handful of entries).
 */
export function createPicker<T extends string>(weights: Record<T, number>, random: Random): () => T {
  const entries = (Object.entries(weights) as [T, number][]).filter(([, w]) => w > 0)
  if (entries.length === 0) throw new Error('a picker needs at least one positive weight')
  const names = entries.map(([name]) => name)
  const cumulative: number[] = []
  let sum = 0
  for (const [, w] of entries) cumulative.push((sum += w))
  return () => {
    const x = random() * sum
    for (let i = 0; i < cumulative.length; i++) if (x < cumulative[i]!) return names[i]!
    return names[names.length - 1]! // x === sum only through rounding
  }
}
