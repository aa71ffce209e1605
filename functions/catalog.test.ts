/**
 * functions/catalog.json is the one list of functions that the build, the deploy script, the local
 * runner and the tests iterate over: a function missing from it would be neither built nor
 * deployed, and a name without its directory would fail only at build time.
 */
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { functions } from './catalog.ts'

const here = new URL('./', import.meta.url)

describe('the catalog of functions', () => {
  it('lists every functions/<dir> with an index.ts, and nothing else', async () => {
    const dirs = (await readdir(here, { withFileTypes: true }))
      .filter((d) => d.isDirectory() && existsSync(new URL(`${d.name}/index.ts`, here)))
      .map((d) => d.name)
    expect(functions.map((f) => f.name).sort()).toEqual(dirs.sort())
  })

  it('names each function, schema and public group once', () => {
    for (const key of ['name', 'schema', 'group'] as const) {
      const values = functions.map((f) => f[key]).filter((v) => v !== undefined)
      expect(new Set(values).size, key).toBe(values.length)
    }
  })
})
