-- The textbook checkout on PostgreSQL: the seed plan's Inventory Service and
-- Order Service schemas (/work/shared/seed-plan.txt, "Detailed Architecture"),
-- verbatim, all in one database; then what the plan does not give: a products
-- table (the Product Service's prices) and a payments table (the plan names a
-- Payment Service but gives no schema for it); then the indexes the plan's
-- queries need. Loaded by checkout.sh with psql (for \ir). See README.md,
-- "Checkout".

-- ======================================================= Inventory Service (verbatim)
-- inventory and inventory_reservations, with their indexes, exactly as the
-- reservation baseline loads them (psql includes the file).
\ir schema.sql

-- ======================================================= Order Service (verbatim)
CREATE TYPE order_status AS ENUM (
    'PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED',
    'DELIVERED', 'CANCELLED', 'PAYMENT_FAILED'
);

CREATE TABLE orders (
    id UUID PRIMARY KEY,
    user_id VARCHAR(255) NOT NULL,
    total_amount NUMERIC(10, 2) NOT NULL,
    status order_status NOT NULL DEFAULT 'PENDING',
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE order_items (
    id UUID PRIMARY KEY,
    order_id UUID NOT NULL REFERENCES orders(id),
    product_id BIGINT NOT NULL,
    quantity INT NOT NULL,
    unit_price NUMERIC(10, 2) NOT NULL -- Price is locked in from the cart at time of order
);

-- For auditing and debugging the Saga
CREATE TABLE saga_state_log (
    id UUID PRIMARY KEY,
    order_id UUID NOT NULL REFERENCES orders(id),
    step_name VARCHAR(100) NOT NULL, -- e.g., 'RESERVE_INVENTORY', 'PROCESS_PAYMENT'
    is_compensating BOOLEAN NOT NULL DEFAULT FALSE,
    status VARCHAR(50) NOT NULL, -- 'STARTED', 'COMPLETED', 'FAILED'
    details TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- ======================================================= not in the seed plan
-- The Product Service's catalogue, reduced to what checkout reads: the unit
-- price that order_items locks in. (The plan's Product Service is an existing
-- service; its schema is not part of the plan.)
CREATE TABLE products (
    id BIGINT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    price NUMERIC(10, 2) NOT NULL CHECK (price >= 0)
);

-- Payment Service. The seed plan lists it (priority 3: "tightly coupled with
-- the Order Service's state transitions"; depends on an "External Payment
-- Gateway"; Stripe Elements on the frontend; POST /api/v1/payments/process,
-- payment.successful / payment.failed events; idempotent endpoints) but
-- gives no schema, so this one is written in the style of the plan's
-- others: UUID key, a status column, timestamps, one payment per order
-- (order_id UNIQUE: POST /api/v1/payments/process is idempotent per order).
CREATE TABLE payments (
    id UUID PRIMARY KEY,
    order_id UUID NOT NULL UNIQUE, -- Correlates with the order being paid (another service's data)
    amount NUMERIC(10, 2) NOT NULL CHECK (amount >= 0),
    currency CHAR(3) NOT NULL DEFAULT 'USD',
    payment_method_token VARCHAR(255) NOT NULL, -- e.g. 'tok_visa'
    status VARCHAR(50) NOT NULL DEFAULT 'PENDING', -- 'PENDING', 'SUCCEEDED', 'FAILED'
    gateway_reference VARCHAR(255), -- the gateway's charge id, once it answered
    failure_reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Indexes the plan's access paths imply (PostgreSQL does not index the
-- referencing side of a foreign key by itself):
-- GET /api/v1/orders/{orderId} reads the order's items and its saga log;
-- GET /api/v1/orders/user/{userId} lists a user's orders.
CREATE INDEX idx_order_items_order_id ON order_items(order_id);
CREATE INDEX idx_saga_state_log_order_id ON saga_state_log(order_id);
CREATE INDEX idx_orders_user_id ON orders(user_id);
