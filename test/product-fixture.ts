/**
 * The catalog most app tests need beside the app they test: a product app on the test database,
 * the file's signing keys, and an admin token to stock it.
 */
import type pg from 'pg'
import { productApp } from '../functions/product/app.ts'
import { appDeps, testKeys } from './support.ts'

export type CatalogFixture = {
  keys: Awaited<ReturnType<typeof testKeys>>
  /** The product function's app, in-process. */
  catalog: ReturnType<typeof productApp>
  /** A bearer token with the admin role. */
  admin: string
}

/**
 * Builds the fixture on `pool`. Meant for `beforeAll`:
 * `let { keys, catalog, admin } = {} as CatalogFixture; beforeAll(async () => void ({ keys, catalog, admin } = await catalogFixture(pool)))`.
 */
export async function catalogFixture(pool: pg.Pool): Promise<CatalogFixture> {
  const keys = await testKeys()
  const catalog = productApp({ pool, ...appDeps(), verify: keys.verify })
  return { keys, catalog, admin: await keys.tokenFor({ role: 'admin' }) }
}
