/**
 * @module
 * Stock levels: every product the shoppers are shown is looked at in passing (free: the answers
 * come anyway), and the whole catalog is read once after the run.
 */
import type { Product } from './answers.ts'

export type StockWatch = ReturnType<typeof createStockWatch>

export function createStockWatch() {
  let seen = 0
  const negative = new Map<string, number>()
  return {
    observe(products: readonly Pick<Product, 'id' | 'stock'>[]) {
      for (const p of products) {
        seen += 1
        if (p.stock < 0) negative.set(p.id, Math.min(p.stock, negative.get(p.id) ?? 0))
      }
    },
    get seen() {
      return seen
    },
    /** Products ever seen below 0, with the lowest stock seen. */
    negative(): { id: string; stock: number }[] {
      return [...negative].map(([id, stock]) => ({ id, stock }))
    },
  }
}
