/**
 * `npm run redrive` (`node --import tsx knative/local/redrive.ts`): sends the stored dead letters
 * of a running shop again, each to the Broker that carries its type, through the dead-letter
 * function's `POST /internal/dead-letters/redrive`, and prints what became of each. For an
 * operator after an outage: no database access needed. Exits 0 when every event taken was sent,
 * 1 when some were not (they keep waiting; run it again), 2 when it could not ask at all.
 */
import { parseArgs } from 'node:util'
import { functions } from '../../functions/catalog.ts'

// npm start gives the functions ports in catalog order from FUNCTION_PORT_BASE (main.ts).
function defaultUrl() {
  const base = Number(process.env.FUNCTION_PORT_BASE || 8081)
  return `http://127.0.0.1:${base + functions.findIndex((f) => f.name === 'dead-letter')}`
}

const USAGE = `usage: npm run redrive -- [--url URL] [--type TYPE] [--id ID]... [--limit N]

Sends the dead letters not redriven yet, oldest first, to the Broker of their type, with their
original ids (consumers dedupe), and marks them redriven.

  --url URL     the dead-letter function (default ${defaultUrl()}, where npm start runs
                it from FUNCTION_PORT_BASE; with FUNCTION_PORT_BASE=0, the URL npm start printed)
  --type TYPE   only events of this type
  --id ID       only this event id (repeat for more)
  --limit N     at most N events (1..1000, default 100)
  --help        this text

On a cluster, where the function is cluster-local (it keeps one pod up):
  kubectl -n shop port-forward $(kubectl -n shop get pod -l serving.knative.dev/service=dead-letter -o name | head -1) 8086:8080 &
  npm run redrive -- --url http://127.0.0.1:8086`

type Outcome = { source: string; id: string; type: string; outcome: 'redriven' | 'failed'; broker?: string; error?: string }

async function main(argv: string[]): Promise<number> {
  let values
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        type: { type: 'string' },
        id: { type: 'string', multiple: true },
        limit: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    }))
  } catch (err) {
    console.error(`redrive: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  if (values.limit !== undefined && !/^\d{1,4}$/.test(values.limit)) {
    console.error(`redrive: --limit must be a whole number from 1 to 1000\n\n${USAGE}`)
    return 2
  }
  const base = values.url ?? defaultUrl()
  if (!URL.canParse(base)) {
    console.error(`redrive: --url ${base} is not a URL`)
    return 2
  }
  const url = new URL('/internal/dead-letters/redrive', base).href
  // The route checks the filters itself; its 400 says what is wrong with them.
  const body = {
    ...(values.id ? { ids: values.id } : {}),
    ...(values.type ? { type: values.type } : {}),
    ...(values.limit !== undefined ? { limit: Number(values.limit) } : {}),
  }

  let res: Response
  try {
    res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
  } catch (err) {
    const { message, cause } = err as { message?: string; cause?: { message?: string } }
    console.error(`redrive: ${url} did not answer: ${cause?.message ?? message} (is the shop running? --url names another)`)
    return 2
  }
  const text = await res.text()
  if (!res.ok) {
    console.error(`redrive: ${url} answered ${res.status}: ${problemText(text)}`)
    return 2
  }
  const { redriven, failed, events } = JSON.parse(text) as { redriven: number; failed: number; events: Outcome[] }
  for (const e of events) {
    if (e.outcome === 'redriven') console.log(`redriven  ${e.type}  ${e.id}  (${e.source}) -> ${e.broker}`)
    else console.log(`failed    ${e.type}  ${e.id}  (${e.source}): ${e.error}`)
  }
  console.log(events.length === 0 ? 'nothing to redrive' : `${redriven} redriven, ${failed} failed${failed ? ' (they keep waiting: run it again once their broker is back)' : ''}`)
  return failed > 0 ? 1 : 0
}

/** A problem+json answer in one line: its detail and bad fields, or the text as it came. */
function problemText(text: string) {
  try {
    const { detail, errors } = JSON.parse(text) as { detail?: string; errors?: { path: string; message: string }[] }
    return [detail, ...(errors ?? []).map((e) => `${e.path} ${e.message}`)].filter(Boolean).join('; ')
  } catch {
    return text
  }
}

process.exitCode = await main(process.argv.slice(2))
