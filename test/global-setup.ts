/**
 * Once per `vitest run`: a database for the tests, with every function's migrations applied,
 * made fresh for the run and dropped after. On the server `DATABASE_URL` names (the database it
 * names need not exist), or else on an embedded PostgreSQL in a throwaway directory, stopped and
 * deleted after. Either way a real PostgreSQL 15: every test runs in both setups.
 */
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'
import { DatabaseSetupError } from '../knative/local/databases.ts'
import { EmbeddedPostgresError, startThrowawayPostgres } from '../knative/local/postgres/embedded-postgres.ts'
import { buildIfStale } from '../knative/local/runner.ts'
import { createTestDatabase } from './test-database.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string
  }
}

export default async function setup(project: TestProject) {
  try {
    // The bundles, built once before any test file starts: tests that start functions as
    // processes would otherwise each find them stale and build them at the same time.
    await buildIfStale(fileURLToPath(new URL('..', import.meta.url)), () => {})
    return await prepare(project)
  } catch (err) {
    // A setup problem is one line that says what to do; thrown, vitest would bury it under
    // "No test files found" and a stack.
    if (err instanceof DatabaseSetupError || err instanceof EmbeddedPostgresError) {
      console.error(`npm test: ${err.message}`)
      process.exit(1)
    }
    throw err
  }
}

async function prepare(project: TestProject) {
  const given = process.env.DATABASE_URL
  const embedded = given ? undefined : await startThrowawayPostgres({ say: (line) => console.warn(`test setup: ${line}`) })
  try {
    const database = await createTestDatabase(given ?? embedded!.url)
    project.provide('databaseUrl', database.url)
    return async () => {
      await database.drop()
      await embedded?.stop()
    }
  } catch (err) {
    await embedded?.stop()
    throw err
  }
}
