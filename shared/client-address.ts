/**
 * @module
 * Which client a request came from, for per-client limits (auth's login limits, and the storefront
 * passing its shopper's address on to auth). Behind the ingress every request's TCP
 * peer is a proxy, so the address comes from `X-Forwarded-For`, read so that a client cannot
 * choose it:
 * - the edge writes the address it saw: ingress-nginx (by default) and the local ingress replace
 *   whatever the client sent with it; an Envoy-based Gateway appends it to what the client sent;
 * - every hop behind the edge (Kourier, the activator when it is in the path, queue-proxy) appends
 *   its peer, an address of the cluster's: loopback, private or link-local.
 * So the client is the last entry that is not such an address; when every entry is one (a client
 * on a private network, `npm start` on loopback), the edge replaced the header and the first entry
 * is the one it wrote.
 */
import type { IncomingMessage } from 'node:http'
import { BlockList, isIP } from 'node:net'
import type { Context } from 'hono'

const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i

// Where the cluster's own proxies are: loopback, private (RFC 1918, RFC 4193) and link-local.
const CLUSTER = new BlockList()
for (const [network, prefix] of [['127.0.0.0', 8], ['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['169.254.0.0', 16]] as const) {
  CLUSTER.addSubnet(network, prefix, 'ipv4')
}
for (const [network, prefix] of [['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) CLUSTER.addSubnet(network, prefix, 'ipv6')

const unmapped = (address: string) => IPV4_MAPPED.exec(address)?.[1] ?? address
const inCluster = (address: string) => CLUSTER.check(address.replace(/%.*$/, ''), isIP(address) === 6 ? 'ipv6' : 'ipv4')

/**
 * The client address of a request, as a key for per-client limits (see `clientKey`): from
 * `X-Forwarded-For`, the last entry that is not a loopback, private or link-local address (the
 * hops behind the edge), else its first entry (see the module's note); without a usable entry, the
 * socket's peer (a function reached without the ingress); else `"unknown"` (an in-process request
 * with neither). Entries that are not IP addresses are passed over.
 */
export function clientAddress(c: Context): string {
  const address = clientIp(c)
  return address ? clientKey(address) : 'unknown'
}

/**
 * The client's IP address by the same rule as `clientAddress`, as an address (not a key), or
 * undefined without a usable one: for a function that calls another on the client's behalf and
 * passes it on as `X-Forwarded-For` (the storefront calling auth).
 */
export function clientIp(c: Context): string | undefined {
  const entries = (c.req.header('X-Forwarded-For') ?? '')
    .split(',')
    .map((entry) => unmapped(entry.trim()))
    .filter((entry) => isIP(entry))
  const forwarded = entries.findLast((entry) => !inCluster(entry)) ?? entries[0]
  const socket = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket?.remoteAddress
  return forwarded ?? (socket && isIP(socket) ? socket : undefined)
}

/** The key of an IP address for per-client limits: IPv4 as it is (an IPv4-mapped IPv6 address as IPv4), IPv6 as its /64 network (`2001:db8:0:1::/64`), since one host usually holds a whole /64 and could otherwise take a fresh address for every guess. */
export function clientKey(address: string): string {
  const mapped = IPV4_MAPPED.exec(address)?.[1]
  if (mapped) return mapped
  if (isIP(address) !== 6) return address
  const [head = '', tail] = address.toLowerCase().replace(/%.*$/, '').split('::')
  // A dotted IPv4 tail (::1.2.3.4) holds the last two groups.
  const groups = (s: string) => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : [])
  const first = groups(head)
  const last = tail === undefined ? [] : groups(tail)
  const all = [...first, ...Array<string>(8 - first.length - last.length).fill('0'), ...last]
  return `${all.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`
}
