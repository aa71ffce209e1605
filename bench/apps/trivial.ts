/**
 * A bench-only function: the full middleware stack of createApp (request id, access log,
 * metrics, 405s, body limit, errors) in front of one route that answers a constant, started by
 * startFunction like every function. Against bench/baselines/hello.mjs it prices the stack alone.
 * Bundled like the functions (bench/run.mjs); run with MIGRATE=off (there is nothing to migrate).
 */
import * as v from 'valibot'
import { BaseEnv, loadConfig } from '../../shared/config.ts'
import { createApp } from '../../shared/http.ts'
import { main, startFunction } from '../../shared/server.ts'

main('trivial', async () => {
  const config = loadConfig(v.object(BaseEnv), process.env)
  return startFunction({
    name: 'trivial',
    config,
    schema: 'trivial',
    migrations: new URL('./migrations/', import.meta.url),
    // No pool for createApp: /healthz and /hello touch no database.
    app: ({ log, metrics }) => {
      const app = createApp({ log, metrics })
      app.get('/hello', (c) => c.json({ status: 'ok' }))
      return app
    },
  })
})
