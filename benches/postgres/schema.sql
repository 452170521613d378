-- Main table for tracking stock levels
CREATE TABLE inventory (
    id UUID PRIMARY KEY,
    product_id BIGINT NOT NULL UNIQUE, -- Foreign key relation to product-service's data
    quantity INT NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    version BIGINT NOT NULL DEFAULT 0 -- For optimistic locking, if needed
);

-- Table to manage temporary stock reservations during checkout
CREATE TABLE inventory_reservations (
    id UUID PRIMARY KEY,
    inventory_id UUID NOT NULL REFERENCES inventory(id),
    order_id UUID NOT NULL UNIQUE, -- Correlates with the order being processed
    quantity_reserved INT NOT NULL CHECK (quantity_reserved > 0),
    expires_at TIMESTAMPTZ NOT NULL, -- e.g., 15 minutes from creation
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Indexes
CREATE INDEX idx_inventory_product_id ON inventory(product_id);
CREATE INDEX idx_reservations_expires_at ON inventory_reservations(expires_at); -- For cleanup jobs
