import * as v from 'valibot'
import { BaseEnv, loadConfig } from '../../shared/config.ts'
import { main, startFunction } from '../../shared/server.ts'
import { deadLetterApp } from './app.ts'

const DeadLetterEnv = v.object(BaseEnv)

main('dead-letter', async () => {
  const config = loadConfig(DeadLetterEnv, process.env)
  return startFunction({
    name: 'dead-letter',
    config,
    schema: 'deadletter',
    migrations: new URL('./migrations/', import.meta.url),
    app: ({ pool, log, metrics }) => deadLetterApp({ pool, log, metrics }),
  })
})
