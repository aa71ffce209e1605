/**
 * @module
 * The AsyncAPI 3.0 description of the shop's events: the Brokers as channels, each event type as a
 * message with its CloudEvents attributes (binary content mode: `ce-*` headers) and the JSON Schema
 * of its data, made by `@valibot/to-json-schema` from the producer's valibot schema; a `send`
 * operation per producer and a `receive` operation per consumer route (`POST /events/<type>` of a
 * function, found on the apps' routes by what `onEvent` tells of them, see route-meta.ts).
 * Build-time only, like shared/openapi.ts.
 */
import { toJsonSchema, type JsonSchema } from '@valibot/to-json-schema'
import * as v from 'valibot'
import { routeMetaOf } from './route-meta.ts'
import { conversion, type AppRoute, type Json } from './openapi.ts'

/** A Broker: the channel its events travel on. */
export type ChannelDoc = { name: string; description: string }

/** One event type: who publishes it, on which channel, with which attributes, and its data's schema and examples. */
export type MessageDoc = {
  type: string
  source: string
  channel: string
  producer: string
  summary: string
  description: string
  data: v.GenericSchema
  examples: Record<string, unknown>
}

/** A consumer: a function that takes events of `type` at `POST /events/<type>`, with its own schema of their data. */
export type ConsumerDoc = { function: string; type: string; schema: v.GenericSchema }

const camel = (s: string) => s.replace(/[.\-_](\w)/g, (_, c: string) => c.toUpperCase())
const pascal = (s: string) => camel(s).replace(/^\w/, (c) => c.toUpperCase())

// Our schemas use nothing beyond draft-07, the dialect of AsyncAPI's own Schema Object.
function schemaOf(schema: v.GenericSchema): Json {
  const { $schema: _, ...rest } = toJsonSchema(schema, conversion('output', undefined, 'draft-07')) as JsonSchema & Json
  return rest
}

/**
 * The consumers of events among `apps`' routes: each `POST /events/<type>` whose handler tells its
 * type and data schema (`onEvent`). Throws for an event route that tells nothing.
 */
export function eventConsumers(apps: Record<string, readonly AppRoute[]>): ConsumerDoc[] {
  const consumers: ConsumerDoc[] = []
  for (const [name, routes] of Object.entries(apps)) {
    for (const r of routes) {
      if (r.method !== 'POST' || !r.path.startsWith('/events/')) continue
      const meta = routeMetaOf(r.handler)
      if (meta?.kind !== 'event') throw new Error(`${name} ${r.method} ${r.path}: an event route whose handler does not say what it takes (use onEvent)`)
      consumers.push({ function: name, type: meta.type, schema: meta.schema })
    }
  }
  return consumers
}

/** The CloudEvents 1.0 attributes of a message in binary mode, as the headers of an HTTP delivery. */
function headersOf(m: MessageDoc): Json {
  return {
    type: 'object',
    description: 'CloudEvents 1.0 attributes in HTTP binary content mode; the data is the body',
    properties: {
      'ce-specversion': { const: '1.0' },
      'ce-id': { type: 'string', format: 'uuid', description: 'unique per event from this source: consumers drop a repeat of one they handled' },
      'ce-source': { const: m.source },
      'ce-type': { const: m.type },
      'ce-time': { type: 'string', format: 'date-time', description: 'when it happened (RFC 3339)' },
      'content-type': { const: 'application/json', description: 'the `datacontenttype` of the data' },
    },
    required: ['ce-specversion', 'ce-id', 'ce-source', 'ce-type', 'content-type'],
  }
}

/** What `asyncApiDocument` puts together. */
export type AsyncApiOptions = {
  info: { title: string; version: string; description: string }
  channels: ChannelDoc[]
  messages: MessageDoc[]
  consumers: ConsumerDoc[]
}

/**
 * An AsyncAPI 3.0 document: `channels` with their messages, a `send` operation per message (its
 * producer) and a `receive` operation per consumer. Throws when a consumer takes a type that no
 * message describes, or a message names an unknown channel.
 */
export function asyncApiDocument({ info, channels, messages, consumers }: AsyncApiOptions): Json {
  const components: Record<string, Json> = {}
  const channelItems: Record<string, Json> = {}
  for (const c of channels) channelItems[c.name] = { address: c.name, title: `the ${c.name} Broker`, description: c.description, messages: {} }
  const operations: Record<string, Json> = {}
  for (const m of messages) {
    const channel = channelItems[m.channel] as { messages: Json } | undefined
    if (!channel) throw new Error(`${m.type}: no channel ${m.channel}`)
    const key = camel(m.type)
    components[pascal(m.type)] = {
      name: m.type,
      title: m.type,
      summary: m.summary,
      description: m.description,
      contentType: 'application/json',
      headers: headersOf(m),
      payload: schemaOf(m.data),
      examples: Object.entries(m.examples).map(([name, payload]) => ({
        name,
        headers: {
          'ce-specversion': '1.0',
          'ce-id': '3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c',
          'ce-source': m.source,
          'ce-type': m.type,
          'ce-time': '2025-01-15T09:36:02.000Z',
          'content-type': 'application/json',
        },
        payload,
      })),
    }
    channel.messages[key] = { $ref: `#/components/messages/${pascal(m.type)}` }
    operations[`${camel(m.producer)}Sends${pascal(m.type)}`] = {
      action: 'send',
      channel: { $ref: `#/channels/${m.channel}` },
      summary: `${m.producer} publishes ${m.type}`,
      messages: [{ $ref: `#/channels/${m.channel}/messages/${key}` }],
    }
  }
  for (const c of consumers) {
    const m = messages.find((x) => x.type === c.type)
    if (!m) throw new Error(`${c.function} consumes ${c.type}, which no message describes`)
    operations[`${camel(c.function)}Receives${pascal(c.type)}`] = {
      action: 'receive',
      channel: { $ref: `#/channels/${m.channel}` },
      summary: `${c.function} takes ${c.type} at POST /events/${c.type}`,
      description: `Delivered by a Trigger with retries, a backoff and the dead-letter sink; answers 204 when handled or handled before, 400/422 for an event that can never succeed (dropped), 503 to have it retried. Reads of the data: ${Object.keys((c.schema as unknown as { entries?: object }).entries ?? {}).join(', ') || 'all of it'}.`,
      messages: [{ $ref: `#/channels/${m.channel}/messages/${camel(m.type)}` }],
    }
  }
  return { asyncapi: '3.0.0', info, defaultContentType: 'application/json', channels: channelItems, operations, components: { messages: components } }
}
