import { randomUUID } from 'node:crypto'
import { describe, expect, inject, it } from 'vitest'
import { DatabaseSetupError, dropDatabase, ensureDatabase, withDatabase } from './databases.ts'
import { testClient } from '../../test/support.ts'

const server = () => inject('databaseUrl')
const unique = (prefix: string) => `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 10)}`

async function exists(name: string) {
  const client = testClient(server())
  await client.connect()
  try {
    return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1
  } finally {
    await client.end()
  }
}

describe('ensureDatabase, the check npm start makes on DATABASE_URL', () => {
  it('creates a database the URL names and the server lacks, and says so', async () => {
    const name = unique('h3_missing')
    const lines: string[] = []
    try {
      await ensureDatabase(withDatabase(server(), name), (l) => lines.push(l))
      expect(await exists(name)).toBe(true)
      expect(lines).toEqual([expect.stringContaining(`created the database ${name}`)])
      // Once there, nothing more to do or say.
      await ensureDatabase(withDatabase(server(), name), (l) => lines.push(l))
      expect(lines).toHaveLength(1)
    } finally {
      await dropDatabase(server(), name)
    }
  })

  it('stops with one line naming the database and how to create it when the role may not', async () => {
    const role = unique('h3_nocreate')
    const name = unique('h3_missing')
    const admin = testClient(server())
    await admin.connect()
    await admin.query(`CREATE ROLE ${role} LOGIN NOCREATEDB`)
    try {
      const url = new URL(withDatabase(server(), name))
      url.username = role
      const failure = await ensureDatabase(url.href).then(() => undefined, (err: Error) => err)
      expect(failure).toBeInstanceOf(DatabaseSetupError)
      expect(failure!.message).toMatch(new RegExp(`the database "${name}" does not exist on .*permission denied to create database.*createdb .*${name}`))
      expect(failure!.message).not.toContain('\n')
      expect(await exists(name)).toBe(false)
    } finally {
      await admin.query(`DROP ROLE ${role}`)
      await admin.end()
    }
  })

  it('refuses a URL that names no database, rather than fill the server’s default one', async () => {
    const url = new URL(server())
    url.pathname = '/'
    await expect(ensureDatabase(url.href)).rejects.toThrow(/^DATABASE_URL names no database: add one to its path, e\.g\. postgres:\/\/.*\/shop$/)
    url.pathname = ''
    await expect(ensureDatabase(url.href)).rejects.toThrow(DatabaseSetupError)
  })

  it('says in one line that nothing answers at the URL', async () => {
    const url = new URL(server())
    url.port = '1'
    await expect(ensureDatabase(url.href)).rejects.toThrow(/^cannot connect to PostgreSQL at 127\.0\.0\.1:1 .*ECONNREFUSED.*check DATABASE_URL$/)
  })
})
