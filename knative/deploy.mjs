#!/usr/bin/env node
// Deploys the shop to a Kubernetes cluster that has Knative Serving and Eventing, eventing-rabbitmq
// (with the RabbitMQ cluster and topology operators and cert-manager) and ingress-nginx.
//
//   node knative/deploy.mjs --registry registry.example.com/shop --tag 1.0.0 [--admin-email a@b] [--dry-run]
//
// Everything goes to the namespace `shop` (the manifests and Ingress hosts name it).
//
// Images first: node build.mjs --registry registry.example.com/shop --tag 1.0.0 --push
// --dry-run prints every command instead of running it (secret values never appear).
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseAllDocuments, stringify } from 'yaml'
// The one list of functions (functions/catalog.ts gives it its type for TypeScript).
import catalog from '../functions/catalog.json' with { type: 'json' }

const { values: opts } = parseArgs({
  options: {
    registry: { type: 'string' },
    tag: { type: 'string', default: 'latest' },
    'dry-run': { type: 'boolean', default: false },
    'admin-email': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (opts.help || !opts.registry) {
  console.log('usage: node knative/deploy.mjs --registry <registry/prefix> [--tag <tag>] [--admin-email <email>] [--dry-run]')
  process.exit(opts.help ? 0 : 2)
}
const root = new URL('..', import.meta.url).pathname
const ns = 'shop'
const dry = opts['dry-run']
// dead-letter first: every Trigger's dead-letter sink should be there before events flow.
const functions = [...catalog.filter((f) => f.name === 'dead-letter'), ...catalog.filter((f) => f.name !== 'dead-letter')].map((f) => f.name)
const image = (fn) => `${opts.registry.replace(/\/+$/, '')}/${fn}:${opts.tag}`
const work = mkdtempSync(join(tmpdir(), 'shop-deploy-'))

const quote = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
/** Runs a command, or prints it under --dry-run. `secret` replaces values in what is printed. */
function run(cmd, args, { input, secret = [], quiet = false } = {}) {
  const shown = [cmd, ...args].map((a) => secret.reduce((s, v) => s.replaceAll(v, '<generated>'), quote(a))).join(' ')
  console.log(`${dry ? '' : '+ '}${shown}`)
  if (dry) return ''
  return execFileSync(cmd, args, { input, encoding: 'utf8', stdio: [input ? 'pipe' : 'ignore', quiet ? 'pipe' : 'inherit', 'inherit'] }) ?? ''
}
/** True when a Secret exists (under --dry-run: assume not, to show how they are made). */
function exists(kind, name) {
  if (dry) return false
  try {
    execFileSync('kubectl', ['-n', ns, 'get', kind, name], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
const step = (title) => console.log(`\n# ${title}`)
const secretValue = () => randomBytes(24).toString('base64url')

if (!dry) {
  for (const tool of ['kubectl', 'kn']) {
    try {
      execFileSync(tool, ['version', ...(tool === 'kubectl' ? ['--client'] : [])], { stdio: 'ignore' })
    } catch {
      console.error(`deploy: ${tool} is not installed`)
      process.exit(1)
    }
  }
}

step('namespace')
run('kubectl', ['apply', '-f', join(root, 'knative/infra/000-namespace.yaml')])

step('secrets: made once, never replaced (delete one to rotate it)')
/** Creates a Secret from literal values unless it exists. */
function secret(name, values) {
  if (exists('secret', name)) return console.log(`# secret ${name} exists: kept`)
  const file = join(work, `${name}.env`)
  // Values go through a file, never the command line (where `ps` would show them).
  if (!dry) writeFileSync(file, Object.entries(values).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 })
  run('kubectl', ['-n', ns, 'create', 'secret', 'generic', name, `--from-env-file=${file}`])
}
// Function → its database role, named as the schema it owns (knative/infra/200-postgres.yaml makes them).
const roles = Object.fromEntries(catalog.map((f) => [f.name, f.schema]))
if (!exists('secret', 'postgres-roles')) {
  // The role passwords and the URLs that carry them are made together, or not at all.
  const passwords = Object.fromEntries(Object.keys(roles).map((fn) => [fn, secretValue()]))
  secret('postgres-admin', { POSTGRES_PASSWORD: secretValue() })
  secret('postgres-roles', Object.fromEntries(Object.keys(roles).map((fn) => [`${fn.toUpperCase().replace('-', '_')}_DB_PASSWORD`, passwords[fn]])))
  for (const [fn, role] of Object.entries(roles)) {
    secret(`${fn}-database`, { DATABASE_URL: `postgres://${role}:${passwords[fn]}@postgres.${ns}.svc.cluster.local:5432/shop` })
  }
} else console.log('# secret postgres-roles exists: database secrets kept')
if (!exists('secret', 'jwt-signing-key')) {
  const kid = randomUUID()
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' }
  secret('jwt-signing-key', { JWT_PRIVATE_KEY: JSON.stringify(jwk) })
  secret('jwt-public-keys', { JWT_PUBLIC_KEYS: JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' }] }) })
} else console.log('# secret jwt-signing-key exists: kept (rotate by adding the new public key to jwt-public-keys first)')
secret('grafana-admin', { password: secretValue() })
if (opts['admin-email']) secret('shop-admin', { ADMIN_EMAIL: opts['admin-email'], ADMIN_PASSWORD: secretValue() })

step('infrastructure: settings, PostgreSQL, Ingresses, monitoring; the migration Job is made anew')
// Images of the Job come from --registry/--tag through a kustomize overlay. It lives beside
// infra/ (git-ignored): kustomize refuses a resource by absolute path.
const overlay = join(root, 'knative/.deploy')
mkdirSync(overlay, { recursive: true })
writeFileSync(
  join(overlay, 'kustomization.yaml'),
  stringify({
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: ['../infra'],
    images: functions.map((fn) => ({ name: `shop/${fn}`, newName: image(fn).slice(0, image(fn).lastIndexOf(':')), newTag: opts.tag })),
  }),
)
run('kubectl', ['-n', ns, 'delete', 'job', 'migrate', '--ignore-not-found'])
run('kubectl', ['apply', '-k', overlay])
run('kubectl', ['-n', ns, 'rollout', 'status', 'statefulset/postgres', '--timeout=5m'])
run('kubectl', ['-n', ns, 'wait', '--for=condition=complete', 'job/migrate', '--timeout=10m'])

step('eventing: RabbitMQ cluster, Brokers, Triggers (delivery, parallelism), SinkBindings, PingSource, NetworkPolicy')
run('kubectl', ['apply', '-k', join(root, 'eventing')])

step('functions: each Knative Service from its YAML, through kn')
const rendered = dry ? renderOffline() : run('kubectl', ['kustomize', join(root, 'knative/services')], { quiet: true })
const services = parseAllDocuments(rendered)
  .map((doc) => doc.toJS())
  .filter((o) => o?.kind === 'Service' && o.apiVersion === 'serving.knative.dev/v1')
  .sort((a, b) => functions.indexOf(a.metadata.name) - functions.indexOf(b.metadata.name))
for (const svc of services) {
  const file = join(work, `${svc.metadata.name}.yaml`)
  writeFileSync(file, stringify(svc))
  run('kn', ['service', 'apply', svc.metadata.name, '-n', ns, '--filename', file, '--image', image(svc.metadata.name), '--wait-timeout', '300'])
}

step('what is running')
run('kn', ['service', 'list', '-n', ns])
run('kn', ['broker', 'list', '-n', ns])
run('kn', ['trigger', 'list', '-n', ns])
run('kn', ['source', 'list', '-n', ns])
run('kubectl', ['-n', ns, 'get', 'ingress'])
const address = run('kubectl', ['-n', 'ingress-nginx', 'get', 'service', 'ingress-nginx-controller', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}'], { quiet: true }).trim()
console.log(`\nThe shop: http://${address || '<ingress-nginx address>'}/api/products`)
console.log(`Grafana:  kubectl -n ${ns} port-forward svc/grafana 3000  (admin password: kubectl -n ${ns} get secret grafana-admin -o jsonpath='{.data.password}' | base64 -d)`)

// --dry-run still renders, so that its output names every Service it would apply.
function renderOffline() {
  return execFileSync('kubectl', ['kustomize', join(root, 'knative/services')], { encoding: 'utf8' })
}
