#!/usr/bin/env node
// Bundles each function of functions/catalog.json into one file: functions/<name>/index.ts ->
// dist/<name>/index.mjs, with its migrations beside it (and any *-worker.mjs it starts), and the
// API documents it serves in dist/<name>/public/ (see functions/api-docs.ts). One image per function.
//
//   node build.mjs                 build every function
//   node build.mjs auth product    build these
//   node build.mjs --registry registry.example.com/shop --tag 1.0.0 [--push] [--dry-run]
//                                  also build (and push) one image per function with the
//                                  Dockerfile; --dry-run prints the docker commands instead
import { cp, mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { execFileSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
// The one list of functions (functions/catalog.ts gives it its type for TypeScript).
import catalog from './functions/catalog.json' with { type: 'json' }

const root = new URL('.', import.meta.url).pathname
const all = catalog.map((f) => f.name)
const { values: flags, positionals: wanted } = parseArgs({
  allowPositionals: true,
  options: {
    registry: { type: 'string' },
    tag: { type: 'string', default: 'latest' },
    push: { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
  },
})
const unknown = wanted.filter((n) => !all.includes(n))
if (unknown.length) {
  console.error(`build: no such function: ${unknown.join(', ')} (there are ${all.join(', ')})`)
  process.exit(2)
}
const names = wanted.length ? wanted : all

const kb = (n) => `${(n / 1024).toFixed(1)} KB`.padStart(9)

// The API documents (functions/api-docs.ts), made from the functions' own routes and schemas, go
// beside each bundle as the public/ files the function serves: its part of the OpenAPI document,
// and for auth the merged documents and the docs page. api-docs.ts is TypeScript: bundled here
// (our sources only; packages load from node_modules) and imported.
const apiDocs = await (async () => {
  const file = join(root, 'dist', `.api-docs.${process.pid}.mjs`)
  await build({ entryPoints: [join(root, 'functions', 'api-docs.ts')], outfile: file, bundle: true, packages: 'external', platform: 'node', target: 'node20', format: 'esm', logLevel: 'warning' })
  try {
    return await import(pathToFileURL(file).href)
  } finally {
    await rm(file, { force: true })
  }
})()
const routes = apiDocs.appRoutes()

for (const name of names) {
  const src = join(root, 'functions', name)
  const out = join(root, 'dist', name)
  // Built beside dist/<name> and then renamed in, file by file: a rename replaces a file at once,
  // so a process starting the function meanwhile (npm start, a test, another build) finds either
  // the old bundle or the new one, never none or half of one.
  const staging = join(root, 'dist', `.${name}.${process.pid}`)
  await rm(staging, { recursive: true, force: true })
  const workers = (await readdir(src)).filter((f) => f.endsWith('-worker.mjs'))
  await build({
    entryPoints: [join(src, 'index.ts'), ...workers.map((w) => join(src, w))],
    outdir: staging,
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
  if (existsSync(join(src, 'migrations'))) await cp(join(src, 'migrations'), join(staging, 'migrations'), { recursive: true })
  const served = await apiDocs.writePublicFiles(name, join(staging, 'public'), routes)
  await moveInto(staging, out)
  const size = (await stat(join(out, 'index.mjs'))).size
  const extra = await Promise.all(workers.map(async (w) => `${w} ${kb((await stat(join(out, w))).size).trim()}`))
  console.log(`build: dist/${name}/index.mjs ${kb(size)}${extra.length ? `  (+ ${extra.join(', ')})` : ''}${served.length ? `  serves ${[...new Set(served.map((p) => p.replace(/^\/api\/docs\/.*/, '/api/docs')))].join(' ')}` : ''}`)
}

/** Renames every file of `from` into `to` (replacing what is there), drops what `from` lacks, removes `from`. */
async function moveInto(from, to) {
  await mkdir(to, { recursive: true })
  const fresh = new Set(await readdir(from, { recursive: true }))
  for (const entry of [...fresh].sort()) {
    const source = join(from, entry)
    if ((await stat(source)).isDirectory()) await mkdir(join(to, entry), { recursive: true })
    else await rename(source, join(to, entry))
  }
  for (const entry of (await readdir(to, { recursive: true })).sort().reverse()) {
    if (!fresh.has(entry)) await rm(join(to, entry), { recursive: true, force: true })
  }
  await rm(from, { recursive: true, force: true })
}

// Images: the Dockerfile bundles again inside the build, so an image never depends on a local dist/.
if (flags.registry) {
  const registry = flags.registry.replace(/\/+$/, '')
  for (const name of names) {
    const image = `${registry}/${name}:${flags.tag}`
    const commands = [['docker', 'build', '--build-arg', `FUNCTION=${name}`, '-t', image, '.']]
    if (flags.push) commands.push(['docker', 'push', image])
    for (const [cmd, ...args] of commands) {
      console.log(`build: ${[cmd, ...args].join(' ')}`)
      if (!flags['dry-run']) execFileSync(cmd, args, { cwd: root, stdio: 'inherit' })
    }
  }
} else if (flags.push || flags['dry-run']) {
  console.error('build: --push and --dry-run need --registry')
  process.exit(2)
}
