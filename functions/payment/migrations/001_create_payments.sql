CREATE TABLE payment.payments (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- One payment per order, however often order.created arrives.
  order_id      uuid NOT NULL UNIQUE,
  user_id       uuid NOT NULL,
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
  -- Decided once, on receipt, and stored: a redelivery never rolls the dice again.
  outcome       text NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
  amount_cents  bigint NOT NULL CHECK (amount_cents >= 0),
  reason        text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  processed_at  timestamptz
);

CREATE INDEX payments_user_idx ON payment.payments (user_id, created_at DESC);
