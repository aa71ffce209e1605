/**
 * @module
 * Knative Eventing manifests made on the fly: the objects of `eventing/` in the same shape
 * (RabbitmqBrokerConfig, Broker, Trigger), written to a temp dir in a namespace of their own,
 * for the local broker to play. Plain Node, no test framework: the broker tests use it, and so
 * does benchmark 5 at run time. Remove the dir, and with RabbitMQ what it declared
 * (delete-topology.ts), when done.
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'

/** A Knative `delivery` spec (retry, backoffPolicy, backoffDelay, timeout as ISO 8601 durations, deadLetterSink). */
type Delivery = Record<string, unknown>

/**
 * Knative objects, in the form `eventing/` has them (eventing.knative.dev/v1 Broker and Trigger,
 * eventing-rabbitmq's v1alpha1 RabbitmqBrokerConfig), without a namespace: `writeManifests` sets it.
 * - `config(queueType)`: the RabbitmqBrokerConfig named `config` (`quorum` or `classic` queues).
 * - `broker(name, delivery?)`: a RabbitMQBroker-class Broker using that config.
 * - `trigger(name, o)`: a Trigger on `o.broker` delivering to Service `o.service` (`o.uri` a path
 *   on it), filtering on exact attribute values, with the parallelism annotation when given.
 * - `deadLetterSink(service)`: a `delivery.deadLetterSink` pointing at a Service.
 */
export const objects = {
  config: (queueType = 'quorum') => ({
    apiVersion: 'eventing.knative.dev/v1alpha1',
    kind: 'RabbitmqBrokerConfig',
    metadata: { name: 'config' },
    spec: { queueType },
  }),
  broker: (name: string, delivery?: Delivery) => ({
    apiVersion: 'eventing.knative.dev/v1',
    kind: 'Broker',
    metadata: { name, annotations: { 'eventing.knative.dev/broker.class': 'RabbitMQBroker' } },
    spec: { config: { apiVersion: 'eventing.knative.dev/v1alpha1', kind: 'RabbitmqBrokerConfig', name: 'config' }, ...(delivery ? { delivery } : {}) },
  }),
  trigger: (name: string, o: { broker: string; filter?: Record<string, string>; service: string; uri?: string; delivery?: Delivery; parallelism?: number }) => ({
    apiVersion: 'eventing.knative.dev/v1',
    kind: 'Trigger',
    metadata: { name, ...(o.parallelism ? { annotations: { 'rabbitmq.eventing.knative.dev/parallelism': String(o.parallelism) } } : {}) },
    spec: {
      broker: o.broker,
      filter: { attributes: o.filter ?? {} },
      subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: o.service }, ...(o.uri ? { uri: o.uri } : {}) },
      ...(o.delivery ? { delivery: o.delivery } : {}),
    },
  }),
  deadLetterSink: (service: string) => ({ ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: service } }),
}

/**
 * Writes `docs` (objects with a `metadata`) as one multi-document YAML file, `manifests.yaml`, in
 * a new temp dir, each placed in `namespace`. Answers the dir's path; the caller removes it.
 */
export async function writeManifests(namespace: string, docs: object[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'eventing-test-'))
  const withNs = docs.map((d) => {
    const { metadata } = d as { metadata: object }
    return { ...d, metadata: { ...metadata, namespace } }
  })
  await writeFile(join(dir, 'manifests.yaml'), withNs.map((d) => stringify(d)).join('---\n'))
  return dir
}
