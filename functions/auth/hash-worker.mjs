// bcrypt on a worker thread. bcryptjs's async API still holds the event loop for up to 100 ms
// at a time, so a flood of logins would stall every other request of the instance; here it
// only takes this thread. Plain JS: workers load files as they are, in tests and in dist/.
import { parentPort } from 'node:worker_threads'
import bcrypt from 'bcryptjs'

parentPort.on('message', ({ id, op, password, hash, cost }) => {
  try {
    const result = op === 'hash' ? bcrypt.hashSync(password, cost) : bcrypt.compareSync(password, hash)
    parentPort.postMessage({ id, result })
  } catch (err) {
    parentPort.postMessage({ id, error: err instanceof Error ? err.message : String(err) })
  }
})
