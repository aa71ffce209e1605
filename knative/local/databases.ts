/**
 * @module
 * Databases on a PostgreSQL server, made and dropped through the server's maintenance database
 * (`postgres`), so the database a URL names need not exist yet. And the check `npm start` makes
 * before it starts anything: a DATABASE_URL that cannot work is one line at once, not every
 * function retrying and dying in turn.
 */
import pg from 'pg'

/** `url` with its database replaced by `name`. */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url)
  u.pathname = `/${encodeURIComponent(name)}`
  return u.href
}

/** The database a URL names (none named: the user's name, as libpq does). */
export function databaseOf(url: string): string {
  const u = new URL(url)
  return decodeURIComponent(u.pathname.slice(1)) || u.username || 'postgres'
}

/** `host:port` of a URL, for messages. */
export const serverOf = (url: string): string => {
  const u = new URL(url)
  return `${u.hostname}:${u.port || 5432}`
}

/**
 * Runs `fn` on a client of the server's maintenance database: `postgres`, or `template1` where
 * the server has no `postgres`. Connection failures throw `DatabaseSetupError` (one line).
 */
export async function withMaintenanceClient<T>(serverUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  for (const name of ['postgres', 'template1']) {
    const client = new pg.Client({ connectionString: withDatabase(serverUrl, name) })
    // A connection lost while connected emits 'error', which unheard would end the process; the
    // connect or statement it cut short rejects all the same.
    client.on('error', () => {})
    try {
      await client.connect()
    } catch (err) {
      await client.end().catch(() => {})
      if (name === 'postgres' && codeOf(err) === '3D000') continue
      throw new DatabaseSetupError(cannotConnect(serverUrl, err))
    }
    try {
      return await fn(client)
    } finally {
      await client.end()
    }
  }
  throw new DatabaseSetupError(`PostgreSQL at ${serverOf(serverUrl)} has neither a postgres nor a template1 database to connect to`)
}

/** Makes database `name` on the server of `serverUrl`; resolves the URL of the new database. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  await withMaintenanceClient(serverUrl, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`))
  return withDatabase(serverUrl, name)
}

/** Drops database `name` (ending its sessions), if it exists. */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await withMaintenanceClient(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`))
}

/**
 * Makes sure the database `url` names can be connected to: creates it when it is missing and the
 * role may (and `say`s so), else throws `DatabaseSetupError` with one line that names the
 * database and how to create it. Any other reason not to connect (refused, authentication) is
 * one line too.
 */
export async function ensureDatabase(url: string, say: (line: string) => void = () => {}): Promise<void> {
  // Without a name, pg connects to the database named after the user (often `postgres`): the shop
  // would quietly put its schemas into the server's maintenance database.
  if (!/^\/[^/]+/.test(new URL(url).pathname)) {
    throw new DatabaseSetupError(`DATABASE_URL names no database: add one to its path, e.g. ${url.replace(/\/*$/, '')}/shop`)
  }
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {}) // as in withMaintenanceClient
  try {
    await client.connect()
    return
  } catch (err) {
    if (codeOf(err) !== '3D000') throw new DatabaseSetupError(cannotConnect(url, err))
  } finally {
    await client.end().catch(() => {})
  }
  const name = databaseOf(url)
  const user = new URL(url).username || 'postgres'
  try {
    await createDatabase(url, name)
    say(`created the database ${name} on ${serverOf(url)}`)
  } catch (err) {
    // Made meanwhile by another process (two runners, a function): what was wanted.
    if (codeOf(err) === '42P04') return
    const why = err instanceof DatabaseSetupError ? err.message : (err as Error).message
    const { hostname, port } = new URL(url)
    throw new DatabaseSetupError(
      `the database "${name}" does not exist on ${serverOf(url)}, and it could not be created (${why}): ` +
        `create it with \`createdb -h ${hostname} -p ${port || 5432} -U <a role that may> ${name}\` (or CREATE DATABASE ${name} OWNER ${user}), or change DATABASE_URL`,
    )
  }
}

/** A connection or database-setup problem, said in one line (the runner prints it as it is). */
export class DatabaseSetupError extends Error {
  override name = 'DatabaseSetupError'
}

const codeOf = (err: unknown) => (err as { code?: string }).code

/** Why a connection failed, in one line, with what to check. */
function cannotConnect(url: string, err: unknown): string {
  // A host name with several addresses fails with an AggregateError whose own message is empty.
  const first = err instanceof AggregateError && err.errors.length ? (err.errors[0] as Error) : (err as Error)
  const reason = first?.message || codeOf(first) || String(err)
  const what = codeOf(first) === 'ECONNREFUSED' ? 'is it running? ' : ''
  return `cannot connect to PostgreSQL at ${serverOf(url)} as ${new URL(url).username || 'the default user'} (${reason}): ${what}check DATABASE_URL`
}
