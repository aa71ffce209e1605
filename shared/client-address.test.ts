import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { clientAddress, clientIp, clientKey } from './client-address.ts'

const app = new Hono().get('/', (c) => c.text(clientAddress(c)))
const seen = async (forwardedFor?: string) =>
  (await app.request('/', { headers: forwardedFor === undefined ? {} : { 'X-Forwarded-For': forwardedFor } })).text()

describe('clientIp', () => {
  it('picks the address by the same rule, as an address (an IPv6 client whole, not its /64)', async () => {
    const ip = new Hono().get('/', (c) => c.text(clientIp(c) ?? 'none'))
    const of = async (header: string) => (await ip.request('/', { headers: { 'X-Forwarded-For': header } })).text()
    expect(await of('198.51.100.9, 203.0.113.7, 10.0.0.2')).toBe('203.0.113.7')
    expect(await of('2001:db8:0:1::5, 10.0.0.2')).toBe('2001:db8:0:1::5')
    expect(await of('evil')).toBe('none')
  })
})

describe('clientAddress', () => {
  it.each([
    ['one address, as the edge wrote it', '203.0.113.7', '203.0.113.7'],
    ['an edge that replaced the header, then the cluster\'s hops', ' 203.0.113.7 , 10.0.0.2, 127.0.0.1', '203.0.113.7'],
    ['an edge that appended to what the client wrote', '198.51.100.9, 203.0.113.7, 10.0.0.2, 127.0.0.1', '203.0.113.7'],
    ['a client that wrote a private address, behind an appending edge', '10.9.9.9, 203.0.113.7, 10.0.0.2', '203.0.113.7'],
    ['a client on a private network, behind an edge that replaced the header', '192.168.1.20, 10.0.0.2, 127.0.0.1', '192.168.1.20'],
    ['an IPv4-mapped IPv6 address', '::ffff:203.0.113.7, ::ffff:10.0.0.2', '203.0.113.7'],
    ['an entry that is not an address', 'evil, 203.0.113.7', '203.0.113.7'],
    ['no usable entry', 'evil, also evil', 'unknown'],
  ])('takes the right entry for %s', async (_, header, address) => {
    expect(await seen(header)).toBe(address)
  })

  it('is "unknown" without the header or a socket', async () => {
    expect(await seen()).toBe('unknown')
  })

  it('falls back to the socket peer when the function is reached without the ingress', async () => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
    await new Promise<void>((resolve) => server.once('listening', resolve))
    try {
      const { port } = server.address() as AddressInfo
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('127.0.0.1')
      expect(await (await fetch(`http://127.0.0.1:${port}/`, { headers: { 'X-Forwarded-For': '198.51.100.1' } })).text()).toBe('198.51.100.1')
    } finally {
      server.close()
    }
  })
})

describe('clientKey', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002::ff', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.33', '64:ff9b:0:0::/64'],
  ])('%s -> %s', (address, key) => {
    expect(clientKey(address)).toBe(key)
  })
})
