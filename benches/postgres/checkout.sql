-- pgbench script: one order through the seed plan's checkout saga, one SQL
-- transaction per saga step, textbook pessimistic locking. One run of this
-- script is one pgbench "transaction", so pgbench's latency is the time from
-- creating the order (step a) to its CONFIRMED commit (step d), or to its
-- CANCELLED commit when stock ran out (step b).
--
-- Run by checkout.sh (schema: checkout-schema.sql) as
--   pgbench -M prepared -f checkout.sql -D nproducts=N -D hot=0|1 \
--           -D minlines=A -D maxlines=B -D maxqty=Q -D nusers=U ...
-- nproducts: products are 1..N (products.id = inventory.product_id)
-- hot:       0 = products uniform over 1..N; 1 = 90% of orders take all their
--            lines among products 1..10, 10% among 11..N
-- minlines, maxlines: an order has random(A, B) lines, distinct products,
--            1 <= A <= B <= 3
-- maxqty:    each line orders random(1, Q) units
-- nusers:    user_id is random(1, U)
--
-- The steps (seed plan, "Saga Orchestration Flow (Create Order)"):
--   a. POST /api/v1/orders: order PENDING, its items with the prices read
--      from products, saga log RESERVE_INVENTORY STARTED.
--   b. reserve: SELECT ... FOR UPDATE on each line's inventory row, in
--      product_id order (no deadlocks), check the stock of every line; if
--      all suffice: one reservation row per line, decrement quantity, order
--      AWAITING_PAYMENT, saga log RESERVE_INVENTORY COMPLETED. If not: the
--      reservation transaction rolls back (nothing reserved; the inventory
--      service answers 409), and the orchestrator cancels the order in its
--      own transaction: CANCELLED, saga log RESERVE_INVENTORY FAILED
--      'insufficient_stock' (orders has no reason column).
--   c. payment (zero-latency gateway, 'tok_visa' always succeeds): saga log
--      PROCESS_PAYMENT STARTED, payment PENDING, then SUCCEEDED, saga log
--      PROCESS_PAYMENT COMPLETED, in one transaction.
--   d. confirm: commit the reservations (the units already left quantity in
--      step b, so committing deletes the reservation rows: the deduction
--      becomes permanent and no expiry job can give it back), order
--      CONFIRMED, saga log CONFIRM_ORDER COMPLETED.
--
-- Seed-schema limit: inventory_reservations.order_id is UNIQUE, so an order
-- cannot have a reservation row per line under its own id. Each line's
-- reservation carries the id of its order_items row instead (the order is
-- reached through order_items.order_id); step d deletes them by those ids.
--
-- pgbench cannot make UUIDs, which the application would make itself: they
-- come from the server, in the query that reads the prices (no extra round
-- trip). Unused line slots (an order of fewer than 3 lines) repeat one of the
-- order's products with quantity 0 and are never written.
-- (Comments here use "--" only: pgbench reads this file line by line.)

-- ------------------------------------------------------------ the order's lines
\set n random(:minlines, :maxlines)
\if :hot
\set r random(1, 100)
\if :r <= 90
\set lo 1
\set m 10
\else
\set lo 11
\set m :nproducts - 10
\endif
\else
\set lo 1
\set m :nproducts
\endif
-- A uniform sorted sample of n distinct values of 1..m: draw the k-th from
-- 1..m-k+1 and step over the k-1 drawn before (as run.sh does).
\set b1 random(1, :m)
\set p1 :b1 + :lo - 1
\set p2 :p1
\set p3 :p1
\set q1 random(1, :maxqty)
\set q2 0
\set q3 0
\if :n >= 2
\set x random(1, :m - 1)
\set x :x + case when :x >= :b1 then 1 else 0 end
\set c1 least(:b1, :x)
\set c2 greatest(:b1, :x)
\set p1 :c1 + :lo - 1
\set p2 :c2 + :lo - 1
\set q2 random(1, :maxqty)
\endif
\if :n >= 3
\set y random(1, :m - 2)
\set y :y + case when :y >= :c1 then 1 else 0 end
\set y :y + case when :y >= :c2 then 1 else 0 end
\set p1 least(:c1, :y) + :lo - 1
\set p2 (case when :c2 < :y then :c2 when :c1 < :y then :y else :c1 end) + :lo - 1
\set p3 greatest(:c2, :y) + :lo - 1
\set q3 random(1, :maxqty)
\endif
\set user random(1, :nusers)

-- ------------------------------------------------------------ a. create the order (PENDING)
SELECT gen_random_uuid() AS oid, gen_random_uuid() AS it1, gen_random_uuid() AS it2, gen_random_uuid() AS it3,
       (SELECT price FROM products WHERE id = :p1) AS pr1,
       (SELECT price FROM products WHERE id = :p2) AS pr2,
       (SELECT price FROM products WHERE id = :p3) AS pr3 \gset
BEGIN;
INSERT INTO orders (id, user_id, total_amount) VALUES (:oid, :user, :pr1::numeric * :q1 + :pr2::numeric * :q2 + :pr3::numeric * :q3) RETURNING total_amount AS total \gset
\if :n = 1
INSERT INTO order_items (id, order_id, product_id, quantity, unit_price) VALUES (:it1, :oid, :p1, :q1, :pr1);
\elif :n = 2
INSERT INTO order_items (id, order_id, product_id, quantity, unit_price) VALUES (:it1, :oid, :p1, :q1, :pr1), (:it2, :oid, :p2, :q2, :pr2);
\else
INSERT INTO order_items (id, order_id, product_id, quantity, unit_price) VALUES (:it1, :oid, :p1, :q1, :pr1), (:it2, :oid, :p2, :q2, :pr2), (:it3, :oid, :p3, :q3, :pr3);
\endif
INSERT INTO saga_state_log (id, order_id, step_name, status) VALUES (gen_random_uuid(), :oid, 'RESERVE_INVENTORY', 'STARTED');
COMMIT;

-- ------------------------------------------------------------ b. reserve inventory (row locks)
BEGIN;
SELECT id AS inv1, quantity AS qty1 FROM inventory WHERE product_id = :p1 FOR UPDATE \gset
\set ok :qty1 >= :q1
\if :n >= 2
SELECT id AS inv2, quantity AS qty2 FROM inventory WHERE product_id = :p2 FOR UPDATE \gset
\set ok :ok and :qty2 >= :q2
\endif
\if :n >= 3
SELECT id AS inv3, quantity AS qty3 FROM inventory WHERE product_id = :p3 FOR UPDATE \gset
\set ok :ok and :qty3 >= :q3
\endif
\if :ok
\if :n = 1
INSERT INTO inventory_reservations (id, inventory_id, order_id, quantity_reserved, expires_at) VALUES (gen_random_uuid(), :inv1, :it1, :q1, now() + interval '15 minutes');
\elif :n = 2
INSERT INTO inventory_reservations (id, inventory_id, order_id, quantity_reserved, expires_at) VALUES (gen_random_uuid(), :inv1, :it1, :q1, now() + interval '15 minutes'), (gen_random_uuid(), :inv2, :it2, :q2, now() + interval '15 minutes');
\else
INSERT INTO inventory_reservations (id, inventory_id, order_id, quantity_reserved, expires_at) VALUES (gen_random_uuid(), :inv1, :it1, :q1, now() + interval '15 minutes'), (gen_random_uuid(), :inv2, :it2, :q2, now() + interval '15 minutes'), (gen_random_uuid(), :inv3, :it3, :q3, now() + interval '15 minutes');
\endif
UPDATE inventory SET quantity = quantity - :q1 WHERE id = :inv1;
\if :n >= 2
UPDATE inventory SET quantity = quantity - :q2 WHERE id = :inv2;
\endif
\if :n >= 3
UPDATE inventory SET quantity = quantity - :q3 WHERE id = :inv3;
\endif
UPDATE orders SET status = 'AWAITING_PAYMENT', updated_at = now() WHERE id = :oid AND status = 'PENDING';
INSERT INTO saga_state_log (id, order_id, step_name, status) VALUES (gen_random_uuid(), :oid, 'RESERVE_INVENTORY', 'COMPLETED');
COMMIT;

-- ------------------------------------------------------------ c. payment (zero-latency gateway)
BEGIN;
INSERT INTO saga_state_log (id, order_id, step_name, status) VALUES (gen_random_uuid(), :oid, 'PROCESS_PAYMENT', 'STARTED');
INSERT INTO payments (id, order_id, amount, payment_method_token) VALUES (gen_random_uuid(), :oid, :total, 'tok_visa') RETURNING id AS pay \gset
UPDATE payments SET status = 'SUCCEEDED', gateway_reference = 'ch_' || md5(id::text), updated_at = now() WHERE id = :pay AND status = 'PENDING';
INSERT INTO saga_state_log (id, order_id, step_name, status) VALUES (gen_random_uuid(), :oid, 'PROCESS_PAYMENT', 'COMPLETED');
COMMIT;

-- ------------------------------------------------------------ d. confirm, commit the reservations
BEGIN;
WITH gone AS (DELETE FROM inventory_reservations WHERE order_id IN (:it1, :it2, :it3) RETURNING 1) SELECT count(*) AS committed FROM gone \gset
\if :committed = :n
UPDATE orders SET status = 'CONFIRMED', updated_at = now() WHERE id = :oid AND status = 'AWAITING_PAYMENT';
INSERT INTO saga_state_log (id, order_id, step_name, status) VALUES (gen_random_uuid(), :oid, 'CONFIRM_ORDER', 'COMPLETED');
COMMIT;
\else
-- A reservation had expired and been released: never within this benchmark
-- (15 minutes); the order stays AWAITING_PAYMENT and checkout.sh reports it.
ROLLBACK;
\endif

\else
-- ------------------------------------------------------------ b'. insufficient stock: cancel
ROLLBACK;
BEGIN;
UPDATE orders SET status = 'CANCELLED', updated_at = now() WHERE id = :oid AND status = 'PENDING';
INSERT INTO saga_state_log (id, order_id, step_name, status, details) VALUES (gen_random_uuid(), :oid, 'RESERVE_INVENTORY', 'FAILED', 'insufficient_stock');
COMMIT;
\endif
