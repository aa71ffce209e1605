// `npm run load`: the load generator (TypeScript), compiled and run. Arguments after `--` reach
// main.ts through process.argv.
import { runTypeScript } from '../../knative/local/run-typescript.mjs'

await runTypeScript('bench/load/main.ts', 'dist/load/main.mjs')
