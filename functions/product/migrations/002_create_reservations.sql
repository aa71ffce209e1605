-- Stock held for an order, one row per order id, written only by the product function.
--   held       units taken at order time; they come back at expires_at unless order.created confirms
--   confirmed  order.created arrived: the units stay taken until the order is cancelled or its payment fails
--   released   the units came back (or, for a tombstone, were never taken): nothing moves them again
-- Releasing is a guarded UPDATE (status IN ('held', 'confirmed')) in the same transaction as the
-- stock it gives back, so a release happens once however often its event arrives.
CREATE TABLE product.reservations (
  order_id        uuid PRIMARY KEY,
  user_id         uuid NOT NULL,
  status          text NOT NULL CHECK (status IN ('held', 'confirmed', 'released')),
  -- Why it was released. hold_expired is the only reason a late order.created may take the units
  -- again: the order exists after all. A tombstone (a release that came before any reserve) has
  -- no lines, so a later reserve for its order takes nothing.
  release_reason  text CHECK (release_reason IN ('hold_expired', 'order_cancelled', 'order_expired', 'payment_failed')),
  expires_at      timestamptz NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  confirmed_at    timestamptz,
  released_at     timestamptz,
  CHECK ((status = 'released') = (release_reason IS NOT NULL AND released_at IS NOT NULL))
);

-- What the expiry sweep scans: unconfirmed holds, soonest first.
CREATE INDEX reservations_held_expiry_idx ON product.reservations (expires_at) WHERE status = 'held';

-- The lines, with the name and price they were sold at, so a repeated reserve answers the same body.
-- No foreign key to products: a product deleted while reserved must not block the delete, and
-- giving back units of a product that is gone updates nothing.
CREATE TABLE product.reservation_lines (
  order_id         uuid NOT NULL REFERENCES product.reservations (order_id) ON DELETE CASCADE,
  product_id       uuid NOT NULL,
  name             text NOT NULL,
  quantity         integer NOT NULL CHECK (quantity > 0),
  unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
  PRIMARY KEY (order_id, product_id)
);
