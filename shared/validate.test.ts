import { describe, expect, it } from 'vitest'
import * as v from 'valibot'
import { Text, Uuid, bodyInt, fieldErrors } from './validate.ts'

const errors = (schema: v.GenericSchema, input: unknown) => {
  const result = v.safeParse(schema, input)
  return result.success ? [] : fieldErrors(result.issues)
}

describe('Text', () => {
  it.each([
    ['a NUL', 'a\u0000b', 'must not contain the NUL character (U+0000)'],
    ['a lone high surrogate', 'a\ud800', 'must be valid Unicode text (it has an unpaired surrogate)'],
    ['a lone low surrogate', '\udc00b', 'must be valid Unicode text (it has an unpaired surrogate)'],
    ['two surrogates in the wrong order', '\udc00\ud800', 'must be valid Unicode text (it has an unpaired surrogate)'],
    ['a number', 42, 'must be a string'],
    ['a list', ['a'], 'must be a string'],
  ])('refuses %s', (_, input, message) => {
    expect(errors(v.strictObject({ name: Text }), { name: input })).toContainEqual({ path: 'name', message })
  })

  it.each([['empty', ''], ['an emoji (a surrogate pair)', 'mug 😀'], ['other controls', '\u0001\u001f\u007f'], ['right-to-left marks', '\u202eabc'], ['U+FFFF', '\uffff']])(
    'takes %s',
    (_, input) => {
      expect(v.parse(Text, input)).toBe(input)
    },
  )
})

describe('Uuid', () => {
  it('writes a UUID in lower case, as PostgreSQL does', () => {
    expect(v.parse(Uuid, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')
  })

  it.each([['not a uuid'], ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\u0000'], [42], [null]])('refuses %j: "must be a UUID"', (input) => {
    expect(errors(v.strictObject({ id: Uuid }), { id: input })).toEqual([{ path: 'id', message: 'must be a UUID' }])
  })
})

describe('fieldErrors', () => {
  const Body = v.strictObject({ name: Text, quantity: bodyInt(1, 9), note: v.optional(Text), items: v.optional(v.array(v.strictObject({ id: Uuid }))) })

  it('says "is required" for a missing field and "is not a known field" only for an extra one', () => {
    expect(errors(Body, { colour: 'red' })).toEqual([
      { path: 'name', message: 'is required' },
      { path: 'quantity', message: 'is required' },
      { path: 'colour', message: 'is not a known field' },
    ])
    expect(errors(Body, { name: 'x', quantity: 1, items: [{}] })).toEqual([{ path: 'items.0.id', message: 'is required' }])
  })

  it('says "is required" for a loose object too', () => {
    expect(errors(v.looseObject({ order_id: Uuid }), { other: 1 })).toEqual([{ path: 'order_id', message: 'is required' }])
  })

  it('says what a value must be without echoing it, where the schema has no message of its own', () => {
    const secret = 'x'.repeat(50)
    expect(errors(v.strictObject({ flag: v.boolean(), list: v.array(v.string()), obj: v.object({}) }), { flag: secret, list: secret, obj: secret })).toEqual([
      { path: 'flag', message: 'must be true or false' },
      { path: 'list', message: 'must be a list' },
      { path: 'obj', message: 'must be an object' },
    ])
    expect(errors(Body, 'just a string')).toEqual([{ path: '(body)', message: 'must be an object' }])
    expect(errors(v.strictObject({ s: v.picklist(['a', 'b']) }), { s: secret })).toEqual([{ path: 's', message: 'must be one of "a", "b"' }])
  })
})
