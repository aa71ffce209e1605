-- A stored dead letter can be sent again to the Broker that carries its type
-- (POST /internal/dead-letters/redrive), once: the redrive that sends it marks it. From here on a
-- redelivery also takes the latest failure's extensions and error_* columns, and one that comes
-- after a redrive (the event failed again) makes it wait for the next redrive.
ALTER TABLE deadletter.events
  -- When it was last sent again; null while it waits for a redrive (and again when it comes back
  -- dead-lettered after one).
  ADD COLUMN redriven_at   timestamptz,
  -- How many times it was sent again.
  ADD COLUMN redrives      integer NOT NULL DEFAULT 0,
  -- Why the last redrive could not send it; cleared by one that does.
  ADD COLUMN redrive_error text;

-- What a redrive takes: the events still waiting, oldest first.
CREATE INDEX events_waiting_idx ON deadletter.events (received_at) WHERE redriven_at IS NULL;
