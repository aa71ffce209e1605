-- Every CloudEvent the brokers dead-letter (it exhausted its retries), kept once per source + id.
CREATE TABLE deadletter.events (
  source           text NOT NULL,
  id               text NOT NULL,
  type             text NOT NULL,
  specversion      text NOT NULL,
  subject          text,
  -- The producer's time. (The SDK puts in the time of receipt when an event has none.)
  "time"           timestamptz,
  datacontenttype  text,
  dataschema       text,
  -- The data the way the CloudEvents JSON format holds it, in one of three columns: a JSON value;
  -- text that is not JSON; bytes that are not text, in base64. All null: the event had no data.
  data             jsonb,
  data_text        text,
  data_base64      text,
  -- Every extension attribute as received, the broker's knativeerror* included.
  extensions       jsonb NOT NULL DEFAULT '{}',
  -- From those extensions: the subscriber that failed, its last HTTP status, and its response body
  -- (Knative sends it base64-encoded; kept as received).
  error_dest       text,
  error_code       integer,
  error_data       text,
  -- The first arrival; a redelivery of the same dead letter only counts in `deliveries`.
  received_at      timestamptz NOT NULL DEFAULT now(),
  deliveries       integer NOT NULL DEFAULT 1,
  PRIMARY KEY (source, id),
  CHECK (num_nonnulls(data, data_text, data_base64) <= 1)
);

-- The operator's view: newest first, all types or one.
CREATE INDEX events_received_idx ON deadletter.events (received_at DESC);
CREATE INDEX events_type_received_idx ON deadletter.events (type, received_at DESC);
