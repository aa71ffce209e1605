// `npm start`: the local runner (TypeScript), compiled and run. It builds the function bundles
// (node build.mjs) itself when they are stale.
import { runTypeScript } from './run-typescript.mjs'

await runTypeScript('knative/local/main.ts', 'dist/local/main.mjs')
