// `npm run load`: compiles the load generator (TypeScript) and runs it, as knative/local/start.mjs
// does for `npm start`. Arguments after `--` reach main.ts through process.argv.
import { build } from 'esbuild'

const root = new URL('../../', import.meta.url)
await build({
  entryPoints: [new URL('bench/load/main.ts', root).pathname],
  outfile: new URL('dist/load/main.mjs', root).pathname,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Dependencies load from node_modules: PGlite brings its WebAssembly files.
  packages: 'external',
  logLevel: 'warning',
})
await import(new URL('dist/load/main.mjs', root).href)
