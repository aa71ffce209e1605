-- The buyer's email as their token said it when the order was placed, for the admin's listing of
-- every user's orders (the order function never reads auth's schema). NULL for orders placed
-- before it was kept.
ALTER TABLE orders.orders ADD COLUMN user_email text;

-- Every user's orders, newest first: the admin's listing.
CREATE INDEX orders_created_idx ON orders.orders (created_at DESC, id DESC);
