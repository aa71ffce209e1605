-- An order still pending ORDER_EXPIRE_AFTER_S after it was placed ends 'expired'. A charged order
-- that was cancelled (or expired) keeps its status and shows its payment 'refunded' once the
-- payment function has given the money back.
ALTER TABLE orders.orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders.orders ADD CONSTRAINT orders_status_check
  CHECK (status IN ('pending', 'paid', 'payment_failed', 'cancelled', 'expired'));
ALTER TABLE orders.orders DROP CONSTRAINT orders_payment_status_check;
ALTER TABLE orders.orders ADD CONSTRAINT orders_payment_status_check
  CHECK (payment_status IN ('succeeded', 'failed', 'refunded'));

-- The sweep announces a pending order again from its last order.created in the outbox.
CREATE INDEX outbox_order_created_idx ON orders.outbox (((data->>'order_id')::uuid), created_at) WHERE type = 'order.created';
