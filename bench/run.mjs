// `npm run bench`: compiles the benchmarks (bench/main.ts, dependencies left in node_modules, as
// knative/local/start.mjs does for the runner) and the bench-only apps (bundled and minified as
// build.mjs bundles a function, so that they cost what a function costs), then runs them.
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
// Experiments: the same sources with one module swapped for a bench/experiments/ variant, so a
// benchmark can show what a change to shared/ would buy before anyone makes it.
const experiment = (module, replacement) => ({
  name: `experiment ${module}`,
  setup(b) {
    b.onResolve({ filter: new RegExp(`^${module.replace('/', '\\/')}$`) }, (args) =>
      args.importer === path(replacement) ? undefined : { path: path(replacement) },
    )
  },
})

await build({ ...common, entryPoints: [path('bench/main.ts')], outfile: path('dist/bench/main.mjs'), packages: 'external' })
await build({ ...asFunction, entryPoints: [path('bench/apps/trivial.ts'), path('bench/apps/cart-open.ts'), path('bench/apps/broker.ts')], outdir: path('dist/bench/apps') })
await build({
  ...asFunction,
  entryPoints: { product: path('functions/product/index.ts'), trivial: path('bench/apps/trivial.ts') },
  outdir: path('dist/bench/experiments/body-limit'),
  plugins: [experiment('hono/body-limit', 'bench/experiments/body-limit.ts')],
})
await build({
  ...asFunction,
  entryPoints: { broker: path('bench/apps/broker.ts') },
  outdir: path('dist/bench/experiments/nodelay'),
  plugins: [experiment('amqplib', 'bench/experiments/amqp-nodelay.ts')],
})
await build({
  ...common,
  entryPoints: [path('bench/experiments/nodelay.ts')],
  outfile: path('dist/bench/experiments/nodelay.mjs'),
  packages: 'external',
  plugins: [experiment('amqplib', 'bench/experiments/amqp-nodelay.ts')],
})
await import(new URL('dist/bench/main.mjs', root).href)
