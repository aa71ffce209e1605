// `npm start`: compiles the local runner (TypeScript) and runs it. The functions themselves run
// from their own bundles (node build.mjs), which the runner builds when they are stale.
import { build } from 'esbuild'

const root = new URL('../../', import.meta.url)
await build({
  entryPoints: [new URL('knative/local/main.ts', root).pathname],
  outfile: new URL('dist/local/main.mjs', root).pathname,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Dependencies load from node_modules: PGlite brings its WebAssembly files.
  packages: 'external',
  logLevel: 'warning',
})
await import(new URL('dist/local/main.mjs', root).href)
