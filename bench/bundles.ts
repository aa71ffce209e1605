/**
 * @module
 * The function bundles the benchmarks run: built with `node build.mjs` when one is missing or
 * older than the sources (as `npm start` does), never rebuilt needlessly, since tests running
 * beside a benchmark may be starting the same bundles.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { functions } from '../functions/catalog.ts'

export async function ensureBundles(root: string, say: (line: string) => void): Promise<void> {
  const newest = async (dir: string): Promise<number> => {
    let max = 0
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) max = Math.max(max, await newest(path))
      else if (!entry.name.endsWith('.test.ts')) max = Math.max(max, (await stat(path)).mtimeMs)
    }
    return max
  }
  const sources = Math.max(await newest(join(root, 'functions')), await newest(join(root, 'shared')))
  const built = await Promise.all(functions.map((f) => join(root, 'dist', f.name, 'index.mjs')).map((b) => (existsSync(b) ? stat(b).then((s) => s.mtimeMs) : 0)))
  if (Math.min(...built) > sources) return
  say('building the function bundles (node build.mjs)')
  const { stdout } = await promisify(execFile)(process.execPath, ['build.mjs'], { cwd: root })
  for (const line of stdout.trim().split('\n')) say(`  ${line}`)
}
