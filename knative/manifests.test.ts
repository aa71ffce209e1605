/**
 * The cluster manifests, checked offline: kustomize renders them (both ingress choices), every
 * object validates against its schema (kubernetes-models, @kubernetes-models/knative, the CRD
 * schemas kept in knative/schemas: RabbitMQ's, and Gateway API's as published, whose CEL rules
 * are evaluated too), and our own checks hold the Knative rules that schemas miss.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { run as celRun } from '@bufbuild/cel'
import { Ajv } from 'ajv'
import { beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { functions } from '../functions/catalog.ts'
import { hasTool } from '../test/tools.ts'

const require = createRequire(import.meta.url)
const root = new URL('..', import.meta.url).pathname
type K8s = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> }

function kustomize(dir: string): K8s[] {
  let out: string
  try {
    out = execFileSync('kubectl', ['kustomize', `${root}${dir}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { code?: string; stderr?: string }
    if (e.code === 'ENOENT') throw new Error('kubectl is missing: the offline checks need kubectl (with kustomize v5) on the PATH')
    throw new Error(`kubectl kustomize ${dir} failed: ${e.stderr}`)
  }
  return parseAllDocuments(out).map((d) => d.toJS() as K8s)
}

// Every check here starts from kustomize's rendering (the deploy script's dry run renders too).
const kubectlHere = hasTool('kubectl')
let knative: K8s[]
let gateway: K8s[]
let eventing: K8s[]
beforeAll(() => {
  if (!kubectlHere) return
  knative = kustomize('knative')
  gateway = kustomize('knative/gateway')
  eventing = kustomize('eventing')
})
const all = () => [...knative, ...gateway, ...eventing]
const ofKind = (objects: K8s[], kind: string, group?: string) => objects.filter((o) => o.kind === kind && (!group || o.apiVersion.startsWith(group)))
const ksvcs = () => ofKind(knative, 'Service', 'serving.knative.dev/')
const triggers = () => ofKind(eventing, 'Trigger')
const brokers = () => ofKind(eventing, 'Broker')

const crdSchemas: Record<string, string> = {
  'eventing.knative.dev/v1alpha1/RabbitmqBrokerConfig': 'knative/schemas/rabbitmqbrokerconfig.json',
  'rabbitmq.com/v1beta1/RabbitmqCluster': 'knative/schemas/rabbitmqcluster.json',
  'gateway.networking.k8s.io/v1/HTTPRoute': 'knative/schemas/httproute.json',
  'gateway.networking.k8s.io/v1beta1/ReferenceGrant': 'knative/schemas/referencegrant.json',
}
type Schema = { type?: string; properties?: Record<string, Schema>; items?: Schema; additionalProperties?: unknown; default?: unknown; 'x-kubernetes-validations'?: { rule: string; message?: string }[]; 'x-kubernetes-preserve-unknown-fields'?: boolean }

/**
 * A CRD's schema as `kubectl apply` holds an object to it: unknown fields refused (its strict
 * field validation, the default since Kubernetes 1.27), so every object schema that lists its
 * properties gets `additionalProperties: false` unless it keeps unknown fields.
 */
function strictSchema(schema: Schema): Schema {
  const out: Schema = { ...schema }
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, k === 'metadata' ? v : strictSchema(v)]))
    if (schema.additionalProperties === undefined && !schema['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false
  }
  if (schema.items) out.items = strictSchema(schema.items)
  return out
}

/** The object with the schema's defaults filled in, as the API server does before it checks the CEL rules. */
function withDefaults(schema: Schema, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => withDefaults(schema.items ?? {}, v))
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) }
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    if (out[key] === undefined && property.default !== undefined) out[key] = structuredClone(property.default)
    if (out[key] !== undefined) out[key] = withDefaults(property, out[key])
  }
  return out
}

// Kubernetes's CEL escapes property names that are CEL keywords: `namespace` is `__namespace__`.
const CEL_KEYWORDS = new Set(['as', 'break', 'const', 'continue', 'else', 'false', 'for', 'function', 'if', 'import', 'in', 'let', 'loop', 'package', 'namespace', 'null', 'return', 'true', 'var', 'void', 'while'])
/** A value as Kubernetes hands it to CEL: objects as maps, whole numbers as int. */
function celValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(celValue)
  if (value !== null && typeof value === 'object') return new Map(Object.entries(value).map(([k, v]) => [CEL_KEYWORDS.has(k) ? `__${k}__` : k, celValue(v)]))
  return typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : value
}

/**
 * Every `x-kubernetes-validations` rule of `schema` that `value` breaks, each evaluated with
 * `self` bound to the value it sits on (present values only, defaults filled in), as the API
 * server evaluates them: `['spec.rules[0].matches[0].path: <the rule's message>']`.
 */
function celProblems(schema: Schema, value: unknown, path = ''): string[] {
  const problems: string[] = []
  for (const { rule, message } of schema['x-kubernetes-validations'] ?? []) {
    let result: unknown
    try {
      result = celRun(rule, { self: celValue(value) as never })
    } catch (err) {
      result = err
    }
    if (result !== true) problems.push(`${path || '(root)'}: ${message ?? rule}${result === false ? '' : ` (${String(result)})`}`)
  }
  if (Array.isArray(value)) value.forEach((v, i) => problems.push(...celProblems(schema.items ?? {}, v, `${path}[${i}]`)))
  else if (value !== null && typeof value === 'object') {
    for (const [key, property] of Object.entries(schema.properties ?? {})) {
      const v = (value as Record<string, unknown>)[key]
      if (v !== undefined) problems.push(...celProblems(property, v, path ? `${path}.${key}` : key))
    }
  }
  return problems
}

/** An object's problems against a CRD schema of knative/schemas: JSON Schema (strict), then its CEL rules. */
function crdProblems(ajv: Ajv, file: string, o: unknown): string[] {
  const schema = JSON.parse(readFileSync(`${root}${file}`, 'utf8')) as Schema
  const validate = ajv.compile(strictSchema(schema))
  const defaulted = withDefaults(schema, o)
  return [...(validate(o) ? [] : [ajv.errorsText(validate.errors)]), ...celProblems(schema, defaulted)]
}
const newAjv = () => new Ajv({ strict: false, allErrors: true, formats: { int32: true, int64: true, 'date-time': true } })

/** The model class of a kind: Knative kinds from @kubernetes-models/knative, the rest from kubernetes-models. */
function model(o: K8s): { validate(): void } {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['v1', o.apiVersion]
  const knativeGroups = ['serving.knative.dev', 'eventing.knative.dev', 'sources.knative.dev', 'messaging.knative.dev']
  const path = knativeGroups.includes(group!) ? `@kubernetes-models/knative/${group}/${version}/${o.kind}` : group === 'v1' ? `kubernetes-models/v1/${o.kind}` : `kubernetes-models/${group}/${version}/${o.kind}`
  const Kind = require(path)[o.kind]
  return new Kind(o)
}

describe.skipIf(!kubectlHere)('rendering', () => {
  it('renders knative/ (with the NGINX Ingresses), knative/gateway and eventing/ with kustomize, all in namespace shop', () => {
    expect(knative.length).toBeGreaterThan(10)
    expect(ofKind(knative, 'Ingress').length).toBeGreaterThan(0)
    expect(ofKind(knative, 'HTTPRoute')).toEqual([])
    expect(ofKind(gateway, 'HTTPRoute').length).toBeGreaterThan(0)
    expect(eventing.length).toBeGreaterThan(5)
    // The one exception: a ReferenceGrant lives in the namespace of what it grants.
    for (const o of all()) if (o.kind !== 'Namespace' && !o.kind.startsWith('Cluster') && o.kind !== 'ReferenceGrant') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('shop')
  })

  it('gives no Knative Service a selector (what commonLabels would do)', () => {
    for (const s of ksvcs()) expect(s.spec.selector, s.metadata.name).toBeUndefined()
  })
})

describe.skipIf(!kubectlHere)('schemas', () => {
  it('validates every object against its schema', () => {
    const ajv = newAjv()
    const problems: string[] = []
    for (const o of all()) {
      const id = `${o.kind}/${o.metadata.name}`
      const crd = crdSchemas[`${o.apiVersion}/${o.kind}`]
      if (crd) {
        problems.push(...crdProblems(ajv, crd, o).map((p) => `${id}: ${p}`))
        continue
      }
      try {
        model(o).validate()
      } catch (err) {
        problems.push(`${id}: ${(err as Error).message}`)
      }
    }
    expect(problems).toEqual([])
  })

  it('catches a broken object (the check can fail)', () => {
    const broken = structuredClone(ksvcs()[0]!)
    broken.spec.template.spec.containerConcurrency = 'fifty'
    expect(() => model(broken).validate()).toThrow(/containerConcurrency/)
  })

  it('catches a broken HTTPRoute, by its schema and by its CEL rules', () => {
    const ajv = newAjv()
    const route = () => structuredClone(ofKind(gateway, 'HTTPRoute')[0]!)
    const misspelt = route()
    misspelt.spec.rules[0].filters[0].urlRewrite = { hostName: 'x.shop.svc.cluster.local' }
    expect(crdProblems(ajv, crdSchemas['gateway.networking.k8s.io/v1/HTTPRoute']!, misspelt).join('\n')).toMatch(/additional properties/)
    const relative = route()
    relative.spec.rules[0].matches[0].path.value = 'api/things'
    expect(crdProblems(ajv, crdSchemas['gateway.networking.k8s.io/v1/HTTPRoute']!, relative)).toEqual([expect.stringMatching(/^spec\.rules\[0\]\.matches\[0\]\.path: value must be an absolute path/)])
    const filterless = route()
    filterless.spec.rules[0].filters = [{ type: 'URLRewrite' }]
    expect(crdProblems(ajv, crdSchemas['gateway.networking.k8s.io/v1/HTTPRoute']!, filterless).join('\n')).toMatch(/filter\.urlRewrite must be specified/)
    const timeouts = route()
    timeouts.spec.rules[0].timeouts = { request: '10s', backendRequest: '20s' }
    expect(crdProblems(ajv, crdSchemas['gateway.networking.k8s.io/v1/HTTPRoute']!, timeouts).join('\n')).toMatch(/backendRequest timeout cannot be longer/)
    const portless = route()
    delete portless.spec.rules[0].backendRefs[0].port
    expect(crdProblems(ajv, crdSchemas['gateway.networking.k8s.io/v1/HTTPRoute']!, portless).join('\n')).toMatch(/port/)
  })
})

const RESERVED_PORTS = [8012, 8013, 8022, 9090, 9091, 8008]
const RESERVED_ENV = ['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION']
const int = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : NaN)

describe.skipIf(!kubectlHere)('Knative Services', () => {
  it('has one per function, the dead-letter sink included', () => {
    expect(ksvcs().map((s) => s.metadata.name).sort()).toEqual(functions.map((f) => f.name).sort())
  })

  it('keeps each to one container port, not a reserved one, and no reserved env name', () => {
    for (const s of ksvcs()) {
      const containers = s.spec.template.spec.containers as any[]
      const ports = containers.flatMap((c) => c.ports ?? [])
      expect(ports, s.metadata.name).toHaveLength(1)
      expect(RESERVED_PORTS).not.toContain(ports[0].containerPort)
      expect(['', 'http1', 'h2c', undefined]).toContain(ports[0].name)
      for (const c of containers) for (const e of c.env ?? []) expect(RESERVED_ENV, `${s.metadata.name} env ${e.name}`).not.toContain(e.name)
      for (const c of containers) expect(c.lifecycle, s.metadata.name).toBeUndefined()
    }
  })

  it('puts autoscaling annotations on the revision template only, with valid values', () => {
    for (const s of ksvcs()) {
      const own = Object.keys(s.metadata.annotations ?? {})
      expect(own.filter((k) => k.startsWith('autoscaling.knative.dev/')), s.metadata.name).toEqual([])
      const a = s.spec.template.metadata.annotations as Record<string, string>
      const min = int(a['autoscaling.knative.dev/min-scale'])
      const max = int(a['autoscaling.knative.dev/max-scale'])
      expect(min).toBeGreaterThanOrEqual(0)
      expect(max).toBeGreaterThanOrEqual(Math.max(min, 1))
      expect(int(a['autoscaling.knative.dev/target'])).toBeGreaterThan(0)
      expect(['concurrency', 'rps']).toContain(a['autoscaling.knative.dev/metric'])
      for (const [k, val] of Object.entries(a)) expect(typeof val, `${s.metadata.name} ${k}`).toBe('string')
      const cc = s.spec.template.spec.containerConcurrency
      expect(Number.isInteger(cc) && cc >= 0 && cc <= 1000).toBe(true)
      expect(s.spec.template.spec.timeoutSeconds).toBeLessThanOrEqual(600)
    }
  })

  it('scales every function to zero but keeps the dead-letter sink warm', () => {
    for (const s of ksvcs()) {
      const min = int(s.spec.template.metadata.annotations['autoscaling.knative.dev/min-scale'])
      if (s.metadata.name === 'dead-letter') expect(min).toBeGreaterThanOrEqual(1)
      else expect(min, s.metadata.name).toBe(0)
    }
  })

  it('lets Prometheus find each revision’s pods on the container port', () => {
    for (const s of ksvcs()) {
      const a = s.spec.template.metadata.annotations
      expect(a['prometheus.io/scrape'], s.metadata.name).toBe('true')
      expect(a['prometheus.io/path']).toBe('/metrics')
      expect(int(a['prometheus.io/port'])).toBe(s.spec.template.spec.containers[0].ports[0].containerPort)
    }
  })

  it('makes every function cluster-local, with MIGRATE=off, a readiness probe, no database-bound liveness probe, and limits', () => {
    for (const s of ksvcs()) {
      expect(s.metadata.labels?.['networking.knative.dev/visibility'], s.metadata.name).toBe('cluster-local')
      const c = s.spec.template.spec.containers[0]
      expect(c.env.find((e: { name: string }) => e.name === 'MIGRATE')?.value).toBe('off')
      expect(c.readinessProbe?.httpGet?.path).toBe('/healthz')
      if (c.readinessProbe.httpGet.port !== undefined) expect(c.readinessProbe.httpGet.port).toBe(c.ports[0].containerPort)
      expect(c.livenessProbe?.httpGet?.path, s.metadata.name).not.toBe('/healthz')
      expect(c.resources?.requests?.cpu && c.resources?.limits?.memory, s.metadata.name).toBeTruthy()
    }
  })

  it('gives the private signing key to auth alone', () => {
    const users = [...ksvcs(), ...ofKind(knative, 'Job')].flatMap((o) => {
      const spec = o.kind === 'Job' ? o.spec.template.spec : o.spec.template.spec
      return [...(spec.initContainers ?? []), ...spec.containers]
        .filter((c: any) => (c.envFrom ?? []).some((f: any) => f.secretRef?.name === 'jwt-signing-key'))
        .map((c: any) => `${o.kind}/${c.name}`)
    })
    expect(users.sort()).toEqual(['Job/migrate-auth', 'Service/auth'])
  })
})

describe.skipIf(!kubectlHere)('Ingress', () => {
  it('routes each public function by exactly one Ingress, and the dead-letter sink by none', () => {
    const ingresses = ofKind(knative, 'Ingress')
    const routed = ingresses.flatMap((i) => i.spec.rules.flatMap((r: any) => r.http.paths.map((p: any) => ({ path: p.path, pathType: p.pathType, service: p.backend.service.name, ingress: i }))))
    for (const f of functions.filter((fn) => fn.group)) {
      // Its own Ingress; auth also serves the API documents, through the api-docs Ingress below.
      const routes = routed.filter((r) => r.service === f.name && r.ingress.metadata.name === f.name)
      expect(routes, f.name).toHaveLength(1)
      expect(routes[0]).toMatchObject({ path: `/api/${f.group}`, pathType: 'Prefix' })
      const a = routes[0]!.ingress.metadata.annotations
      expect(a['nginx.ingress.kubernetes.io/upstream-vhost']).toBe(`${f.name}.shop.svc.cluster.local`)
      expect(a['nginx.ingress.kubernetes.io/rewrite-target']).toBeUndefined()
      expect(a['nginx.ingress.kubernetes.io/proxy-body-size']).toBeTruthy()
      expect(int(a['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(30)
    }
    expect(routed.filter((r) => r.service === 'dead-letter')).toEqual([])
    expect(routed.filter((r) => r.ingress.metadata.name === 'api-docs').map((r) => `${r.path} -> ${r.service}`)).toEqual([
      '/api/openapi.json -> auth',
      '/api/asyncapi.json -> auth',
      '/api/docs -> auth',
    ])
    expect(routed.filter((r) => r.ingress.metadata.name === 'web').map((r) => `${r.path} -> ${r.service}`)).toEqual(['/ -> web'])
    const auth = ingresses.find((i) => i.metadata.name === 'auth')!
    expect(auth.metadata.annotations!['nginx.ingress.kubernetes.io/limit-rps']).toBeTruthy()
  })
})

describe.skipIf(!kubectlHere)('Gateway API routes', () => {
  const routes = () => ofKind(gateway, 'HTTPRoute')

  it('route each public function’s /api/<group> by exactly one HTTPRoute, to Knative’s internal gateway as the function’s cluster-local host', () => {
    const [grant] = ofKind(gateway, 'ReferenceGrant')
    const routed = routes().flatMap((r) =>
      r.spec.rules.flatMap((rule: any) => rule.matches.map((m: any) => ({ route: r, rule, path: m.path, host: rule.filters.find((f: any) => f.type === 'URLRewrite')?.urlRewrite.hostname }))),
    )
    for (const f of functions.filter((fn) => fn.group)) {
      // Its own route; auth also serves the API documents, through the api-docs route.
      const mine = routed.filter((r) => r.host === `${f.name}.shop.svc.cluster.local` && r.route.metadata.name === f.name)
      expect(mine, f.name).toHaveLength(1)
      const { route, rule, path } = mine[0]!
      expect(path).toEqual({ type: 'PathPrefix', value: `/api/${f.group}` })
      // Host only: the function keeps its path, so /events, /internal and /metrics stay out of reach.
      expect(rule.filters.find((x: any) => x.type === 'URLRewrite').urlRewrite.path).toBeUndefined()
      expect(route.spec.parentRefs).toEqual([expect.objectContaining({ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: expect.any(String) })])
      expect(rule.backendRefs).toEqual([{ group: '', kind: 'Service', namespace: grant!.metadata.namespace, name: grant!.spec.to[0].name, port: 80 }])
      const seconds = Number(/^(\d+)s$/.exec(rule.timeouts?.request)?.[1])
      expect(seconds, `${f.name} timeouts.request`).toBeGreaterThanOrEqual(30)
    }
    expect(routed.filter((r) => r.host?.startsWith('dead-letter.'))).toEqual([])
  })

  it('grant the HTTPRoutes of namespace shop that one Service in the internal gateway’s namespace, and nothing more', () => {
    const grants = ofKind(gateway, 'ReferenceGrant')
    expect(grants).toHaveLength(1)
    expect(grants[0]!.metadata.namespace).not.toBe('shop')
    expect(grants[0]!.spec).toEqual({
      from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'shop' }],
      to: [{ group: '', kind: 'Service', name: expect.any(String) }],
    })
  })

  it('keep the NGINX Ingresses and the HTTPRoutes to the same paths and functions', () => {
    const ingress = ofKind(knative, 'Ingress').flatMap((i) => i.spec.rules.flatMap((r: any) => r.http.paths.map((p: any) => `${p.path} -> ${p.backend.service.name}`)))
    const routed = routes().flatMap((r) => r.spec.rules.flatMap((rule: any) => rule.matches.map((m: any) => `${m.path.value} -> ${rule.filters[0].urlRewrite.hostname.split('.')[0]}`)))
    expect(routed.sort()).toEqual(ingress.sort())
  })
})

describe.skipIf(!kubectlHere)('Brokers and Triggers', () => {
  const fullDelivery = (d: any, where: string) => {
    expect(d, where).toBeTruthy()
    expect(Number.isInteger(d.retry) && d.retry > 0, `${where} retry`).toBe(true)
    expect(['exponential', 'linear'], `${where} backoffPolicy`).toContain(d.backoffPolicy)
    expect(d.backoffDelay, `${where} backoffDelay`).toMatch(/^PT\d+(\.\d+)?S$/)
    expect(d.timeout, `${where} timeout`).toMatch(/^PT\d+(\.\d+)?S$/)
    expect(d.deadLetterSink?.ref, `${where} deadLetterSink`).toMatchObject({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'dead-letter' })
  }

  it('makes orders and payments RabbitMQ Brokers with a full delivery spec', () => {
    expect(brokers().map((b) => b.metadata.name).sort()).toEqual(['orders', 'payments'])
    for (const b of brokers()) {
      expect(b.metadata.annotations?.['eventing.knative.dev/broker.class']).toBe('RabbitMQBroker')
      expect(b.spec.config).toMatchObject({ apiVersion: 'eventing.knative.dev/v1alpha1', kind: 'RabbitmqBrokerConfig' })
      // eventing-rabbitmq's validation requires the namespace; the config must be found there.
      const config = ofKind(eventing, 'RabbitmqBrokerConfig').find((c) => c.metadata.name === b.spec.config.name)
      expect(b.spec.config.namespace, `Broker/${b.metadata.name} spec.config.namespace`).toBe('shop')
      expect(config?.metadata.namespace).toBe(b.spec.config.namespace)
      fullDelivery(b.spec.delivery, `Broker/${b.metadata.name}`)
    }
  })

  it('filters every Trigger with spec.filter.attributes (never filters), with a full delivery to a real subscriber', () => {
    const services = ksvcs().map((s) => s.metadata.name)
    for (const t of triggers()) {
      const id = `Trigger/${t.metadata.name}`
      expect(t.spec.filters, id).toBeUndefined()
      const attributes = t.spec.filter?.attributes as Record<string, string>
      expect(attributes?.type, id).toBeTruthy()
      for (const key of Object.keys(attributes)) expect(key, id).toMatch(/^[a-z][a-z0-9]*$/)
      expect(['orders', 'payments']).toContain(t.spec.broker)
      fullDelivery(t.spec.delivery, id)
      expect(services).toContain(t.spec.subscriber.ref.name)
      expect(t.spec.subscriber.uri).toBe(`/events/${attributes.type}`)
      const parallelism = t.metadata.annotations?.['rabbitmq.eventing.knative.dev/parallelism']
      if (parallelism !== undefined) expect(int(parallelism)).toBeGreaterThanOrEqual(1)
      if (parallelism !== undefined) expect(int(parallelism)).toBeLessThanOrEqual(1000)
    }
  })

  it('wires the event flow: each order event to payment, cart and product; payment.status to order, cart and product', () => {
    const flow = triggers().map((t) => `${t.spec.broker}:${t.spec.filter.attributes.type}->${t.spec.subscriber.ref.name}`).sort()
    expect(flow).toEqual([
      'orders:order.cancelled->cart',
      'orders:order.cancelled->payment',
      'orders:order.cancelled->product',
      'orders:order.created->cart',
      'orders:order.created->payment',
      'orders:order.created->product',
      'payments:payment.status->cart',
      'payments:payment.status->order',
      'payments:payment.status->product',
    ])
    // One Trigger per subscriber and type, named for them.
    for (const t of triggers()) expect(t.metadata.name).toBe(`${t.spec.subscriber.ref.name}-on-${t.spec.filter.attributes.type.replace('.', '-')}`)
    const payment = triggers().find((t) => t.metadata.name === 'payment-on-order-created')!
    // Each payment holds its delivery ~2 s: without parallelism the Trigger carries 0.5 orders/s.
    expect(int(payment.metadata.annotations?.['rabbitmq.eventing.knative.dev/parallelism'])).toBeGreaterThanOrEqual(10)
    const seconds = (d: string) => Number(/^PT([\d.]+)S$/.exec(d)?.[1])
    expect(seconds(payment.spec.delivery.timeout)).toBeGreaterThan(2)
  })

  it('binds order to the orders broker and payment to payments, and sweeps the outbox and the reservations on a schedule', () => {
    const bindings = ofKind(eventing, 'SinkBinding').map((b) => `${b.spec.subject.name}->${b.spec.sink.ref.name}`).sort()
    expect(bindings).toEqual(['order->orders', 'payment->payments'])
    const pings = ofKind(eventing, 'PingSource')
    expect(pings.map((p) => [p.metadata.name, p.spec.sink]).sort()).toEqual([
      ['order-outbox-flush', { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'order' }, uri: '/internal/outbox/flush' }],
      ['product-reservations-expire', { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'product' }, uri: '/internal/reservations/expire' }],
    ])
    for (const p of pings) expect(p.spec.schedule, p.metadata.name).toMatch(/^(\S+\s+){4}\S+$/)
  })

  it('gives order and product the sweep and reservation settings, each a whole number of seconds', () => {
    const env = (name: string) =>
      Object.fromEntries((ksvcs().find((s) => s.metadata.name === name)!.spec.template.spec.containers[0].env as { name: string; value: string }[]).map((e) => [e.name, e.value]))
    const seconds = (value: string | undefined) => (value !== undefined && /^[1-9]\d*$/.test(value) ? Number(value) : NaN)
    const order = env('order')
    expect(seconds(order.ORDER_REANNOUNCE_AFTER_S)).toBeGreaterThan(0)
    // Expiry after at least one announcement again; never before.
    expect(seconds(order.ORDER_EXPIRE_AFTER_S)).toBeGreaterThan(seconds(order.ORDER_REANNOUNCE_AFTER_S))
    expect(seconds(env('product').RESERVATION_TTL_S)).toBeGreaterThan(0)
  })
})

describe.skipIf(!kubectlHere)('ConfigMaps', () => {
  it('hold no secret values', () => {
    const suspicious = /(PASSWORD|SECRET|PRIVATE|TOKEN|_KEY|DATABASE_URL)$/i
    for (const cm of ofKind(all(), 'ConfigMap')) {
      for (const [key, value] of Object.entries(cm.data ?? {})) {
        expect(suspicious.test(key), `ConfigMap/${cm.metadata.name} ${key}`).toBe(false)
        expect(String(value), `ConfigMap/${cm.metadata.name} ${key}`).not.toMatch(/:\/\/[^/\s:@]+:[^@\s]+@/)
        expect(String(value)).not.toMatch(/"d"\s*:\s*"/)
      }
    }
  })
})
