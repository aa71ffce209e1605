/**
 * An embedded PostgreSQL for machines without a server: PGlite (PostgreSQL in WebAssembly)
 * served over the wire protocol on a loopback port, so `pg` talks to it unchanged.
 *
 * PGlite is ONE session. Many connections can share it only if each gets the session for a
 * whole unit of work: an extended-protocol exchange up to its Sync (the unnamed statement and
 * portal are per session, so interleaving two exchanges binds one client's parameters to the
 * other's statement), and a whole transaction. This server hands the session over at those
 * boundaries; @electric-sql/pglite-socket hands it over per message, which breaks under load.
 * Named statements must be off for the same reason (DATABASE_NAMED_STATEMENTS=off).
 */
import { createServer, type Socket } from 'node:net'
import { PGlite } from '@electric-sql/pglite'

const SSL_REQUEST = 80877103
const CANCEL_REQUEST = 80877102

/** Starts one on a loopback port (0: a free one); `dataDir` keeps its data on disk, else in memory. */
export async function startEmbeddedPostgres({ dataDir, port = 0 }: { dataDir?: string; port?: number } = {}) {
  const db = await PGlite.create(dataDir)
  const session = sessionLock(db)
  const sockets = new Set<Socket>()
  let nextId = 1

  const server = createServer((socket) => {
    const id = nextId++
    sockets.add(socket)
    socket.setNoDelay(true)
    let buffer = Buffer.alloc(0)
    let started = false
    let work = Promise.resolve()

    const run = async (message: Uint8Array, endsExchange: boolean) => {
      await session.acquire(id)
      try {
        await db.execProtocolRawStream(message, { onRawData: (data) => socket.writable && socket.write(data) })
      } finally {
        if (endsExchange) session.release(id)
      }
    }

    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      const messages: { bytes: Uint8Array; type: string }[] = []
      for (;;) {
        if (!started) {
          if (buffer.length < 8) break
          const length = buffer.readInt32BE(0)
          if (buffer.length < length) break
          const code = buffer.readInt32BE(4)
          const bytes = buffer.subarray(0, length)
          buffer = buffer.subarray(length)
          if (code === SSL_REQUEST) socket.write('N')
          else if (code === CANCEL_REQUEST) socket.end()
          else {
            started = true
            messages.push({ bytes: Uint8Array.from(bytes), type: 'startup' })
          }
          continue
        }
        if (buffer.length < 5) break
        const length = 1 + buffer.readInt32BE(1)
        if (buffer.length < length) break
        messages.push({ bytes: Uint8Array.from(buffer.subarray(0, length)), type: String.fromCharCode(buffer[0]!) })
        buffer = buffer.subarray(length)
      }
      for (const { bytes, type } of messages) {
        work = work.then(async () => {
          if (type === 'X') {
            socket.end()
            return
          }
          // A simple Query, a Sync, and the startup each end an exchange.
          await run(bytes, type === 'Q' || type === 'S' || type === 'startup')
        }).catch(() => {
          socket.destroy()
        })
      }
    })

    socket.on('close', () => {
      sockets.delete(socket)
      void work.then(() => session.abandon(id))
    })
    socket.on('error', () => socket.destroy())
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const { port: bound } = server.address() as { port: number }

  return {
    url: `postgres://postgres@127.0.0.1:${bound}/postgres`,
    port: bound,
    stop: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await db.close()
    },
  }
}

/**
 * Who has the session. A connection keeps it from its first message to the end of its
 * exchange, and on until COMMIT or ROLLBACK while a transaction is open.
 */
function sessionLock(db: PGlite) {
  let owner: number | undefined
  const waiting: { id: number; go: () => void }[] = []
  const handOver = () => {
    const next = waiting.shift()
    owner = next?.id
    next?.go()
  }
  return {
    acquire(id: number): Promise<void> {
      if (owner === id) return Promise.resolve()
      if (owner === undefined) {
        owner = id
        return Promise.resolve()
      }
      return new Promise((go) => waiting.push({ id, go }))
    },
    release(id: number) {
      if (owner === id && !db.isInTransaction()) handOver()
    },
    /** A connection that went away: roll back what it left open, free the session. */
    async abandon(id: number) {
      if (owner !== id) return
      if (db.isInTransaction()) await db.exec('ROLLBACK').catch(() => {})
      handOver()
    },
  }
}
