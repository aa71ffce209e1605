/**
 * @module
 * Reads the Knative objects of `eventing/*.yaml` that the local broker plays: Brokers, Triggers,
 * PingSources, SinkBindings and RabbitmqBrokerConfigs (other kinds, such as the RabbitmqCluster,
 * are a cluster's business and are skipped). Each is checked with valibot, so a manifest the local
 * broker would misread stops it with the file, the object and the field at fault.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as v from 'valibot'
import { parseAllDocuments } from 'yaml'
import { parseSchedule } from './cron.ts'

/**
 * An ISO-8601 duration as Knative takes it (`PT0.5S`, `PT1M30S`, `P1DT2H`), in milliseconds.
 * Years and months have no fixed length, so they are refused. Undefined when `text` is not one.
 */
export function parseDuration(text: string): number | undefined {
  const n = '(\\d+(?:\\.\\d+)?)'
  const match = new RegExp(`^P(?:${n}W)?(?:${n}D)?(?:T(?:${n}H)?(?:${n}M)?(?:${n}S)?)?$`).exec(text)
  if (!match || text === 'P' || text.endsWith('T')) return undefined
  const [weeks, days, hours, minutes, seconds] = match.slice(1).map((part) => Number(part ?? 0))
  return Math.round(((((weeks ?? 0) * 7 + (days ?? 0)) * 24 + (hours ?? 0)) * 60 + (minutes ?? 0)) * 60_000 + (seconds ?? 0) * 1000)
}

const Name = v.pipe(v.string(), v.regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label'), v.maxLength(63))
const Duration = v.pipe(
  v.string(),
  v.check((text) => parseDuration(text) !== undefined, 'must be an ISO-8601 duration such as PT0.5S'),
  v.transform((text) => parseDuration(text) ?? 0),
)
const Metadata = v.looseObject({
  name: Name,
  namespace: v.optional(Name),
  annotations: v.optional(v.record(v.string(), v.string())),
})
const Reference = v.looseObject({
  apiVersion: v.optional(v.string()),
  kind: v.picklist(['Service', 'Broker'], 'the local broker resolves refs to a Service or a Broker'),
  name: Name,
})
const Destination = v.pipe(
  v.looseObject({ ref: v.optional(Reference), uri: v.optional(v.pipe(v.string(), v.minLength(1))) }),
  v.check((d) => d.ref !== undefined || d.uri !== undefined, 'needs a ref or a uri'),
  v.check((d) => d.ref !== undefined || URL.canParse(d.uri ?? ''), 'a uri without a ref must be an absolute URL'),
)
const Delivery = v.looseObject({
  retry: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  backoffPolicy: v.optional(v.picklist(['linear', 'exponential'])),
  backoffDelay: v.optional(Duration),
  timeout: v.optional(Duration),
  deadLetterSink: v.optional(Destination),
})
// Knative's rule for attribute names, extensions included: lowercase letters and digits.
const AttributeName = v.pipe(v.string(), v.regex(/^[a-z][a-z0-9]*$/, 'a filter attribute name is lowercase letters and digits'))
const Parallelism = v.pipe(
  v.string(),
  v.regex(/^\d+$/, 'must be an integer'),
  v.transform(Number),
  v.number(),
  v.minValue(1),
  v.maxValue(1000),
)

const schemas = {
  Broker: v.object({
    metadata: Metadata,
    spec: v.optional(
      v.looseObject({
        // `namespace`: eventing-rabbitmq requires it; core Eventing fills in the Broker's own when it is left out.
        config: v.optional(v.looseObject({ kind: v.literal('RabbitmqBrokerConfig'), name: Name, namespace: v.optional(Name) })),
        delivery: v.optional(Delivery),
      }),
      {},
    ),
  }),
  Trigger: v.object({
    metadata: v.looseObject({
      ...Metadata.entries,
      annotations: v.optional(
        v.looseObject({ 'rabbitmq.eventing.knative.dev/parallelism': v.optional(Parallelism) }),
      ),
    }),
    spec: v.looseObject({
      broker: Name,
      filter: v.optional(v.looseObject({ attributes: v.optional(v.record(AttributeName, v.string())) })),
      filters: v.optional(v.unknown()),
      subscriber: Destination,
      delivery: v.optional(Delivery),
    }),
  }),
  PingSource: v.object({
    metadata: Metadata,
    spec: v.pipe(
      v.looseObject({
        schedule: v.optional(
          // The seconds field is our test-only extension, not Knative's.
          v.pipe(v.string(), v.check((s) => isSchedule(s) && s.trim().split(/\s+/).length !== 6, 'must be a 5-field cron')),
          '* * * * *',
        ),
        timezone: v.optional(v.string()),
        contentType: v.optional(v.string()),
        data: v.optional(v.string()),
        dataBase64: v.optional(v.string()),
        sink: Destination,
      }),
      v.check((s) => s.data === undefined || s.dataBase64 === undefined, 'data and dataBase64 are mutually exclusive'),
    ),
  }),
  SinkBinding: v.object({
    metadata: Metadata,
    spec: v.looseObject({
      subject: v.looseObject({ kind: v.string(), name: Name }),
      sink: Destination,
    }),
  }),
  RabbitmqBrokerConfig: v.object({
    metadata: Metadata,
    spec: v.looseObject({ queueType: v.optional(v.picklist(['quorum', 'classic']), 'quorum') }),
  }),
}
type Kind = keyof typeof schemas

function isSchedule(text: string) {
  try {
    parseSchedule(text)
    return true
  } catch {
    return false
  }
}

export type Destination = v.InferOutput<typeof Destination>
/** A `delivery` spec, durations in milliseconds. */
export type DeliverySpec = v.InferOutput<typeof Delivery>
export type BrokerManifest = { name: string; queueType: 'quorum' | 'classic'; delivery?: DeliverySpec }
export type TriggerManifest = {
  name: string
  broker: string
  /** `spec.filter.attributes`; empty matches every event. */
  filter: Record<string, string>
  subscriber: Destination
  delivery?: DeliverySpec
  parallelism: number
}
export type PingSourceManifest = {
  name: string
  schedule: string
  timezone?: string
  contentType?: string
  data?: Buffer
  sink: Destination
}
export type SinkBindingManifest = { name: string; subject: { kind: string; name: string }; sink: Destination }
export type Manifests = {
  namespace: string
  brokers: BrokerManifest[]
  triggers: TriggerManifest[]
  pingSources: PingSourceManifest[]
  sinkBindings: SinkBindingManifest[]
  /** Things a cluster would take but that are likely mistakes; the caller logs them. */
  warnings: string[]
}

type Found = { file: string; kind: Kind; doc: Record<string, unknown> }

/**
 * Loads the `*.yaml` files of `dir` (not its subfolders).
 *
 * @example
 * ```ts
 * const m = await loadManifests(new URL('../', import.meta.url).pathname)
 * m.triggers.map((t) => t.name) // ['cart-on-order-created', …]
 * ```
 */
export async function loadManifests(dir: string, { namespace: forced }: { namespace?: string } = {}): Promise<Manifests> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort()
  const found: Found[] = []
  let defaultNamespace = 'default'
  for (const file of files) {
    for (const parsed of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
      if (parsed.errors.length > 0) throw new Error(`${file}: ${parsed.errors[0]?.message}`)
      const doc: unknown = parsed.toJS()
      if (typeof doc !== 'object' || doc === null) continue
      const { kind, namespace } = doc as { kind?: unknown; namespace?: unknown }
      if (kind === 'Kustomization' && typeof namespace === 'string') defaultNamespace = namespace
      if (typeof kind === 'string' && kind in schemas) found.push({ file, kind: kind as Kind, doc: doc as Record<string, unknown> })
    }
  }

  const warnings: string[] = []
  const namespaces = new Set<string>()
  const parse = <K extends Kind>({ file, kind, doc }: Found, _kind: K): v.InferOutput<(typeof schemas)[K]> => {
    const result = v.safeParse(schemas[_kind], doc)
    if (!result.success) {
      const issue = result.issues[0]
      const name = (doc.metadata as { name?: unknown } | undefined)?.name
      throw new Error(`${file}: ${kind} ${String(name)}: ${v.getDotPath(issue) ?? '(root)'}: ${issue.message}`)
    }
    const output = result.output as v.InferOutput<(typeof schemas)[K]>
    namespaces.add(output.metadata.namespace ?? defaultNamespace)
    return output
  }
  const of = <K extends Kind>(kind: K) => found.filter((f) => f.kind === kind).map((f) => ({ file: f.file, ...parse(f, kind) }))

  // By namespace and name: a Broker's config may name another namespace than the Broker's.
  const configs = new Map(of('RabbitmqBrokerConfig').map((c) => [`${c.metadata.namespace ?? defaultNamespace}/${c.metadata.name}`, c.spec.queueType]))
  const brokers = of('Broker').map(({ file, metadata, spec }): BrokerManifest => {
    const where = `${file}: Broker ${metadata.name}`
    const brokerClass = metadata.annotations?.['eventing.knative.dev/broker.class']
    if (brokerClass !== 'RabbitMQBroker') warnings.push(`${where}: class ${brokerClass ?? '(none)'} is played as a RabbitMQBroker`)
    if (!spec.config) warnings.push(`${where}: no spec.config; eventing-rabbitmq needs a RabbitmqBrokerConfig`)
    const configKey = spec.config && `${spec.config.namespace ?? metadata.namespace ?? defaultNamespace}/${spec.config.name}`
    const queueType = configKey ? configs.get(configKey) : 'quorum'
    if (!queueType) throw new Error(`${where}: spec.config names RabbitmqBrokerConfig ${configKey}, which no file defines`)
    return { name: metadata.name, queueType, ...(spec.delivery ? { delivery: spec.delivery } : {}) }
  })
  const brokerNames = new Set(brokers.map((b) => b.name))
  const triggers = of('Trigger').map(({ file, metadata, spec }): TriggerManifest => {
    const where = `${file}: Trigger ${metadata.name}`
    if (!brokerNames.has(spec.broker)) throw new Error(`${where}: spec.broker ${spec.broker} is not a Broker in these files`)
    if (spec.filters !== undefined) {
      warnings.push(`${where}: spec.filters is ignored by the RabbitMQ broker; only spec.filter.attributes filter`)
    }
    return {
      name: metadata.name,
      broker: spec.broker,
      filter: spec.filter?.attributes ?? {},
      subscriber: spec.subscriber,
      ...(spec.delivery ? { delivery: spec.delivery } : {}),
      parallelism: metadata.annotations?.['rabbitmq.eventing.knative.dev/parallelism'] ?? 1,
    }
  })
  const pingSources = of('PingSource').map(({ metadata, spec }): PingSourceManifest => ({
    name: metadata.name,
    schedule: spec.schedule,
    sink: spec.sink,
    ...(spec.timezone ? { timezone: spec.timezone } : {}),
    ...(spec.contentType ? { contentType: spec.contentType } : {}),
    ...(spec.data !== undefined ? { data: Buffer.from(spec.data) } : {}),
    ...(spec.dataBase64 !== undefined ? { data: Buffer.from(spec.dataBase64, 'base64') } : {}),
  }))
  const sinkBindings = of('SinkBinding').map(({ metadata, spec }) => ({ name: metadata.name, subject: spec.subject, sink: spec.sink }))

  for (const [kind, list] of Object.entries({ Broker: brokers, Trigger: triggers, PingSource: pingSources, SinkBinding: sinkBindings })) {
    const seen = new Set<string>()
    for (const { name } of list) {
      if (seen.has(name)) throw new Error(`${kind} ${name} is defined twice`)
      seen.add(name)
    }
  }
  if (namespaces.size > 1) throw new Error(`the local broker plays one namespace; these files use ${[...namespaces].join(', ')}`)
  const namespace = forced ?? [...namespaces][0] ?? defaultNamespace
  return { namespace, brokers, triggers, pingSources, sinkBindings, warnings }
}
