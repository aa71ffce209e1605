/**
 * A run that starts an embedded PostgreSQL and is then killed, for the tests of what such a run
 * leaves behind: `node --import tsx embedded-postgres.fixture.ts <dataDir | --throwaway>` prints
 * `ready <postmaster PID> <data directory> <watchdog PID>` and waits to be killed.
 */
import { startEmbeddedPostgres, startThrowawayPostgres } from './embedded-postgres.ts'

const [arg] = process.argv.slice(2)
const server = arg === '--throwaway' ? await startThrowawayPostgres() : await startEmbeddedPostgres({ dataDir: arg! })
process.stdout.write(`ready ${server.pid} ${server.dataDir} ${server.watchdogPid ?? 0}\n`)
setInterval(() => {}, 60_000)
