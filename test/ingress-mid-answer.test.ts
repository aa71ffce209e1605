/**
 * The local ingress when a function's connection closes in the middle of an answer (the function
 * died, or was cut off): the client must learn that the answer is incomplete, by its own
 * connection being cut, rather than wait for the rest for ever.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startIngress } from '../knative/local/ingress.ts'

let fn: Server
let ingress: Awaited<ReturnType<typeof startIngress>>

beforeAll(async () => {
  // Promises 100 bytes, sends 7, and closes the connection once they are on their way.
  fn = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '100' })
    res.write('partial', () => req.socket.end())
  })
  await new Promise<void>((resolve) => fn.listen(0, '127.0.0.1', resolve))
  const { port } = fn.address() as AddressInfo
  ingress = await startIngress({ routes: [{ prefix: '/api/things', service: 'things', ingress: 'things' }], port: 0, resolve: () => `http://127.0.0.1:${port}` })
})

afterAll(async () => {
  await ingress.stop()
  fn.closeAllConnections()
  await new Promise((resolve) => fn.close(resolve))
})

it('cuts the client’s connection when the function’s answer stops short', async () => {
  const res = await fetch(`${ingress.url}/api/things`)
  expect(res.status).toBe(200)
  const err = await res.text().then(
    (text) => new Error(`the whole body came: ${JSON.stringify(text)}`),
    (e: unknown) => e as Error,
  )
  expect(err.message).toBe('terminated')
})
