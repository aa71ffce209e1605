#!/usr/bin/env node
// Bundles each function into one file: functions/<name>/index.ts -> dist/<name>/index.mjs,
// with its migrations beside it (and any *-worker.mjs it starts). One image per function.
//
//   node build.mjs                 build every function
//   node build.mjs auth product    build these
import { cp, readdir, rm, stat } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'

const root = new URL('.', import.meta.url).pathname
const all = (await readdir(join(root, 'functions'), { withFileTypes: true }))
  .filter((d) => d.isDirectory() && existsSync(join(root, 'functions', d.name, 'index.ts')))
  .map((d) => d.name)
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const unknown = wanted.filter((n) => !all.includes(n))
if (unknown.length) {
  console.error(`build: no such function: ${unknown.join(', ')} (there are ${all.join(', ')})`)
  process.exit(2)
}
const names = wanted.length ? wanted : all

const kb = (n) => `${(n / 1024).toFixed(1)} KB`.padStart(9)

for (const name of names) {
  const src = join(root, 'functions', name)
  const out = join(root, 'dist', name)
  await rm(out, { recursive: true, force: true })
  const workers = (await readdir(src)).filter((f) => f.endsWith('-worker.mjs'))
  await build({
    entryPoints: [join(src, 'index.ts'), ...workers.map((w) => join(src, w))],
    outdir: out,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    sourcemap: true,
    // pg and others are CommonJS: inside an ESM bundle their require() needs defining.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    // pg loads pg-native only when asked to; it is not installed.
    external: ['pg-native'],
    legalComments: 'none',
    logLevel: 'warning',
  })
  if (existsSync(join(src, 'migrations'))) await cp(join(src, 'migrations'), join(out, 'migrations'), { recursive: true })
  const size = (await stat(join(out, 'index.mjs'))).size
  const extra = await Promise.all(workers.map(async (w) => `${w} ${kb((await stat(join(out, w))).size).trim()}`))
  console.log(`build: dist/${name}/index.mjs ${kb(size)}${extra.length ? `  (+ ${extra.join(', ')})` : ''}`)
}
