/**
 * @module
 * The functions of the shop, in start order: what the build (build.mjs), the deploy script
 * (knative/deploy.mjs), the local runner, the test setup and the manifest checks iterate over.
 * The list itself is functions/catalog.json, so that the plain `node` scripts read it without a
 * TypeScript loader (and the Dockerfile's build stage, which copies functions/, has it); this
 * module gives it its type. Each `functions/<name>/index.ts` is the function itself, and
 * catalog.test.ts checks that the list and those directories agree.
 */
import list from './catalog.json' with { type: 'json' }

/** One function of the shop. */
export type FunctionInfo = {
  /** Its directory under functions/, its bundle dist/<name>/index.mjs, its Knative Service and image name. */
  name: string
  /** The PostgreSQL schema it owns; its database role has the same name. */
  schema: string
  /** The public `/api/<group>` it serves through the ingress; absent for dead-letter (every Trigger's dead-letter sink, internal only) and web (the storefront, routed at `/`). */
  group?: string
}

/**
 * Every function, in start order: the local runner gives them ports in this order from
 * `FUNCTION_PORT_BASE` (auth 8081 … dead-letter 8086, web 8087).
 */
export const functions: readonly FunctionInfo[] = list
