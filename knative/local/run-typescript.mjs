// Compiles a TypeScript entry (ours bundled, dependencies left in node_modules: PGlite brings
// its WebAssembly files) to dist/ and runs it in this process. What `npm start`, `npm run load`
// and `npm run bench` use; the functions themselves run from their own bundles (build.mjs).
import { build } from 'esbuild'

const root = new URL('../../', import.meta.url)

/** Builds `entry` (relative to the repository root) into `outfile` and imports it. */
export async function runTypeScript(entry, outfile) {
  await build({
    entryPoints: [new URL(entry, root).pathname],
    outfile: new URL(outfile, root).pathname,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    logLevel: 'warning',
  })
  await import(new URL(outfile, root).href)
}
