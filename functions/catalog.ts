/**
 * @module
 * The functions of the shop, in start order: what the build, the local runner, the test setup
 * and the manifest checks iterate over. Each `functions/<name>/index.ts` is the function itself.
 */

export type FunctionInfo = {
  name: string
  /** The PostgreSQL schema it owns. */
  schema: string
  /** The public `/api/<group>` it serves through the ingress, if any. */
  group?: string
}

export const functions: readonly FunctionInfo[] = [
  { name: 'auth', schema: 'auth', group: 'auth' },
  { name: 'product', schema: 'product', group: 'products' },
  { name: 'cart', schema: 'cart', group: 'cart' },
  { name: 'order', schema: 'orders', group: 'orders' },
  { name: 'payment', schema: 'payment', group: 'payments' },
  // Every Trigger's dead-letter sink; internal only.
  { name: 'dead-letter', schema: 'deadletter' },
]
