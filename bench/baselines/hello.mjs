// Baseline of benchmarks 1 and 4: a plain node:http hello world answering the same constant JSON
// as the bench-only app on the full middleware stack (bench/apps/trivial.ts), on every path.
//
//   PORT=8090 node bench/baselines/hello.mjs
import { createServer } from 'node:http'

const body = '{"status":"ok"}'
const server = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length })
  res.end(body)
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT || 8090), process.env.HOST || '127.0.0.1')
// SIGTERM from the bench, or the bench gone (its IPC channel closed): stop either way.
const stop = () => {
  server.close()
  server.closeAllConnections()
  process.exit(0)
}
process.once('SIGTERM', stop)
process.once('disconnect', stop)
