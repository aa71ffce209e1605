import { describe, expect, it } from 'vitest'
import * as v from 'valibot'
import { BaseEnv, ConfigError, intVar, loadConfig, numberVar, optionalUrlVar } from './config.ts'

const Env = v.object({ ...BaseEnv, RATE: numberVar(0.8, 0, 1), WORKERS: intVar(2, 1, 8), SINK: optionalUrlVar(['http:']) })
const db = { DATABASE_URL: 'postgres://u:p@localhost:5432/shop' }

describe('loadConfig', () => {
  it('fills defaults', () => {
    expect(loadConfig(Env, db)).toMatchObject({ PORT: 8080, MIGRATE: 'auto', JWT_ISSUER: 'shop-auth', JWT_AUDIENCE: 'shop', RATE: 0.8, WORKERS: 2 })
  })

  it('takes an optional URL as unset when empty, and checks it when given', () => {
    expect(loadConfig(Env, { ...db, SINK: '' }).SINK).toBeUndefined()
    expect(loadConfig(Env, { ...db, SINK: 'http://broker/' }).SINK).toBe('http://broker/')
    expect(() => loadConfig(Env, { ...db, SINK: 'ftp://broker/' })).toThrow(/SINK: must be a http:\/\/ URL/)
  })

  it('parses given values', () => {
    expect(loadConfig(Env, { ...db, PORT: '9000', RATE: '1', MIGRATE: 'only' })).toMatchObject({ PORT: 9000, RATE: 1, MIGRATE: 'only' })
  })

  it.each([
    [{ RATE: '1.5' }, /RATE: must be a number from 0 to 1 \(got "1.5"\)/],
    [{ RATE: 'abc' }, /RATE: must be a number from 0 to 1 \(got "abc"\)/],
    [{ PORT: '70000' }, /PORT: must be a whole number from 0 to 65535/],
    [{ WORKERS: '2.5' }, /WORKERS: must be a whole number/],
    [{ MIGRATE: 'sometimes' }, /MIGRATE: must be one of auto, only, off/],
  ])('names the variable and what is wrong for %j', (env, message) => {
    expect(() => loadConfig(Env, { ...db, ...env })).toThrow(message)
  })

  it('says a required variable is unset, and never echoes a URL that may hold a password', () => {
    expect(() => loadConfig(Env, {})).toThrow(/DATABASE_URL: is required \(got unset\)/)
    let message = ''
    try {
      loadConfig(Env, { DATABASE_URL: 'mysql://user:hunter2@db/x' })
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError)
      message = (err as Error).message
    }
    expect(message).toMatch(/DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/)
    expect(message).not.toContain('hunter2')
  })
})
