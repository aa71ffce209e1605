CREATE TABLE orders.orders (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id          uuid NOT NULL,
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'paid', 'payment_failed', 'cancelled')),
  total_cents      bigint NOT NULL CHECK (total_cents >= 0),
  -- The payment as the payment function reported it; kept on a cancelled order for a refund.
  payment_id       uuid,
  payment_status   text CHECK (payment_status IN ('succeeded', 'failed')),
  idempotency_key  text,
  request_hash     text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, idempotency_key)
);

CREATE INDEX orders_user_idx ON orders.orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_pending_idx ON orders.orders (created_at) WHERE status = 'pending';

CREATE TABLE orders.order_items (
  order_id         uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
  product_id       uuid NOT NULL,
  -- Name and price as the product function had them at order time.
  name             text NOT NULL,
  quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 999),
  unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
  PRIMARY KEY (order_id, product_id)
);

-- Transactional outbox: written with the order, sent after commit, swept when that failed.
CREATE TABLE orders.outbox (
  id          uuid PRIMARY KEY,          -- the CloudEvent id
  type        text NOT NULL,
  source      text NOT NULL,
  data        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz,
  -- A sweep claims rows for a while instead of holding a transaction open while it publishes.
  claimed_until timestamptz,
  attempts    integer NOT NULL DEFAULT 0,
  last_error  text
);

CREATE INDEX outbox_unsent_idx ON orders.outbox (created_at) WHERE sent_at IS NULL;
