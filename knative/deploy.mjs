#!/usr/bin/env node
// Deploys the shop to a Kubernetes cluster with Knative Serving and Eventing (1.7 or later),
// eventing-rabbitmq (with the RabbitMQ cluster and messaging-topology operators and cert-manager),
// and one of the two ingress choices: ingress-nginx, or a Gateway API implementation.
//
//   node knative/deploy.mjs --registry registry.example.com/shop --tag 1.0.0 [options]   (--help lists them)
//
// Everything goes to the namespace `shop` (the manifests and the cluster-local hosts name it).
// Images first: node build.mjs --registry registry.example.com/shop --tag 1.0.0 --push
//
// Before it changes anything it reads the cluster (or, for a dry run, a recorded state) and stops
// when the deploy could not succeed: a prerequisite missing, Eventing's delivery-timeout feature
// off, or a Broker, RabbitmqBrokerConfig or Trigger filter changed (eventing-rabbitmq refuses any
// change to those: they are replaced only with --replace-brokers, their queued events lost).
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseAllDocuments, stringify } from 'yaml'
// The one list of functions (functions/catalog.ts gives it its type for TypeScript).
import catalog from '../functions/catalog.json' with { type: 'json' }

const USAGE = `usage: node knative/deploy.mjs --registry <registry/prefix> [options]

  --tag <tag>                       the images' tag (default latest)
  --ingress nginx|gateway           the public routes: NGINX Ingresses for ingress-nginx (default), or
                                    Gateway API HTTPRoutes for a Gateway of any implementation
  --gateway <namespace>/<name>      with --ingress gateway: the Gateway the HTTPRoutes attach to
                                    (default shop/shop); it must allow routes from namespace shop
  --knative-gateway <namespace>/<name>[:<port>]
                                    with --ingress gateway: the Service of Knative's internal (cluster-
                                    local) gateway the routes forward to. Default kourier-system/
                                    kourier-internal:80 (Kourier). With net-gateway-api: istio-system/
                                    knative-local-gateway (Istio), contour-internal/envoy-knative-local
                                    (Contour), the local gateway's service in its config-gateway
  --replace-brokers                 delete and make anew the Brokers, RabbitmqBrokerConfigs and
                                    Triggers whose spec changed (eventing-rabbitmq never lets them
                                    change): EVENTS WAITING IN THEIR QUEUES ARE LOST
  --admin-email <email>             make a shop admin with this email (its password in Secret shop-admin)
  --dry-run                         print every command instead of running it (no secret value appears)
  --current-state <file.json>       with --dry-run: compare with this recorded state instead of reading the
                                    cluster (for dry runs and tests; --record-state writes one)
  --record-state <file.json>        write what the deploy reads from the cluster to a file, and stop
  --help`

let opts
try {
  opts = parseArgs({
    options: {
      registry: { type: 'string' },
      tag: { type: 'string', default: 'latest' },
      ingress: { type: 'string', default: 'nginx' },
      gateway: { type: 'string', default: 'shop/shop' },
      'knative-gateway': { type: 'string', default: 'kourier-system/kourier-internal:80' },
      'replace-brokers': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      'current-state': { type: 'string' },
      'record-state': { type: 'string' },
      'admin-email': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  }).values
} catch (err) {
  usage(err.message)
}
if (opts.help) {
  console.log(USAGE)
  process.exit(0)
}
/** Says what is wrong with the command line, and how to use it; exit 2. */
function usage(problem) {
  console.error(`deploy: ${problem}\n\n${USAGE}`)
  process.exit(2)
}
const DNS_LABEL = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?'
const gatewayRef = new RegExp(`^(${DNS_LABEL})/(${DNS_LABEL}(?:\\.${DNS_LABEL})*)$`).exec(opts.gateway)
const knativeGatewayRef = new RegExp(`^(${DNS_LABEL})/(${DNS_LABEL})(?::(\\d{1,5}))?$`).exec(opts['knative-gateway'])
if (!opts['record-state'] && !opts.registry) usage('--registry is required')
if (!['nginx', 'gateway'].includes(opts.ingress)) usage(`--ingress must be nginx or gateway, not ${opts.ingress}`)
if (!gatewayRef) usage(`--gateway must be <namespace>/<name>, not ${opts.gateway}`)
if (!knativeGatewayRef) usage(`--knative-gateway must be <namespace>/<name>[:<port>], not ${opts['knative-gateway']}`)
if (opts['current-state'] && !opts['dry-run']) usage('--current-state is for dry runs (and tests): a real deploy reads the cluster itself')

const root = new URL('..', import.meta.url).pathname
const ns = 'shop'
const dry = opts['dry-run']
const gateway = { namespace: gatewayRef[1], name: gatewayRef[2] }
const knativeGateway = { namespace: knativeGatewayRef[1], name: knativeGatewayRef[2], port: Number(knativeGatewayRef[3] ?? 80) }
// dead-letter first: every Trigger's dead-letter sink should be there before events flow.
const functions = [...catalog.filter((f) => f.name === 'dead-letter'), ...catalog.filter((f) => f.name !== 'dead-letter')].map((f) => f.name)
const image = (fn) => `${opts.registry.replace(/\/+$/, '')}/${fn}:${opts.tag}`
// The files it applies (rendered, with the images and gateways filled in) and the secrets' env files.
// A dry run keeps them, to be read; a real deploy removes them, secrets included, when it ends.
const work = mkdtempSync(join(tmpdir(), 'shop-deploy-'))
if (!dry) {
  process.on('exit', () => rmSync(work, { recursive: true, force: true }))
  // Node runs no 'exit' handler when a signal ends it: Ctrl-C during a wait would leave the
  // secrets' env files behind. So a signal ends it through process.exit, which runs the handler.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopped; what was applied stays applied, and the deploy can be run again`)
      process.exit(130)
    })
  }
}

// ---------------------------------------------------------------------------------------------
// Output: steps with the time since the start, waits with what they wait for and for how long.

const started = Date.now()
/** A duration for people: `12 s`, `4 min 05 s`. */
const took = (ms) => {
  const s = Math.round(ms / 1000)
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`
}
const STEPS = ['checking the cluster', 'namespace', 'secrets', 'infrastructure', 'ingress', 'eventing', 'functions', 'triggers', 'summary']
/** Starts a step: its number, its name and detail, and the time since the deploy started. */
function step(name, detail = '') {
  console.log(`\n[${took(Date.now() - started)}] ${STEPS.indexOf(name) + 1}/${STEPS.length} ${name}${detail ? `: ${detail}` : ''}`)
}
const say = (line) => console.log(`  ${line}`)
const quote = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
const shown = (cmd, args, secret = []) => [cmd, ...args].map((a) => secret.reduce((s, v) => s.replaceAll(v, '<generated>'), quote(a))).join(' ')

/** Runs a command, or prints it under --dry-run. `secret` replaces values in what is printed. */
function run(cmd, args, { input, secret = [], quiet = false } = {}) {
  console.log(`${dry ? '' : '+ '}${shown(cmd, args, secret)}`)
  if (dry) return ''
  return execFileSync(cmd, args, { input, encoding: 'utf8', stdio: [input ? 'pipe' : 'ignore', quiet ? 'pipe' : 'inherit', 'inherit'] }) ?? ''
}

const waited = []
/**
 * Runs a command that waits for something (`what`: "ksvc/product Ready"), saying what it waits
 * for and for how long as it goes: a line rewritten every second on a terminal, a line every 15 s
 * otherwise. Under --dry-run it prints the command and what it would wait for. Resolves to
 * `{ ok, output }`; never rejects (the caller decides whether a failed wait stops the deploy).
 */
async function waitFor(what, cmd, args) {
  console.log(`${dry ? '' : '+ '}${shown(cmd, args)}`)
  waited.push(what)
  if (dry) {
    say(`would wait for ${what}`)
    return { ok: true, output: '' }
  }
  const from = Date.now()
  const tty = process.stdout.isTTY
  const progress = () => (tty ? process.stdout.write(`\r\x1b[K  waiting for ${what} (${took(Date.now() - from)})`) : say(`still waiting for ${what} (${took(Date.now() - from)})`))
  if (tty) progress()
  else say(`waiting for ${what}`)
  const ticker = setInterval(progress, tty ? 1000 : 15_000)
  const result = await new Promise((resolve) => {
    let output = ''
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.on('data', (c) => (output += c))
    child.stderr.on('data', (c) => (output += c))
    child.on('error', (err) => resolve({ ok: false, output: err.message }))
    child.on('close', (code) => resolve({ ok: code === 0, output }))
  })
  clearInterval(ticker)
  if (tty) process.stdout.write('\r\x1b[K')
  say(result.ok ? `${what} after ${took(Date.now() - from)}` : `gave up on ${what} after ${took(Date.now() - from)}: ${result.output.trim().split('\n').at(-1)}`)
  return result
}

/** Stops the deploy before it has applied anything: the message, then "Nothing was applied.", exit 1. */
function refuse(lines) {
  console.error(`\ndeploy: ${lines.join('\n')}\n\nNothing was applied.`)
  rmSync(work, { recursive: true, force: true })
  process.exit(1)
}

// ---------------------------------------------------------------------------------------------
// What the cluster has: read with kubectl, or from a file recorded before (--current-state).

/** `kubectl get … -o json`: the object or List, `undefined` when not found, `{ missingKind }` when the cluster lacks the kind. */
function kubectlGet(args) {
  try {
    return JSON.parse(execFileSync('kubectl', ['get', ...args, '-o', 'json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }))
  } catch (err) {
    const stderr = String(err.stderr ?? err.message)
    if (/NotFound|not found/.test(stderr)) return undefined
    if (/doesn't have a resource type|the server could not find the requested resource/.test(stderr)) return { missingKind: true }
    throw new Error(`kubectl get ${args.join(' ')} failed: ${stderr.trim()}`)
  }
}

/**
 * What the deploy compares with, read from the cluster: Eventing's config-features, the shop's
 * Brokers, RabbitmqBrokerConfigs and Triggers, its Ingresses or HTTPRoutes, the Gateway named,
 * and the names (never the values) of its Secrets. `missing` lists the prerequisites whose kinds
 * the cluster does not have.
 */
function readCluster() {
  const objects = []
  const missing = []
  const list = (type, extra, prerequisite) => {
    const got = kubectlGet([type, '-n', ns, ...extra])
    if (got?.missingKind) {
      if (prerequisite) missing.push(prerequisite)
      return
    }
    objects.push(...(got?.items ?? []).map((o) => ({ ...o, kind: o.kind ?? type })))
  }
  const features = kubectlGet(['configmap', 'config-features', '-n', 'knative-eventing'])
  if (features && !features.missingKind) objects.push(features)
  list('brokers.eventing.knative.dev', [], 'Knative Eventing 1.7 or later (no Broker kind)')
  list('triggers.eventing.knative.dev', [], undefined)
  list('rabbitmqbrokerconfigs.eventing.knative.dev', [], 'eventing-rabbitmq (no RabbitmqBrokerConfig kind)')
  for (const [type, prerequisite] of [
    ['services.serving.knative.dev', 'Knative Serving 1.7 or later (no Knative Service kind)'],
    ['rabbitmqclusters.rabbitmq.com', 'the RabbitMQ cluster operator (no RabbitmqCluster kind)'],
    ['exchanges.rabbitmq.com', 'the RabbitMQ messaging-topology operator (no Exchange kind)'],
    ['certificates.cert-manager.io', 'cert-manager (no Certificate kind)'],
  ]) {
    if (kubectlGet([type, '-n', ns, '--ignore-not-found'])?.missingKind) missing.push(prerequisite)
  }
  const secrets = kubectlGet(['secrets', '-n', ns])
  // Names only: a recorded state must never hold a secret value.
  for (const s of secrets?.items ?? []) objects.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: s.metadata.name, namespace: ns } })
  const ours = ['-l', 'app.kubernetes.io/part-of=shop,app.kubernetes.io/component=ingress']
  list('ingresses.networking.k8s.io', ours, undefined)
  list('httproutes.gateway.networking.k8s.io', ours, opts.ingress === 'gateway' ? 'the Gateway API CRDs v1.2 or later (no HTTPRoute kind)' : undefined)
  if (opts.ingress === 'gateway') {
    const gw = kubectlGet(['gateways.gateway.networking.k8s.io', gateway.name, '-n', gateway.namespace])
    if (gw && !gw.missingKind) objects.push(gw)
    // The HTTPRoutes set rules[].timeouts, standard since Gateway API v1.2: older CRDs refuse the field.
    let crd
    try {
      crd = kubectlGet(['customresourcedefinitions.apiextensions.k8s.io', 'httproutes.gateway.networking.k8s.io'])
    } catch {
      crd = undefined // not allowed to read CRDs: apply will say it, if it comes to that
    }
    const bundle = /^v(\d+)\.(\d+)/.exec(crd?.metadata?.annotations?.['gateway.networking.k8s.io/bundle-version'] ?? '')
    if (bundle && Number(bundle[1]) === 1 && Number(bundle[2]) < 2) missing.push(`the Gateway API CRDs v1.2 or later (these are ${bundle[0]}, without HTTPRoute timeouts)`)
  }
  return { objects, missing }
}

/** A recorded state: a List (as `kubectl get -o json` or --record-state write it), an array, or one object. */
function readStateFile(file) {
  let parsed
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    usage(`--current-state ${file}: ${err.message}`)
  }
  const items = Array.isArray(parsed) ? parsed : parsed?.kind === 'List' || Array.isArray(parsed?.items) ? parsed.items : [parsed]
  // A List inside a List (several `kubectl get` outputs gathered) is taken apart too.
  return { objects: items.flatMap((o) => (Array.isArray(o?.items) ? o.items : [o])).filter((o) => o?.kind && o?.metadata?.name), missing: [] }
}

if (opts['record-state']) {
  let read
  try {
    read = readCluster()
  } catch (err) {
    console.error(`deploy: reading the cluster failed: ${err.message}`)
    process.exit(1)
  }
  const { objects, missing } = read
  writeFileSync(opts['record-state'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2) + '\n')
  console.log(`wrote ${objects.length} objects to ${opts['record-state']}${missing.length ? `; the cluster lacks: ${missing.join('; ')}` : ''}`)
  process.exit(0)
}

// ---------------------------------------------------------------------------------------------
// What will be applied, rendered by kustomize and completed here.

/** The objects `kubectl kustomize <dir>` renders (also under --dry-run: its output names them). */
function render(dir) {
  return parseAllDocuments(execFileSync('kubectl', ['kustomize', join(root, dir)], { encoding: 'utf8' }))
    .map((doc) => doc.toJS())
    .filter(Boolean)
}
/** Writes objects as one multi-document YAML file in the work directory; returns its path. */
function writeObjects(name, objects) {
  const file = join(work, name)
  writeFileSync(file, objects.map((o) => stringify(o)).join('---\n'))
  return file
}
// The migration Job runs each function's image: `shop/<function>` in the manifests.
const infra = render('knative/infra')
for (const o of infra) {
  const pod = o.spec?.template?.spec
  for (const c of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
    const fn = /^shop\/([a-z0-9-]+)$/.exec(c.image)?.[1]
    if (fn && functions.includes(fn)) c.image = image(fn)
  }
}
const ingressObjects = render(opts.ingress === 'gateway' ? 'knative/gateway' : 'knative/ingress-nginx')
for (const o of ingressObjects) {
  if (o.kind === 'HTTPRoute') {
    o.spec.parentRefs = [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: gateway.namespace, name: gateway.name }]
    for (const rule of o.spec.rules) rule.backendRefs = rule.backendRefs.map((b) => ({ ...b, namespace: knativeGateway.namespace, name: knativeGateway.name, port: knativeGateway.port }))
  }
  if (o.kind === 'ReferenceGrant') {
    // The grant lives with what it grants: the namespace of Knative's internal gateway.
    o.metadata.namespace = knativeGateway.namespace
    o.spec.to = o.spec.to.map((t) => ({ ...t, name: knativeGateway.name }))
  }
}
const eventing = render('eventing')
const services = render('knative/services')
  .filter((o) => o.kind === 'Service' && o.apiVersion === 'serving.knative.dev/v1')
  .sort((a, b) => functions.indexOf(a.metadata.name) - functions.indexOf(b.metadata.name))

// ---------------------------------------------------------------------------------------------
// Fields eventing-rabbitmq's webhook never lets change ("Immutable fields changed"): a Broker's
// class and spec (delivery included), a RabbitmqBrokerConfig's spec, a Trigger's filter (and, in
// core Eventing, its broker).

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'
const IMMUTABLE = {
  Broker: [['metadata', 'annotations', 'eventing.knative.dev/broker.class'], ['spec']],
  RabbitmqBrokerConfig: [['spec']],
  Trigger: [['spec', 'broker'], ['spec', 'filter']],
}
const at = (o, path) => path.reduce((v, k) => (v && typeof v === 'object' ? v[k] : undefined), o)
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
// Deep equality that ignores key order (the API server sorts keys; the manifests do not).
const same = (a, b) =>
  Array.isArray(a) && Array.isArray(b)
    ? a.length === b.length && a.every((x, i) => same(x, b[i]))
    : isObject(a) && isObject(b)
      ? Object.keys({ ...a, ...b }).every((k) => same(a[k], b[k]))
      : a === b

/**
 * The fields `kubectl apply` would change, as it changes them: every field the manifest sets to
 * another value than the cluster's, and every field it set before (its last-applied annotation)
 * that the manifest no longer has. Fields only the cluster has (Eventing's defaults, such as a
 * ref's namespace) are left alone by apply, so they are no change. `[{ path, from, to }]`.
 */
function changedFields(desired, live, last, path) {
  if (desired === undefined) return last !== undefined && live !== undefined ? [{ path, from: live, to: undefined }] : []
  if (isObject(desired) && isObject(live)) {
    const changes = Object.keys(desired).flatMap((k) => changedFields(desired[k], live[k], isObject(last) ? last[k] : undefined, `${path}.${k}`))
    for (const k of Object.keys(isObject(last) ? last : {})) if (!(k in desired) && k in live) changes.push({ path: `${path}.${k}`, from: live[k], to: undefined })
    return changes
  }
  return same(desired, live) ? [] : [{ path, from: live, to: desired }]
}

/** The immutable fields of `desired` that differ from the same object in the cluster (none when it is new). */
function immutableChanges(desired, live) {
  if (!live) return []
  let last
  try {
    last = JSON.parse(live.metadata?.annotations?.[LAST_APPLIED] ?? 'null') ?? undefined
  } catch {
    last = undefined
  }
  return IMMUTABLE[desired.kind].flatMap((path) => changedFields(at(desired, path), at(live, path), at(last, path), path.map((p) => (p.includes('.') ? `[${p}]` : p)).join('.').replace('.[', '[')))
}

// ---------------------------------------------------------------------------------------------

const choice =
  opts.ingress === 'gateway'
    ? `Gateway API HTTPRoutes on Gateway ${gateway.namespace}/${gateway.name}, forwarding to Knative's internal gateway ${knativeGateway.namespace}/${knativeGateway.name}:${knativeGateway.port}`
    : 'NGINX Ingresses (ingress-nginx)'
console.log(`Deploying the shop to namespace ${ns}: images ${image('<function>')}, ingress ${opts.ingress} (${choice}).`)
if (dry) console.log('--dry-run: nothing is changed; each command is printed instead, and the files it would apply are kept in ' + work)

step('checking the cluster', 'prerequisites, Eventing features, what exists and what would change')
if (!dry) {
  for (const tool of ['kubectl', 'kn']) {
    try {
      execFileSync(tool, ['version', ...(tool === 'kubectl' ? ['--client'] : [])], { stdio: 'ignore' })
    } catch {
      refuse([`${tool} is not installed`])
    }
  }
}
let state
try {
  state = opts['current-state'] ? readStateFile(opts['current-state']) : dry ? undefined : readCluster()
} catch (err) {
  refuse([`reading the cluster failed: ${err.message}`])
}
if (!state) say('--dry-run without --current-state: the cluster is not read, and taken as fresh (Eventing’s defaults, nothing of the shop yet)')
else if (opts['current-state']) say(`the cluster as recorded in ${opts['current-state']} (--current-state)`)
if (state?.missing.length) {
  refuse([
    'the cluster lacks what the shop needs:',
    ...state.missing.map((m) => `  - ${m}`),
    'See the README’s deploy section for each prerequisite and its minimum version.',
  ])
}
const current = (kind, name, namespace = ns) => state?.objects.find((o) => o.kind === kind && o.metadata.name === name && (o.metadata.namespace ?? ns) === namespace)

// delivery.timeout (on every Broker and Trigger of ours) is refused unless this feature is on.
if (state) {
  const features = current('ConfigMap', 'config-features', 'knative-eventing')
  if (!features) {
    refuse([
      'there is no ConfigMap config-features in namespace knative-eventing: Knative Eventing is not installed (or not in knative-eventing).',
      'Install Knative Eventing 1.7 or later first.',
    ])
  }
  const value = features.data?.['delivery-timeout']
  const release = /(\d+)\.(\d+)/.exec(features.metadata?.labels?.['app.kubernetes.io/version'] ?? features.metadata?.labels?.['eventing.knative.dev/release'] ?? '')
  const older = release && (Number(release[1]) < 1 || (Number(release[1]) === 1 && Number(release[2]) < 7))
  const fix = `kubectl -n knative-eventing patch configmap config-features --type merge -p '{"data":{"delivery-timeout":"enabled"}}'`
  if (value === undefined && older) {
    refuse([
      `Knative Eventing is ${release[0]}: before 1.7 its delivery-timeout feature is off unless set, and every Broker and Trigger of the shop sets delivery.timeout.`,
      'Upgrade Knative Eventing to 1.7 or later (or turn the feature on, in ConfigMap config-features of knative-eventing, key delivery-timeout):',
      `  ${fix}`,
    ])
  }
  if (value !== undefined && value.trim().toLowerCase() !== 'enabled') {
    refuse([
      `Knative Eventing's delivery-timeout feature is "${value}" (ConfigMap config-features in namespace knative-eventing, key delivery-timeout).`,
      'Every Broker and Trigger of the shop sets delivery.timeout, which Eventing refuses unless the feature is "enabled". Turn it on, then deploy again:',
      `  ${fix}`,
    ])
  }
  say(`delivery-timeout: ${value === undefined ? 'not set in knative-eventing/config-features, so on (the default since Knative 1.7)' : value}`)
} else say('delivery-timeout: assumed on (the default since Knative 1.7); a real deploy checks knative-eventing/config-features')

// Eventing: what exists, and what could only be replaced.
const eventingKinds = ['RabbitmqBrokerConfig', 'Broker', 'Trigger']
const changed = eventing
  .filter((o) => eventingKinds.includes(o.kind))
  .map((o) => ({ object: o, fields: immutableChanges(o, current(o.kind, o.metadata.name)) }))
  .filter((c) => c.fields.length > 0)
const existing = eventing.filter((o) => eventingKinds.includes(o.kind) && current(o.kind, o.metadata.name))
say(
  existing.length === 0
    ? 'Brokers, Triggers, RabbitmqBrokerConfigs: none yet, all made new'
    : `Brokers, Triggers, RabbitmqBrokerConfigs: ${existing.length} exist, ${changed.length} of them with a change eventing-rabbitmq refuses`,
)
const value = (v) => (v === undefined ? '(none)' : JSON.stringify(v))
// The file each object comes from, for the message (kustomize's rendering does not say).
const sources = new Map(
  readdirSync(join(root, 'eventing'))
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
    .flatMap((f) => parseAllDocuments(readFileSync(join(root, 'eventing', f), 'utf8')).map((d) => [`${d.get('kind')}/${d.getIn(['metadata', 'name'])}`, `eventing/${f}`])),
)
const where = (o) => sources.get(`${o.kind}/${o.metadata.name}`) ?? 'eventing/'
const describeChanges = changed.flatMap(({ object, fields }) => [
  `  ${object.kind} ${object.metadata.name}`,
  ...fields.map((f) => `    ${f.path}: ${value(f.from)} in the cluster, ${value(f.to)} in ${where(object)}`),
])
// What goes when something is replaced: a RabbitmqBrokerConfig takes the Brokers made from it,
// a Broker takes its Triggers (their queues hang off its exchange) along.
const replaced = { RabbitmqBrokerConfig: new Set(), Broker: new Set(), Trigger: new Set() }
for (const { object } of changed) replaced[object.kind].add(object.metadata.name)
for (const b of state?.objects.filter((o) => o.kind === 'Broker') ?? []) {
  if (b.spec?.config?.kind === 'RabbitmqBrokerConfig' && replaced.RabbitmqBrokerConfig.has(b.spec.config.name)) replaced.Broker.add(b.metadata.name)
}
for (const t of state?.objects.filter((o) => o.kind === 'Trigger') ?? []) if (replaced.Broker.has(t.spec?.broker)) replaced.Trigger.add(t.metadata.name)
const replacing = Object.entries(replaced).flatMap(([kind, names]) => [...names].map((name) => `${kind} ${name}`))
if (changed.length > 0 && !opts['replace-brokers']) {
  refuse([
    'these objects in the cluster differ in fields eventing-rabbitmq never lets change (applying them fails with "Immutable fields changed"):',
    ...describeChanges,
    '',
    'Either undo the change in eventing/, or deploy again with --replace-brokers to delete and make anew',
    `${replacing.join(', ')}: every event waiting in their queues is then LOST.`,
  ])
}
if (changed.length > 0) {
  const warning = [
    `WARNING: --replace-brokers: deleting and making anew ${replacing.join(', ')}.`,
    'WARNING: every event waiting in their queues is LOST, and events published to a Broker while it is away are refused (the outbox of order keeps its own and sends them again).',
    ...describeChanges.map((l) => `WARNING: ${l}`),
  ]
  for (const line of warning) console.log(line)
  if (!dry) {
    // A last chance, for a --replace-brokers given out of habit.
    console.log('WARNING: going on in 10 s; Ctrl-C now keeps them (nothing has been applied yet).')
    await new Promise((resolve) => setTimeout(resolve, 10_000))
  }
}
if (opts.ingress === 'gateway' && state && !current('Gateway', gateway.name, gateway.namespace)) {
  say(`note: Gateway ${gateway.namespace}/${gateway.name} was not found; the HTTPRoutes wait for it (make it, or name yours with --gateway)`)
}
// The other choice's routes, from an earlier deploy, are left alone: they serve at another
// address, which clients may still use. Said here and again at the end.
const earlier = state?.objects.filter((o) => o.kind === (opts.ingress === 'gateway' ? 'Ingress' : 'HTTPRoute')) ?? []
const earlierNote =
  earlier.length === 0
    ? undefined
    : `the ${opts.ingress === 'gateway' ? 'NGINX Ingresses' : 'HTTPRoutes'} of an earlier deploy (${earlier.map((o) => o.metadata.name).join(', ')}) stay, serving at their old address;` +
      ` once clients use the new one: kubectl -n ${ns} delete ${opts.ingress === 'gateway' ? 'ingress' : 'httproutes.gateway.networking.k8s.io'} -l app.kubernetes.io/part-of=shop,app.kubernetes.io/component=ingress`
if (earlierNote) say(`note: ${earlierNote}`)

step('namespace')
run('kubectl', ['apply', '-f', join(root, 'knative/infra/000-namespace.yaml')])

step('secrets', 'made once, never replaced (delete one to rotate it)')
/** True when the Secret exists (from the state read; under --dry-run without one: no). */
const exists = (name) => Boolean(current('Secret', name))
/** Creates a Secret from literal values unless it exists. */
function secret(name, values) {
  if (exists(name)) return say(`secret ${name} exists: kept`)
  const file = join(work, `${name}.env`)
  // Values go through a file, never the command line (where `ps` would show them).
  if (!dry) writeFileSync(file, Object.entries(values).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 })
  run('kubectl', ['-n', ns, 'create', 'secret', 'generic', name, `--from-env-file=${file}`])
}
const secretValue = () => randomBytes(24).toString('base64url')
// Function → its database role, named as the schema it owns (knative/infra/200-postgres.yaml makes them).
const roles = Object.fromEntries(catalog.map((f) => [f.name, f.schema]))
if (!exists('postgres-roles')) {
  // The role passwords and the URLs that carry them are made together, or not at all.
  const passwords = Object.fromEntries(Object.keys(roles).map((fn) => [fn, secretValue()]))
  secret('postgres-admin', { POSTGRES_PASSWORD: secretValue() })
  secret('postgres-roles', Object.fromEntries(Object.keys(roles).map((fn) => [`${fn.toUpperCase().replace('-', '_')}_DB_PASSWORD`, passwords[fn]])))
  for (const [fn, role] of Object.entries(roles)) {
    secret(`${fn}-database`, { DATABASE_URL: `postgres://${role}:${passwords[fn]}@postgres.${ns}.svc.cluster.local:5432/shop` })
  }
} else say('secret postgres-roles exists: the database secrets are kept')
if (!exists('jwt-signing-key')) {
  const kid = randomUUID()
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' }
  secret('jwt-signing-key', { JWT_PRIVATE_KEY: JSON.stringify(jwk) })
  secret('jwt-public-keys', { JWT_PUBLIC_KEYS: JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' }] }) })
} else say('secret jwt-signing-key exists: kept (rotate by adding the new public key to jwt-public-keys first)')
secret('grafana-admin', { password: secretValue() })
if (opts['admin-email']) secret('shop-admin', { ADMIN_EMAIL: opts['admin-email'], ADMIN_PASSWORD: secretValue() })

step('infrastructure', 'settings, PostgreSQL, monitoring; the migration Job is made anew and each function migrates its schema')
// A Job's template cannot change: it is deleted and made again with this deploy's images.
run('kubectl', ['-n', ns, 'delete', 'job', 'migrate', '--ignore-not-found'])
run('kubectl', ['apply', '-f', writeObjects('infra.yaml', infra)])
for (const [what, args] of [
  ['statefulset/postgres rolled out', ['-n', ns, 'rollout', 'status', 'statefulset/postgres', '--timeout=5m']],
  ['job/migrate complete', ['-n', ns, 'wait', '--for=condition=complete', 'job/migrate', '--timeout=10m']],
]) {
  if (!(await waitFor(what, 'kubectl', args)).ok) {
    console.error(`\ndeploy: stopped: ${what} did not happen. Look at: kubectl -n ${ns} describe statefulset/postgres; kubectl -n ${ns} logs job/migrate --all-containers`)
    process.exit(1)
  }
}

step('ingress', choice)
run('kubectl', ['apply', '-f', writeObjects('ingress.yaml', ingressObjects)])

step('eventing', 'RabbitMQ cluster, Brokers (each Ready once its exchange is declared), Triggers, SinkBindings, PingSources, NetworkPolicy')
if (changed.length > 0) {
  say(`replacing ${replacing.join(', ')} (--replace-brokers): their queued events are lost`)
  for (const [kind, type] of [['Trigger', 'triggers.eventing.knative.dev'], ['Broker', 'brokers.eventing.knative.dev'], ['RabbitmqBrokerConfig', 'rabbitmqbrokerconfigs.eventing.knative.dev']]) {
    const names = [...replaced[kind]].sort()
    if (names.length === 0) continue
    const done = await waitFor(`${kind} ${names.join(', ')} deleted`, 'kubectl', ['-n', ns, 'delete', type, ...names, '--ignore-not-found', '--wait=true', '--timeout=5m'])
    if (!done.ok) {
      console.error(`\ndeploy: stopped: deleting ${kind} ${names.join(', ')} did not finish; look at their finalizers (kubectl -n ${ns} get ${type} -o yaml), then deploy again`)
      process.exit(1)
    }
  }
}
run('kubectl', ['apply', '-f', writeObjects('eventing.yaml', eventing)])
const notReady = []
for (const b of eventing.filter((o) => o.kind === 'Broker')) {
  const done = await waitFor(`broker/${b.metadata.name} Ready`, 'kubectl', ['-n', ns, 'wait', '--for=condition=Ready', `brokers.eventing.knative.dev/${b.metadata.name}`, '--timeout=5m'])
  if (!done.ok) notReady.push(`broker/${b.metadata.name}`)
}

step('functions', 'each Knative Service from its YAML through kn, then each one Ready')
for (const svc of services) {
  const file = join(work, `${svc.metadata.name}.yaml`)
  writeFileSync(file, stringify(svc))
  run('kn', ['service', 'apply', svc.metadata.name, '-n', ns, '--filename', file, '--image', image(svc.metadata.name), '--no-wait'])
}
// Applied all at once, they come up side by side; the waits share one deadline.
const deadline = (minutes) => {
  const end = Date.now() + minutes * 60_000
  return () => `--timeout=${Math.max(1, Math.round((end - Date.now()) / 1000))}s`
}
const servicesLeft = deadline(5)
for (const svc of services) {
  const done = await waitFor(`ksvc/${svc.metadata.name} Ready`, 'kubectl', ['-n', ns, 'wait', '--for=condition=Ready', `services.serving.knative.dev/${svc.metadata.name}`, dry ? '--timeout=300s' : servicesLeft()])
  if (!done.ok) notReady.push(`ksvc/${svc.metadata.name}`)
}

step('triggers', 'each Trigger Ready (its Broker, subscriber and dead-letter sink resolved)')
const triggersLeft = deadline(3)
for (const t of eventing.filter((o) => o.kind === 'Trigger')) {
  const done = await waitFor(`trigger/${t.metadata.name} Ready`, 'kubectl', ['-n', ns, 'wait', '--for=condition=Ready', `triggers.eventing.knative.dev/${t.metadata.name}`, dry ? '--timeout=180s' : triggersLeft()])
  if (!done.ok) notReady.push(`trigger/${t.metadata.name}`)
}

step('summary')
summary()

/** The URL, then each Service, Broker and Trigger (and, for the Gateway API, each HTTPRoute) with its readiness. */
function summary() {
  const url = (address) => `http://${address || '<address-pending>'}/`
  if (dry) {
    say(`would show the URL (${opts.ingress === 'gateway' ? `the address of Gateway ${gateway.namespace}/${gateway.name}` : 'the address ingress-nginx gives the Ingresses'}), then the readiness of each of these:`)
    say(`  Services  ${services.map((s) => s.metadata.name).join(', ')}`)
    say(`  Brokers   ${eventing.filter((o) => o.kind === 'Broker').map((o) => o.metadata.name).join(', ')}`)
    say(`  Triggers  ${eventing.filter((o) => o.kind === 'Trigger').map((o) => o.metadata.name).join(', ')}`)
    if (opts.ingress === 'gateway') say(`  HTTPRoutes ${ingressObjects.filter((o) => o.kind === 'HTTPRoute').map((o) => o.metadata.name).join(', ')}`)
    say(`would wait for ${waited.length} things in all`)
    console.log(`\nThe shop: ${url(`<${opts.ingress === 'gateway' ? `address-of-gateway-${gateway.namespace}-${gateway.name}` : 'address-of-ingress-nginx'}>`)}`)
    console.log(`\nDry run done in ${took(Date.now() - started)}; the files it would apply are in ${work}.`)
    return
  }
  const readiness = (o) => {
    const ready = (o.status?.conditions ?? []).find((c) => c.type === 'Ready')
    return ready?.status === 'True' ? 'Ready' : `NOT READY${ready ? ` (${[ready.reason, ready.message].filter(Boolean).join(': ')})` : ' (no status yet)'}`
  }
  const listed = (type) => kubectlGet([type, '-n', ns])?.items ?? []
  let address = ''
  if (opts.ingress === 'gateway') {
    const gw = kubectlGet(['gateways.gateway.networking.k8s.io', gateway.name, '-n', gateway.namespace])
    address = gw?.status?.addresses?.[0]?.value ?? ''
  } else {
    const ing = listed('ingresses.networking.k8s.io').find((i) => i.status?.loadBalancer?.ingress?.length)
    address = ing?.status.loadBalancer.ingress[0].ip ?? ing?.status.loadBalancer.ingress[0].hostname ?? ''
  }
  console.log(`  URL        ${url(address)}   (${choice})`)
  for (const [label, type] of [['Services', 'services.serving.knative.dev'], ['Brokers', 'brokers.eventing.knative.dev'], ['Triggers', 'triggers.eventing.knative.dev']]) {
    console.log(`  ${label}`)
    for (const o of listed(type)) console.log(`    ${o.metadata.name.padEnd(28)} ${readiness(o)}`)
  }
  if (opts.ingress === 'gateway') {
    console.log('  HTTPRoutes')
    for (const r of listed('httproutes.gateway.networking.k8s.io')) {
      const parent = (r.status?.parents ?? []).find((p) => p.parentRef?.name === gateway.name)
      const conditions = (parent?.conditions ?? []).map((c) => `${c.type} ${c.status === 'True' ? 'yes' : `no (${c.reason})`}`)
      console.log(`    ${r.metadata.name.padEnd(28)} ${conditions.join(', ') || `not taken by Gateway ${gateway.namespace}/${gateway.name} yet`}`)
    }
  }
  if (earlierNote) console.log(`\nNote: ${earlierNote}`)
  console.log(`\nGrafana:  kubectl -n ${ns} port-forward svc/grafana 3000  (admin password: kubectl -n ${ns} get secret grafana-admin -o jsonpath='{.data.password}' | base64 -d)`)
  if (notReady.length > 0) {
    console.log(`\nDeployed in ${took(Date.now() - started)}, but not everything became ready: ${notReady.join(', ')}.`)
    process.exit(1)
  }
  console.log(`\nDeployed in ${took(Date.now() - started)}.`)
}
