-- A cancelled order is never charged. A payment not yet decided when its order is cancelled ends
-- 'cancelled' (the row may even come first, from order.cancelled: a later order.created then finds
-- it and charges nothing); one already charged ends 'refunded'.
ALTER TABLE payment.payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payment.payments ADD CONSTRAINT payments_status_check
  CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled', 'refunded'));

-- A payment cancelled before its order.created arrived never had an outcome decided.
ALTER TABLE payment.payments ALTER COLUMN outcome DROP NOT NULL;
ALTER TABLE payment.payments ADD CONSTRAINT payments_outcome_decided CHECK (outcome IS NOT NULL OR status = 'cancelled');

ALTER TABLE payment.payments
  -- The id of the payment.status `refunded` event: stored, so that a resend is the same event.
  ADD COLUMN refund_id   uuid UNIQUE,
  ADD COLUMN refunded_at timestamptz,
  ADD CONSTRAINT payments_refund_recorded CHECK ((status = 'refunded') = (refund_id IS NOT NULL AND refunded_at IS NOT NULL));
