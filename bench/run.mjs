// `npm run bench` (`node --import tsx bench/run.mjs`): builds the bench-only apps (bundled and
// minified as build.mjs bundles a function, so that they cost what a function costs), then runs the
// benchmarks, bench/main.ts, from source in this same process: its Ctrl-C handling and cleanup are
// this process's own.
import { build } from 'esbuild'

const root = new URL('../', import.meta.url)
const path = (p) => new URL(p, root).pathname
const common = { bundle: true, platform: 'node', target: 'node20', format: 'esm', logLevel: 'warning' }
// As build.mjs bundles a function.
const asFunction = {
  ...common,
  outExtension: { '.js': '.mjs' },
  minify: true,
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  external: ['pg-native'],
  legalComments: 'none',
}

await build({ ...asFunction, entryPoints: [path('bench/apps/trivial.ts'), path('bench/apps/cart-open.ts'), path('bench/apps/broker.ts')], outdir: path('dist/bench/apps') })
await import('./main.ts')
