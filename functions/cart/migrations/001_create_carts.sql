CREATE TABLE cart.carts (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cart.cart_items (
  cart_id    uuid NOT NULL REFERENCES cart.carts (id) ON DELETE CASCADE,
  product_id uuid NOT NULL,
  quantity   integer NOT NULL CHECK (quantity BETWEEN 1 AND 999),
  added_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (cart_id, product_id)
);

-- order.created events already applied to a cart: the broker delivers at least once.
CREATE TABLE cart.processed_orders (
  order_id     uuid PRIMARY KEY,
  processed_at timestamptz NOT NULL DEFAULT now()
);
