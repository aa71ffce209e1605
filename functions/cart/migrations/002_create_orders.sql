-- What the cart knows of each order, one row per order: the lines order.created took out of the
-- cart, and whether a cancel or a failed payment put them back. payment.status carries no lines,
-- so they are kept here. Each happens once per order, however often and in whatever order the
-- events arrive: every consumer locks this row first.
CREATE TABLE cart.orders (
  order_id    uuid PRIMARY KEY,
  -- Set by order.created; a row made first by a cancel or a failed payment has none yet.
  user_id     uuid,
  -- The order's lines summed per product, [{"product_id", "quantity"}].
  lines       jsonb,
  -- When order.created was applied: the lines taken out of the cart (none, if they went back first).
  applied_at  timestamptz,
  -- When the lines went back. Set before order.created came, it tells order.created to take nothing.
  restored_at timestamptz
);

-- The orders applied before this table, their lines unknown: a cancel of one puts nothing back.
INSERT INTO cart.orders (order_id, applied_at) SELECT order_id, processed_at FROM cart.processed_orders;
DROP TABLE cart.processed_orders;
