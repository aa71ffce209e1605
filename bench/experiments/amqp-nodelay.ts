/**
 * An experiment, not the shop's code: amqplib with TCP_NODELAY on. amqplib leaves Nagle's
 * algorithm on, so on a connection that also acks deliveries (the local broker's: one connection
 * publishes and consumes) a publish waits behind an unacknowledged ack segment for the peer's
 * delayed ACK, about 40 ms: awaiting each confirm, about 25 messages a second. bench/run.mjs builds
 * bench/experiments/nodelay.ts with this module in place of `amqplib`, so that benchmark 5 shows
 * what `connect(url, { noDelay: true })` in eventing/local/queue-amqp.ts would buy.
 */
import * as amqplib from 'amqplib'

export * from 'amqplib'

export const connect = ((url: Parameters<typeof amqplib.connect>[0], socketOptions: Record<string, unknown> = {}) =>
  amqplib.connect(url, { noDelay: true, ...socketOptions })) as typeof amqplib.connect
