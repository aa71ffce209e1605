/**
 * @module
 * A TCP proxy a test owns in front of PostgreSQL, to play an outage without touching the server
 * (which other tests, and other people, share): the database refusing connections, resetting them
 * or not answering at all, and transactions held between two statements for as long as the test
 * says.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'

/**
 * What the proxy does with connections:
 * - `forward`: passes them on to the server, both ways;
 * - `refuse`: stops listening (a new connection gets `ECONNREFUSED`, as from a stopped server) and
 *   closes every open one (their clients see the connection end);
 * - `reset`: accepts and resets every new connection, and resets every open one (`ECONNRESET`);
 * - `blackhole`: accepts and never answers, and drops whatever open connections carry either way
 *   from now on (a network partition: only timeouts tell), until it leaves this mode, when it
 *   closes them: what they carried is lost, so they cannot go on.
 */
export type ProxyMode = 'forward' | 'refuse' | 'reset' | 'blackhole'

export type DatabaseProxy = {
  /** The database URL, through the proxy (`127.0.0.1` and the proxy's port). */
  url: string
  /** Switches mode (see `ProxyMode`); resolves once the switch is made (listening again after `refuse`). */
  setMode(mode: ProxyMode): Promise<void>
  /**
   * From now on, holds what each connection sends the server from its first chunk that contains
   * one of `markers` (a statement's text) until `resume()`: that connection's transaction waits
   * between the statement before and that one, while other connections go on.
   */
  pauseOn(...markers: string[]): void
  /** How many connections are held by `pauseOn`. */
  paused(): number
  /** Stops holding, and sends on what was held. */
  resume(): void
  /** The local ports of its open connections to the server: `client_port` in `pg_stat_activity`. */
  serverSidePorts(): number[]
  /** Closes it and every connection through it. */
  close(): Promise<void>
}

type Link = { client: Socket; upstream: Socket; held: Buffer[] | undefined; dropping: boolean }

/** Starts a proxy on a free loopback port in front of the server `databaseUrl` names, forwarding. */
export async function startDatabaseProxy(databaseUrl: string): Promise<DatabaseProxy> {
  const target = new URL(databaseUrl)
  const links = new Set<Link>()
  // Connections accepted in `blackhole` mode: never forwarded, never answered.
  const sinks = new Set<Socket>()
  let mode: ProxyMode = 'forward'
  let markers: Buffer[] = []

  const server = createServer((client) => {
    client.on('error', () => {})
    if (mode === 'reset') return void client.resetAndDestroy()
    if (mode === 'blackhole') {
      sinks.add(client)
      client.on('close', () => sinks.delete(client))
      client.resume()
      return
    }
    const upstream = connect(Number(target.port || 5432), target.hostname)
    upstream.on('error', () => {})
    const link: Link = { client, upstream, held: undefined, dropping: false }
    links.add(link)
    client.on('data', (chunk: Buffer) => {
      if (link.dropping) return
      if (!link.held && markers.some((m) => chunk.includes(m))) link.held = []
      if (link.held) link.held.push(chunk)
      else upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!link.dropping) client.write(chunk)
    })
    // The server's last words (a FATAL for a terminated backend) reach the client before its end.
    upstream.on('close', () => {
      links.delete(link)
      client.end()
    })
    client.on('close', () => {
      links.delete(link)
      upstream.destroy()
    })
  })

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  await listen(0)
  const port = (server.address() as AddressInfo).port
  const cutAll = (how: 'end' | 'reset') => {
    for (const { client, upstream } of links) {
      if (how === 'reset') client.resetAndDestroy()
      else client.destroy()
      upstream.destroy()
    }
    links.clear()
    for (const sink of sinks) sink.destroy()
    sinks.clear()
  }

  const url = new URL(databaseUrl)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return {
    url: url.href,
    async setMode(next) {
      if (next === mode) return
      const was = mode
      mode = next
      if (next === 'refuse') {
        await new Promise<void>((resolve) => {
          server.close(() => resolve())
          cutAll('end')
        })
      } else if (next === 'reset') {
        cutAll('reset')
      } else if (next === 'blackhole') {
        for (const link of links) link.dropping = true
      } else {
        // Back to forwarding: connections that lost data cannot go on.
        if (was === 'blackhole') cutAll('end')
        if (was === 'refuse') await listen(port)
      }
      if (was === 'refuse' && next !== 'forward') await listen(port)
    },
    pauseOn(...texts) {
      markers = texts.map((t) => Buffer.from(t))
    },
    paused: () => [...links].filter((l) => l.held).length,
    resume() {
      markers = []
      for (const link of links) {
        const held = link.held
        link.held = undefined
        for (const chunk of held ?? []) link.upstream.write(chunk)
      }
    },
    serverSidePorts: () => [...links].map((l) => l.upstream.localPort).filter((p): p is number => p !== undefined),
    close: () =>
      new Promise<void>((resolve) => {
        if (server.listening) server.close(() => resolve())
        else resolve()
        cutAll('end')
      }),
  }
}
