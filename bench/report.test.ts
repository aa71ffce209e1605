import { describe, expect, it } from 'vitest'
import { formatTable, formatValue, goals, row } from './report.ts'

describe('row', () => {
  it('computes the ratio and checks a throughput goal', () => {
    const r = row({ benchmark: '1', metric: 'req/s', unit: 'req/s', subject: 900, baseline: 1000, goal: goals.ratioAtLeast(0.9) })
    expect(r.ratio).toBeCloseTo(0.9)
    expect(r).toMatchObject({ goal: '≥ 0.9×', met: true })
    expect(row({ benchmark: '1', metric: 'req/s', unit: 'req/s', subject: 899, baseline: 1000, goal: goals.ratioAtLeast(0.9) }).met).toBe(false)
  })

  it('checks latency, absolute and offset goals', () => {
    expect(row({ benchmark: '1', metric: 'p99', unit: 'ms', subject: 15, baseline: 10, goal: goals.ratioAtMost(1.5) }).met).toBe(true)
    expect(row({ benchmark: '3', metric: 'p50', unit: 'ms', subject: 150, goal: goals.below(150, 'ms') }).met).toBe(false)
    expect(row({ benchmark: '4', metric: 'cold', unit: 'ms', subject: 190, baseline: 40, goal: goals.within(150, 'ms') }).met).toBe(true)
    expect(row({ benchmark: '4', metric: 'cold', unit: 'ms', subject: 191, baseline: 40, goal: goals.within(150, 'ms') }).met).toBe(false)
  })

  it('does not meet a goal it cannot measure', () => {
    const r = row({ benchmark: '1', metric: 'req/s', unit: 'req/s', subject: 900, goal: goals.ratioAtLeast(0.9), note: 'no baseline' })
    expect(r.ratio).toBeUndefined()
    expect(r.met).toBe(false)
  })
})

describe('formatValue', () => {
  it('writes each unit as people read it', () => {
    expect(formatValue(12345.6, 'req/s')).toBe('12,346 req/s')
    expect(formatValue(3.456, 'ms')).toBe('3.46 ms')
    expect(formatValue(45.67, 'ms')).toBe('45.7 ms')
    expect(formatValue(180.33, 'KB')).toBe('180.3 KB')
    expect(formatValue(undefined, 'ms')).toBe('–')
  })
})

describe('formatTable', () => {
  it('lines up columns and turns notes into footnotes', () => {
    const table = formatTable([
      row({ benchmark: '1 overhead', metric: 'req/s', unit: 'req/s', subject: 900, baseline: 1000, goal: goals.ratioAtLeast(0.9) }),
      row({ benchmark: '3 login', metric: 'p50', unit: 'ms', subject: 80, goal: goals.below(150, 'ms'), note: 'one connection' }),
    ])
    const lines = table.split('\n')
    expect(lines[0]).toMatch(/^benchmark\s+metric\s+subject\s+baseline\s+ratio\s+goal\s+met\?$/)
    expect(lines[2]).toMatch(/900 req\/s\s+1,000 req\/s\s+0\.90×\s+≥ 0\.9×\s+yes$/)
    expect(lines[3]).toContain('p50 [1]')
    expect(lines.at(-1)).toBe('[1] one connection')
  })
})
