/**
 * Outside binaries that some offline checks need: `kubectl` (its kustomize renders the manifests)
 * and `promtool` (checks the Prometheus configuration and rules). `npm test` must pass on a machine
 * with only Node and npm, so a test that needs a missing tool is skipped, and the run says so in one
 * line naming the tool and how to get it. CI (`.ci/run`) installs both first, so there they always run.
 */
import { spawnSync } from 'node:child_process'

/** Where each tool comes from, for the line that says it is missing. */
const howToGet = {
  kubectl: 'kubectl with kustomize v5 (https://kubernetes.io/docs/tasks/tools/); Debian’s kubernetes-client is too old',
  promtool: 'apt-get install prometheus (Debian’s package ships promtool)',
} as const

export type Tool = keyof typeof howToGet

const seen = new Map<Tool, boolean>()

/**
 * Whether `tool` runs here. The first time a missing tool is asked for in a test file, writes
 * `skipped: <tool> is not installed; <how to get it>` to stderr, so the skip is never silent.
 *
 * @example
 * describe.skipIf(!hasTool('kubectl'))('manifests', () => { ... })
 */
export function hasTool(tool: Tool): boolean {
  let found = seen.get(tool)
  if (found === undefined) {
    const r = spawnSync(tool, tool === 'kubectl' ? ['version', '--client'] : ['--version'], { stdio: 'ignore', timeout: 30_000 })
    found = !r.error
    seen.set(tool, found)
    if (!found) console.warn(`skipped: ${tool} is not installed; tests that need it do not run here. To run them: ${howToGet[tool]}`)
  }
  return found
}
