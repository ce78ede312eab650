-- The one schema for every way of running loadlab (native `loadlab up` and docker compose).
-- Money is integer cents so both services serialise it identically (no Decimal vs float drift).

-- Marks a database as loadlab's: `loadlab up`/`seed` refuse to touch one that already holds
-- tables without this mark, since the seed empties users, orders and the rest.
CREATE TABLE IF NOT EXISTS loadlab_schema (created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS users (
    id          bigserial PRIMARY KEY,
    name        text        NOT NULL,
    email       text        NOT NULL UNIQUE,
    visits      integer     NOT NULL DEFAULT 0 CHECK (visits >= 0),
    last_seen   timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS customers (
    id          bigserial PRIMARY KEY,
    name        text        NOT NULL,
    email       text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS products (
    id           bigserial PRIMARY KEY,
    sku          text    NOT NULL UNIQUE,
    name         text    NOT NULL,
    price_cents  integer NOT NULL CHECK (price_cents >= 0)
);

CREATE TABLE IF NOT EXISTS orders (
    id           bigserial PRIMARY KEY,
    customer_id  bigint      NOT NULL REFERENCES customers (id),
    status       text        NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled')),
    total_cents  bigint      NOT NULL CHECK (total_cents >= 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS order_items (
    id                bigserial PRIMARY KEY,
    order_id          bigint  NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id        bigint  NOT NULL REFERENCES products (id),
    quantity          integer NOT NULL CHECK (quantity > 0),
    unit_price_cents  integer NOT NULL CHECK (unit_price_cents >= 0)
);

-- GET /orders?status=&after_id= walks (status, id) or id alone; GET /orders/{id} loads items by order.
CREATE INDEX IF NOT EXISTS orders_status_id_idx ON orders (status, id);
CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);
CREATE INDEX IF NOT EXISTS order_items_order_id_idx ON order_items (order_id);
CREATE INDEX IF NOT EXISTS order_items_product_id_idx ON order_items (product_id);
