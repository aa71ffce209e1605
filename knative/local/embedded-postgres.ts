/**
 * An embedded PostgreSQL for machines without a server: PGlite (PostgreSQL in WebAssembly)
 * served over the wire protocol, so `pg` talks to it unchanged.
 */
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

/** Starts one on a free loopback port; `dataDir` keeps its data on disk (in memory without one). */
export async function startEmbeddedPostgres({ dataDir, port = 0 }: { dataDir?: string; port?: number } = {}) {
  const db = await PGlite.create(dataDir)
  // PGlite has one session; the socket server queues the connections of a pool onto it.
  const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 200 })
  await server.start()
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    stop: async () => {
      await server.stop()
      await db.close()
    },
  }
}
