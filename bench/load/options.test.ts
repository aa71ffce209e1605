import { describe, expect, it } from 'vitest'
import { parseOptions, UsageError } from './options.ts'

const fails = (argv: string[]) => {
  try {
    parseOptions(argv)
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    return (err as Error).message
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`)
}

describe('the command line', () => {
  it('has defaults: the local stack, 20 shoppers for 20 s, 60 s to settle', () => {
    expect(parseOptions([])).toEqual({ users: 20, durationMs: 20_000, settleMs: 60_000, help: false })
  })

  it('reads every option', () => {
    const o = parseOptions([
      '--target', 'http://shop.example.com:8080/',
      '--users', '5',
      '--duration', '2m',
      '--settle', '1500ms',
      '--admin-email', 'Admin@Shop.local',
      '--admin-password', 'long enough',
      '--json', 'out.json',
    ])
    expect(o).toEqual({
      target: 'http://shop.example.com:8080',
      users: 5,
      durationMs: 120_000,
      settleMs: 1_500,
      admin: { email: 'Admin@Shop.local', password: 'long enough' },
      json: 'out.json',
      help: false,
    })
    expect(parseOptions(['--users=3', '--duration=90']).durationMs).toBe(90_000) // a bare number is seconds
    expect(parseOptions(['--duration', '1.5s', '--settle', '0s'])).toMatchObject({ durationMs: 1_500, settleMs: 0 })
    expect(parseOptions(['-h']).help).toBe(true)
  })

  it('refuses bad values, naming the option and what it got', () => {
    expect(fails(['--users', 'many'])).toBe('--users: must be a whole number from 1 to 1000 (got "many")')
    expect(fails(['--users', '0'])).toMatch(/^--users: must be a whole number from 1 to 1000/)
    expect(fails(['--users', '2.5'])).toMatch(/^--users:/)
    expect(fails(['--duration', 'soon'])).toBe('--duration: must be a time like 20s, 2m or 500ms (got "soon")')
    expect(fails(['--duration', '500ms'])).toMatch(/^--duration: must be at least 1s/)
    expect(fails(['--settle', '2h'])).toMatch(/^--settle: must be at most 60m/)
    expect(fails(['--target', 'localhost:8080'])).toMatch(/^--target: must be an http:\/\/ or https:\/\/ URL/)
    expect(fails(['--target', 'ftp://example.com'])).toMatch(/^--target:/)
    expect(fails(['--admin-email', 'not-an-email', '--admin-password', 'long enough'])).toMatch(/^--admin-email: must be an email address/)
  })

  it('never echoes the admin password', () => {
    const message = fails(['--admin-email', 'a@b.example', '--admin-password', 'short'])
    expect(message).toContain('--admin-password: must be at least 8 characters (got a value not shown)')
    expect(message).not.toContain('short')
  })

  it('wants both admin options or neither', () => {
    expect(fails(['--admin-email', 'a@b.example'])).toBe('give both --admin-email and --admin-password, or neither')
  })

  it('refuses unknown options, missing values and positionals', () => {
    expect(fails(['--user', '5'])).toMatch(/Unknown option '--user'/)
    expect(fails(['--users'])).toMatch(/--users/)
    expect(fails(['fast'])).toMatch(/positional/i)
  })

  it('reports every bad option at once, one a line', () => {
    expect(fails(['--users', 'x', '--duration', 'y']).split('\n')).toHaveLength(2)
  })
})
