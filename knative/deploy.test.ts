/**
 * The deploy script, through its dry run: the commands it would run, in order, for each ingress
 * choice, and what it decides from the cluster's current state, recorded in a file
 * (`--current-state`): a fresh cluster, unchanged Brokers, a changed Broker or Trigger filter (it
 * stops before applying anything, or replaces them with --replace-brokers), and Eventing's
 * delivery-timeout feature turned off.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { functions } from '../functions/catalog.ts'
import { hasTool } from '../test/tools.ts'

const root = new URL('..', import.meta.url).pathname
type K8s = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> }

const kubectlHere = hasTool('kubectl')
// One public route per endpoint group, the storefront's at `/`, and the API documents' (served by auth).
const PUBLIC_ROUTES = [...functions.filter((f) => f.group).map((f) => f.name), 'web', 'api-docs']
const SERVED_BY: Record<string, string> = { 'api-docs': 'auth' }
const cleanup: string[] = []
afterAll(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true })
})

type DryRun = { status: number; out: string; err: string; commands: string[]; files: string }
/** `node knative/deploy.mjs --dry-run …`, with `state` recorded in a file for --current-state when given. */
function dryRun(args: string[] = [], state?: K8s[]): DryRun {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-test-'))
  cleanup.push(dir)
  const stateArgs: string[] = []
  if (state) {
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: state }))
    stateArgs.push('--current-state', join(dir, 'state.json'))
  }
  const r = spawnSync('node', [`${root}knative/deploy.mjs`, '--registry', 'registry.example.com/shop', '--tag', '1.2.3', '--dry-run', ...stateArgs, ...args], { encoding: 'utf8' })
  const files = /files it would apply are kept in (\S+)/.exec(r.stdout)?.[1] ?? ''
  if (files) cleanup.push(files)
  return { status: r.status ?? -1, out: r.stdout, err: r.stderr, commands: r.stdout.split('\n').filter((l) => /^(kubectl|kn) /.test(l)), files }
}
const objectsIn = (file: string) => parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as K8s)
/** The objects of the file a printed `kubectl apply -f <file>` applies, by the file's name. */
const applied = (run: DryRun, name: string) => objectsIn(join(run.files, name))

let eventing: K8s[]
beforeAll(() => {
  if (!kubectlHere) return
  eventing = parseAllDocuments(execFileSync('kubectl', ['kustomize', `${root}eventing`], { encoding: 'utf8' })).map((d) => d.toJS() as K8s)
})

/** Eventing's feature flags as the cluster has them; `data` as in the ConfigMap. */
const features = (data: Record<string, string> = {}, version = '1.15.2'): K8s => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'config-features', namespace: 'knative-eventing', labels: { 'app.kubernetes.io/version': version } },
  data: { _example: '…', ...data },
})

const sortKeys = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(sortKeys) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sortKeys(x)])) : v

/**
 * An object as the cluster returns it after `kubectl apply` of `applied`: the last-applied
 * annotation, Eventing's defaults (a ref's namespace), server fields and a status, keys sorted as
 * the API server sorts them. `edit` changes it afterwards, as if applied from another manifest.
 */
function asLive(applied: K8s, edit: (live: any) => void = () => {}): K8s {
  const live: any = structuredClone(applied)
  live.metadata = { ...live.metadata, namespace: 'shop', uid: crypto.randomUUID(), resourceVersion: '4711', generation: 1 }
  live.metadata.annotations = { ...live.metadata.annotations, 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(applied) }
  for (const ref of [live.spec?.delivery?.deadLetterSink?.ref, live.spec?.subscriber?.ref, live.spec?.config]) if (ref && !ref.namespace) ref.namespace = 'shop'
  if (live.kind === 'Broker' || live.kind === 'Trigger') live.status = { conditions: [{ type: 'Ready', status: 'True' }] }
  edit(live)
  return sortKeys(live) as K8s
}
/** `asLive` for `kind`/`name` of the manifests, with `edit` made to both the object and its last-applied annotation. */
function changedLive(kind: string, name: string, edit: (o: any) => void): K8s {
  const applied: any = structuredClone(eventing.find((o) => o.kind === kind && o.metadata.name === name)!)
  edit(applied)
  return asLive(applied)
}
const eventingKinds = ['Broker', 'Trigger', 'RabbitmqBrokerConfig']
/** The whole of eventing's Brokers, Triggers and config as the cluster has them, `replace` swapped in. */
const liveEventing = (...replace: K8s[]) =>
  eventing
    .filter((o) => eventingKinds.includes(o.kind))
    .map((o) => replace.find((r) => r.kind === o.kind && r.metadata.name === o.metadata.name) ?? asLive(o))
const applying = (run: DryRun) => run.commands.filter((c) => /^kubectl apply |^kn service apply |create secret|^kubectl -n shop delete /.test(c))

// Each run renders the manifests with kubectl (a second or two; more on a busy machine).
const slow = { timeout: 120_000 }

describe.skipIf(!kubectlHere)('the deploy script’s dry run', slow, () => {
  it('prints, in order: namespace, secrets, infrastructure with the Job made anew, the ingress, eventing, then each Service through kn and the waits', () => {
    const run = dryRun(['--admin-email', 'ops@example.com'])
    expect(run.status, run.err).toBe(0)
    const at = (re: RegExp) => run.commands.findIndex((l) => re.test(l))
    const order = [
      /^kubectl apply -f .*000-namespace\.yaml$/,
      /^kubectl -n shop create secret generic jwt-signing-key /,
      /^kubectl -n shop create secret generic shop-admin /,
      /^kubectl -n shop delete job migrate --ignore-not-found$/,
      /^kubectl apply -f \S+\/infra\.yaml$/,
      /^kubectl -n shop rollout status statefulset\/postgres/,
      /^kubectl -n shop wait --for=condition=complete job\/migrate/,
      /^kubectl apply -f \S+\/ingress\.yaml$/,
      /^kubectl apply -f \S+\/eventing\.yaml$/,
      /^kubectl -n shop wait --for=condition=Ready brokers\.eventing\.knative\.dev\/orders/,
      /^kn service apply dead-letter /,
      /^kn service apply payment /,
      /^kubectl -n shop wait --for=condition=Ready services\.serving\.knative\.dev\/payment/,
      /^kubectl -n shop wait --for=condition=Ready triggers\.eventing\.knative\.dev\/payment-on-order-created/,
    ]
    const positions = order.map(at)
    expect(positions.every((p) => p >= 0), JSON.stringify(positions)).toBe(true)
    expect([...positions].sort((a, b) => a - b)).toEqual(positions)
    // Each step with the time since the start, and what it would wait for.
    expect(run.out).toMatch(/^\[\d+ s\] 1\/9 checking the cluster/m)
    expect(run.out).toMatch(/^\[\d+ s\] 9\/9 summary/m)
    expect(run.out).toContain('would wait for ksvc/product Ready')
    expect(run.out).toContain('would wait for broker/orders Ready')
    expect(run.out).toMatch(/The shop: http:\/\/\S+\/$/m)
  })

  it('applies every Knative Service from its YAML with the registry’s image, and shows no secret value', () => {
    const run = dryRun()
    const lines = run.commands.filter((l) => l.startsWith('kn service apply'))
    expect(lines.map((l) => l.split(' ')[3]).sort()).toEqual(functions.map((f) => f.name).sort())
    for (const l of lines) expect(l).toMatch(/ -n shop --filename \S+\.yaml --image registry\.example\.com\/shop\/[a-z-]+:1\.2\.3 --no-wait$/)
    expect(run.out).not.toMatch(/postgres:\/\/\w+:[^@\s<]+@/)
    expect(run.out).not.toMatch(/"d":"/)
  })

  it('gives the migration Job the registry’s images', () => {
    const job = applied(dryRun(), 'infra.yaml').find((o) => o.kind === 'Job')!
    const images = [...job.spec.template.spec.initContainers, ...job.spec.template.spec.containers].map((c: { image: string }) => c.image)
    expect(images.sort()).toEqual(functions.map((f) => `registry.example.com/shop/${f.name}:1.2.3`).sort())
  })

  it('applies the NGINX Ingresses by default, and nothing of the Gateway API', () => {
    const run = dryRun()
    expect(run.out).toMatch(/ingress nginx \(NGINX Ingresses/)
    const objects = applied(run, 'ingress.yaml')
    expect(objects.map((o) => o.kind)).toEqual(PUBLIC_ROUTES.map(() => 'Ingress'))
    expect(applied(run, 'infra.yaml').filter((o) => ['Ingress', 'HTTPRoute'].includes(o.kind))).toEqual([])
  })

  it('with --ingress gateway, applies the HTTPRoutes on the Gateway named, to the Knative gateway named, and the grant in its namespace', () => {
    const run = dryRun(['--ingress', 'gateway', '--gateway', 'infra/public', '--knative-gateway', 'istio-system/knative-local-gateway'])
    expect(run.status, run.err).toBe(0)
    expect(run.out).toContain('ingress gateway (Gateway API HTTPRoutes on Gateway infra/public, forwarding to Knative\'s internal gateway istio-system/knative-local-gateway:80)')
    const objects = applied(run, 'ingress.yaml')
    const routes = objects.filter((o) => o.kind === 'HTTPRoute')
    expect(routes.map((r) => r.metadata.name).sort()).toEqual([...PUBLIC_ROUTES].sort())
    for (const r of routes) {
      expect(r.metadata.namespace).toBe('shop')
      expect(r.spec.parentRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'infra', name: 'public' }])
      expect(r.spec.rules[0].backendRefs).toEqual([{ group: '', kind: 'Service', namespace: 'istio-system', name: 'knative-local-gateway', port: 80 }])
      expect(r.spec.rules[0].filters[0].urlRewrite.hostname).toBe(`${SERVED_BY[r.metadata.name] ?? r.metadata.name}.shop.svc.cluster.local`)
    }
    const grants = objects.filter((o) => o.kind === 'ReferenceGrant')
    expect(grants.map((g) => [g.metadata.namespace, g.spec.to])).toEqual([['istio-system', [{ group: '', kind: 'Service', name: 'knative-local-gateway' }]]])
    expect(objects.filter((o) => o.kind === 'Ingress')).toEqual([])
  })

  it('takes a port for the Knative gateway, and refuses a malformed --gateway or --ingress', () => {
    const run = dryRun(['--ingress', 'gateway', '--knative-gateway', 'contour-internal/envoy-knative-local:8080'])
    expect(applied(run, 'ingress.yaml').find((o) => o.kind === 'HTTPRoute')!.spec.rules[0].backendRefs[0]).toMatchObject({ namespace: 'contour-internal', name: 'envoy-knative-local', port: 8080 })
    for (const args of [['--ingress', 'traefik'], ['--ingress', 'gateway', '--gateway', 'public'], ['--knative-gateway', 'kourier-internal']]) {
      const bad = dryRun(args)
      expect(bad.status, args.join(' ')).toBe(2)
      expect(bad.err).toMatch(/^deploy: --(ingress|gateway|knative-gateway) must be/)
    }
  })

  it('refuses --current-state outside a dry run', () => {
    const r = spawnSync('node', [`${root}knative/deploy.mjs`, '--registry', 'r.example/shop', '--current-state', '/nonexistent.json'], { encoding: 'utf8' })
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/--current-state is for dry runs/)
  })
})

// build.mjs needs no kubectl: this runs on a bare machine too.
describe('the image build', () => {
  it('builds and pushes one image per function with build.mjs --registry', () => {
    const out = execFileSync('node', [`${root}build.mjs`, 'product', '--registry', 'registry.example.com/shop', '--tag', '1.2.3', '--push', '--dry-run'], { encoding: 'utf8' })
    expect(out).toContain('docker build --build-arg FUNCTION=product -t registry.example.com/shop/product:1.2.3 .')
    expect(out).toContain('docker push registry.example.com/shop/product:1.2.3')
  })
})

describe.skipIf(!kubectlHere)('the deploy script against a recorded state', slow, () => {
  it('applies everything to a fresh cluster (Eventing installed, nothing of the shop yet)', () => {
    const run = dryRun([], [features()])
    expect(run.status, run.err).toBe(0)
    expect(run.out).toContain('delivery-timeout: not set in knative-eventing/config-features, so on (the default since Knative 1.7)')
    expect(run.out).toContain('none yet, all made new')
    expect(run.commands).toContain(`kubectl apply -f ${run.files}/eventing.yaml`)
    expect(run.commands.filter((c) => / delete (brokers|triggers|rabbitmqbrokerconfigs)\./.test(c))).toEqual([])
    expect(run.commands.filter((c) => c.includes('create secret'))).not.toEqual([])
  })

  it('applies unchanged Brokers, Triggers and config without a word, Eventing’s defaults and the server’s key order notwithstanding', () => {
    const secrets = ['postgres-roles', 'postgres-admin', 'jwt-signing-key', 'jwt-public-keys', 'grafana-admin'].map((name): K8s => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'shop' } }))
    const run = dryRun([], [features({ 'delivery-timeout': 'Enabled' }), ...liveEventing(), ...secrets])
    expect(run.status, run.err).toBe(0)
    expect(run.out).toMatch(/Brokers, Triggers, RabbitmqBrokerConfigs: 12 exist, 0 of them with a change/)
    expect(run.out).toContain('delivery-timeout: Enabled')
    expect(run.out).not.toMatch(/WARNING/)
    expect(run.commands).toContain(`kubectl apply -f ${run.files}/eventing.yaml`)
    // Secrets that exist are kept, never made again.
    expect(run.commands.filter((c) => c.includes('create secret'))).toEqual([])
    expect(run.out).toContain('secret grafana-admin exists: kept')
  })

  it('stops before applying anything when a Broker’s delivery changed, naming the Broker, the field and both values', () => {
    const orders = changedLive('Broker', 'orders', (b) => (b.spec.delivery.retry = 3))
    const run = dryRun([], [features(), ...liveEventing(orders)])
    expect(run.status).toBe(1)
    expect(run.err).toContain('Broker orders')
    expect(run.err).toContain('spec.delivery.retry: 3 in the cluster, 5 in eventing/200-broker-orders.yaml')
    expect(run.err).toMatch(/--replace-brokers/)
    expect(run.err).toMatch(/LOST/)
    expect(run.err).toMatch(/Nothing was applied\.\s*$/)
    expect(run.err).not.toContain('Broker payments')
    expect(applying(run)).toEqual([])
  })

  it('with --replace-brokers, deletes that Broker and its Triggers, loudly, then makes them anew', () => {
    const orders = changedLive('Broker', 'orders', (b) => (b.spec.delivery.retry = 3))
    const run = dryRun(['--replace-brokers'], [features(), ...liveEventing(orders)])
    expect(run.status, run.err).toBe(0)
    expect(run.out).toMatch(/^WARNING: --replace-brokers: deleting and making anew Broker orders, Trigger /m)
    expect(run.out).toMatch(/^WARNING: every event waiting in their queues is LOST/m)
    const onOrders = eventing.filter((o) => o.kind === 'Trigger' && o.spec.broker === 'orders').map((o) => o.metadata.name).sort()
    expect(onOrders.length).toBeGreaterThan(0)
    const deleteTriggers = run.commands.findIndex((c) => c === `kubectl -n shop delete triggers.eventing.knative.dev ${onOrders.join(' ')} --ignore-not-found --wait=true --timeout=5m`)
    const deleteBroker = run.commands.findIndex((c) => c === 'kubectl -n shop delete brokers.eventing.knative.dev orders --ignore-not-found --wait=true --timeout=5m')
    const apply = run.commands.findIndex((c) => c === `kubectl apply -f ${run.files}/eventing.yaml`)
    expect([deleteTriggers, deleteBroker, apply].every((i) => i >= 0), run.out).toBe(true)
    expect(deleteTriggers).toBeLessThan(deleteBroker)
    expect(deleteBroker).toBeLessThan(apply)
    expect(run.commands.filter((c) => c.includes('payments') && c.includes(' delete '))).toEqual([])
    expect(run.commands.filter((c) => c.includes('delete rabbitmqbrokerconfigs'))).toEqual([])
  })

  it('stops when a Trigger’s filter changed, and replaces only that Trigger with --replace-brokers', () => {
    const trigger = changedLive('Trigger', 'payment-on-order-created', (t) => (t.spec.filter.attributes.type = 'order.placed'))
    const stopped = dryRun([], [features(), ...liveEventing(trigger)])
    expect(stopped.status).toBe(1)
    expect(stopped.err).toContain('Trigger payment-on-order-created')
    expect(stopped.err).toContain('spec.filter.attributes.type: "order.placed" in the cluster, "order.created" in eventing/300-trigger-payment-on-order-created.yaml')
    expect(applying(stopped)).toEqual([])
    const replaced = dryRun(['--replace-brokers'], [features(), ...liveEventing(trigger)])
    expect(replaced.status, replaced.err).toBe(0)
    expect(replaced.commands.filter((c) => c.includes(' delete ') && c.includes('eventing.knative.dev'))).toEqual([
      'kubectl -n shop delete triggers.eventing.knative.dev payment-on-order-created --ignore-not-found --wait=true --timeout=5m',
    ])
  })

  it('counts a field the manifest set before and no longer has as a change, and one only the cluster has (a default) as none', () => {
    const withExtra = changedLive('Broker', 'payments', (b) => (b.spec.delivery.retryAfterMax = 'PT30S'))
    const run = dryRun([], [features(), ...liveEventing(withExtra)])
    expect(run.status).toBe(1)
    expect(run.err).toContain('spec.delivery.retryAfterMax: "PT30S" in the cluster, (none) in eventing/200-broker-payments.yaml')
    // The same field set by the cluster alone (not in the last-applied annotation): apply leaves it.
    const defaulted = asLive(eventing.find((o) => o.kind === 'Broker' && o.metadata.name === 'payments')!, (b) => (b.spec.delivery.retryAfterMax = 'PT30S'))
    expect(dryRun([], [features(), ...liveEventing(defaulted)]).status).toBe(0)
  })

  it('replaces a changed RabbitmqBrokerConfig with every Broker made from it and their Triggers', () => {
    const config = changedLive('RabbitmqBrokerConfig', 'default-config', (c) => (c.spec.queueType = 'classic'))
    const run = dryRun(['--replace-brokers'], [features(), ...liveEventing(config)])
    expect(run.status, run.err).toBe(0)
    const deleted = run.commands.filter((c) => c.includes(' delete ') && c.includes('eventing.knative.dev')).map((c) => c.split(' ')[4])
    expect(deleted).toEqual(['triggers.eventing.knative.dev', 'brokers.eventing.knative.dev', 'rabbitmqbrokerconfigs.eventing.knative.dev'])
    expect(run.commands.find((c) => c.includes('delete brokers.'))).toContain('delete brokers.eventing.knative.dev orders payments ')
    expect(run.commands.find((c) => c.includes('delete triggers.'))?.split(' ').filter((w) => w.includes('-on-'))).toHaveLength(eventing.filter((o) => o.kind === 'Trigger').length)
  })

  it.each([
    ['disabled', features({ 'delivery-timeout': 'disabled' }), /delivery-timeout feature is "disabled"/],
    ['allowed (only "enabled" lets a timeout through)', features({ 'delivery-timeout': 'Allowed' }), /delivery-timeout feature is "Allowed"/],
    ['not set, on Eventing 1.6 (off by default there)', features({}, '1.6.3'), /Knative Eventing is 1\.6: before 1\.7/],
  ])('stops when Eventing’s delivery-timeout is %s, naming the ConfigMap, the key and the fix', (_, configMap, message) => {
    const run = dryRun([], [configMap])
    expect(run.status).toBe(1)
    expect(run.err).toMatch(message)
    expect(run.err).toMatch(/config-features/)
    expect(run.err).toMatch(/knative-eventing/)
    expect(run.err).toContain(`kubectl -n knative-eventing patch configmap config-features --type merge -p '{"data":{"delivery-timeout":"enabled"}}'`)
    expect(run.err).toMatch(/Nothing was applied\.\s*$/)
    expect(applying(run)).toEqual([])
  })

  it('stops when Eventing is not installed (no config-features)', () => {
    const run = dryRun([], [])
    expect(run.status).toBe(1)
    expect(run.err).toMatch(/no ConfigMap config-features in namespace knative-eventing/)
    expect(applying(run)).toEqual([])
  })

  it('notes a Gateway that is not there, and the NGINX Ingresses an earlier deploy left', () => {
    const ingress: K8s = { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'auth', namespace: 'shop', labels: { 'app.kubernetes.io/part-of': 'shop' } } }
    const run = dryRun(['--ingress', 'gateway', '--gateway', 'infra/public'], [features(), ingress])
    expect(run.status, run.err).toBe(0)
    expect(run.out).toContain('note: Gateway infra/public was not found; the HTTPRoutes wait for it')
    expect(run.out).toMatch(/note: the NGINX Ingresses of an earlier deploy \(auth\) stay, .* kubectl -n shop delete ingress -l /)
    const gateway: K8s = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'public', namespace: 'infra' } }
    expect(dryRun(['--ingress', 'gateway', '--gateway', 'infra/public'], [features(), gateway]).out).not.toContain('was not found')
  })
})

/**
 * A stand-in for the cluster: `kubectl` and `kn` first on the PATH, answering `get` from `cluster`
 * and taking everything else (apply, create, delete, wait) as done, except the waits named in
 * `failing`. `kubectl kustomize` and `version` go to the real kubectl. Every call is logged.
 */
function standIn(cluster: { objects: K8s[]; missingKinds?: string[]; failing?: string[] }) {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-standin-'))
  cleanup.push(dir)
  const realKubectl = execFileSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).trim()
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify(cluster))
  const script = (tool: string) => `#!/usr/bin/env node
const { appendFileSync, readFileSync } = require('node:fs')
const { spawnSync } = require('node:child_process')
const args = process.argv.slice(2)
appendFileSync(${JSON.stringify(join(dir, 'calls.log'))}, ${JSON.stringify(tool)} + ' ' + args.join(' ') + '\\n')
if (${JSON.stringify(tool)} === 'kn') process.exit(0)
if (args[0] === 'kustomize' || args[0] === 'version') process.exit(spawnSync(${JSON.stringify(realKubectl)}, args, { stdio: 'inherit' }).status)
const cluster = JSON.parse(readFileSync(${JSON.stringify(join(dir, 'cluster.json'))}, 'utf8'))
const flag = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined)
const positional = args.filter((a, i) => !a.startsWith('-') && !['-n', '-l', '-o'].includes(args[i - 1]))
if (args[0] === 'get') {
  const [, type, name] = positional
  if ((cluster.missingKinds ?? []).includes(type)) { console.error('error: the server doesn\\'t have a resource type "' + type + '"'); process.exit(1) }
  const kind = (o) => ({ configmap: 'ConfigMap', secrets: 'Secret', 'services.serving.knative.dev': 'Service', 'brokers.eventing.knative.dev': 'Broker', 'triggers.eventing.knative.dev': 'Trigger', 'rabbitmqbrokerconfigs.eventing.knative.dev': 'RabbitmqBrokerConfig', 'ingresses.networking.k8s.io': 'Ingress', 'httproutes.gateway.networking.k8s.io': 'HTTPRoute', 'gateways.gateway.networking.k8s.io': 'Gateway', 'customresourcedefinitions.apiextensions.k8s.io': 'CustomResourceDefinition' })[type] === o.kind
  const namespace = flag('-n')
  const found = cluster.objects.filter((o) => kind(o) && (!namespace || o.metadata.namespace === namespace) && (!name || o.metadata.name === name))
  if (name && found.length === 0) { console.error('Error from server (NotFound): ' + type + ' "' + name + '" not found'); process.exit(1) }
  console.log(JSON.stringify(name ? found[0] : { apiVersion: 'v1', kind: 'List', items: found }))
  process.exit(0)
}
if ((args[0] === 'wait' || args[2] === 'wait' || args[2] === 'rollout') && (cluster.failing ?? []).some((f) => args.includes(f))) {
  console.error('error: timed out waiting for the condition on ' + positional.at(-1)); process.exit(1)
}
`
  for (const tool of ['kubectl', 'kn']) writeFileSync(join(dir, tool), script(tool), { mode: 0o755 })
  const deploy = (args: string[]) => {
    const r = spawnSync('node', [`${root}knative/deploy.mjs`, '--registry', 'registry.example.com/shop', '--tag', '1.2.3', ...args], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    })
    let calls: string[] = []
    try {
      calls = readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n')
    } catch {}
    return { status: r.status ?? -1, out: r.stdout, err: r.stderr, calls }
  }
  return { dir, deploy }
}

const ready = { conditions: [{ type: 'Ready', status: 'True' }] }
/** A cluster with Eventing and its prerequisites, everything of the shop there and Ready, and a Gateway with an address. */
function readyCluster(): K8s[] {
  const named = (apiVersion: string, kind: string, name: string, extra: object = {}) => ({ apiVersion, kind, metadata: { name, namespace: 'shop' }, ...extra }) as K8s
  return [
    features(),
    ...liveEventing(),
    ...functions.map((f) => named('serving.knative.dev/v1', 'Service', f.name, { status: ready })),
    ...functions.filter((f) => f.group).map((f) => named('gateway.networking.k8s.io/v1', 'HTTPRoute', f.name, { status: { parents: [{ parentRef: { name: 'public' }, conditions: [{ type: 'Accepted', status: 'True' }, { type: 'ResolvedRefs', status: 'True' }] }] } })),
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'public', namespace: 'infra' }, status: { addresses: [{ type: 'IPAddress', value: '203.0.113.7' }] } } as K8s,
    { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'httproutes.gateway.networking.k8s.io', annotations: { 'gateway.networking.k8s.io/bundle-version': 'v1.3.0' } } } as K8s,
    named('v1', 'Secret', 'grafana-admin', { data: { password: 'c2VjcmV0LXZhbHVl' } }),
  ]
}

describe.skipIf(!kubectlHere)('the deploy script against a stand-in cluster (kubectl and kn that answer from a file)', slow, () => {
  it('reads the cluster, applies, says what it waits for and for how long, and sums up each Service, Broker, Trigger and route', () => {
    const { deploy } = standIn({ objects: readyCluster() })
    const run = deploy(['--ingress', 'gateway', '--gateway', 'infra/public'])
    expect(run.status, run.err + run.out).toBe(0)
    expect(run.out).toContain('waiting for ksvc/product Ready')
    expect(run.out).toMatch(/^  ksvc\/product Ready after \d+ s$/m)
    expect(run.out).toMatch(/^\[\d+ s\] 7\/9 functions/m)
    expect(run.out).toContain('URL        http://203.0.113.7/')
    expect(run.out).toMatch(/^ {4}product +Ready$/m)
    expect(run.out).toMatch(/^ {4}orders +Ready$/m)
    expect(run.out).toMatch(/^ {4}payment-on-order-created +Ready$/m)
    expect(run.out).toMatch(/^ {4}product +Accepted yes, ResolvedRefs yes$/m)
    expect(run.out).toMatch(/^Deployed in \d+ s\.$/m)
    expect(run.out).toContain('secret grafana-admin exists: kept')
    // What it applied, in order, and the files it applied from are gone with it (secrets' env files among them).
    const applies = run.calls.filter((c) => / apply /.test(c))
    const files = applies.map((c) => c.split(' ').at(-1)!.split('/').at(-1))
    expect(files.slice(0, 4)).toEqual(['000-namespace.yaml', 'infra.yaml', 'ingress.yaml', 'eventing.yaml'])
    expect(files.slice(4)).toEqual(run.calls.filter((c) => c.startsWith('kn service apply')).map(() => '--no-wait'))
    expect(files.length).toBeGreaterThan(4)
    const file = run.calls.find((c) => c.includes('eventing.yaml'))!.split(' ').at(-1)!
    expect(() => readFileSync(file)).toThrow(/ENOENT/)
  })

  it('stops before applying anything when the cluster lacks a prerequisite, naming each', () => {
    const { deploy } = standIn({ objects: readyCluster(), missingKinds: ['rabbitmqbrokerconfigs.eventing.knative.dev', 'certificates.cert-manager.io'] })
    const run = deploy([])
    expect(run.status).toBe(1)
    expect(run.err).toContain('the cluster lacks what the shop needs:')
    expect(run.err).toContain('eventing-rabbitmq (no RabbitmqBrokerConfig kind)')
    expect(run.err).toContain('cert-manager (no Certificate kind)')
    expect(run.calls.filter((c) => / (apply|create|delete) /.test(c))).toEqual([])
  })

  it('stops on Gateway API CRDs older than v1.2, which lack HTTPRoute timeouts', () => {
    const cluster = readyCluster().map((o) => (o.kind === 'CustomResourceDefinition' ? { ...o, metadata: { ...o.metadata, annotations: { 'gateway.networking.k8s.io/bundle-version': 'v1.1.0' } } } : o))
    const run = standIn({ objects: cluster }).deploy(['--ingress', 'gateway', '--gateway', 'infra/public'])
    expect(run.status).toBe(1)
    expect(run.err).toContain('the Gateway API CRDs v1.2 or later (these are v1.1')
  })

  it('goes on past a wait that fails, names what is not ready at the end, and exits 1', () => {
    const cluster = readyCluster().map((o) => (o.kind === 'Service' && o.metadata.name === 'cart' ? { ...o, status: { conditions: [{ type: 'Ready', status: 'False', reason: 'RevisionFailed', message: 'image pull' }] } } : o))
    const run = standIn({ objects: cluster, failing: ['services.serving.knative.dev/cart'] }).deploy([])
    expect(run.status).toBe(1)
    expect(run.out).toMatch(/^  gave up on ksvc\/cart Ready after \d+ s: error: timed out/m)
    expect(run.out).toMatch(/^ {4}cart +NOT READY \(RevisionFailed: image pull\)$/m)
    expect(run.out).toMatch(/but not everything became ready: ksvc\/cart\.$/m)
    // The other Services were still waited for.
    expect(run.calls.some((c) => c.includes('services.serving.knative.dev/payment'))).toBe(true)
  })

  it('records the cluster’s state for a later dry run, with Secrets by name only', () => {
    const { dir, deploy } = standIn({ objects: readyCluster() })
    const file = join(dir, 'recorded.json')
    const run = deploy(['--record-state', file])
    expect(run.status, run.err).toBe(0)
    const recorded = JSON.parse(readFileSync(file, 'utf8')) as { kind: string; items: K8s[] }
    expect(recorded.kind).toBe('List')
    expect(recorded.items.find((o) => o.kind === 'Secret')).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'grafana-admin', namespace: 'shop' } })
    expect(readFileSync(file, 'utf8')).not.toContain('c2VjcmV0LXZhbHVl')
    expect(recorded.items.filter((o) => o.kind === 'Broker').map((o) => o.metadata.name).sort()).toEqual(['orders', 'payments'])
    const again = dryRun(['--current-state', file])
    expect(again.status, again.err).toBe(0)
    expect(again.out).toMatch(/12 exist, 0 of them with a change/)
  })
})
