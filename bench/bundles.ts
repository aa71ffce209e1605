/**
 * @module
 * The function bundles the benchmarks run: built with `node build.mjs` when one is missing or
 * older than the sources (as `npm start` does), never rebuilt needlessly, since tests running
 * beside a benchmark may be starting the same bundles.
 */
import { buildIfStale } from '../knative/local/runner.ts'

export const ensureBundles = (root: string, say: (line: string) => void) => buildIfStale(root, (line) => say(`  ${line}`))
