-- pgbench script: one single-line stock reservation, textbook pessimistic locking.
--
-- Run by run.sh as
--   pgbench -M prepared -f reserve.sql -D nproducts=N -D hot=0|1 -D maxqty=Q ...
-- nproducts: products are product_id 1..N
-- hot:       0 = product uniform over 1..N;
--            1 = 90% of transactions on products 1..10, 10% uniform over 11..N
-- maxqty:    each reservation asks for random(1, maxqty) units
--
-- Insufficient stock: ROLLBACK, nothing is decremented. pgbench still counts the
-- script as one transaction; run.sh derives the number of rejections from the
-- number of reservation rows actually written.
-- (Comments here use "--" only: pgbench reads this file line by line.)

\if :hot
\set r random(1, 100)
\if :r <= 90
\set p random(1, 10)
\else
\set p random(11, :nproducts)
\endif
\else
\set p random(1, :nproducts)
\endif
\set q random(1, :maxqty)

BEGIN;
SELECT id AS inv_id, quantity AS inv_qty FROM inventory WHERE product_id = :p FOR UPDATE \gset
\if :inv_qty >= :q
INSERT INTO inventory_reservations (id, inventory_id, order_id, quantity_reserved, expires_at) VALUES (gen_random_uuid(), :inv_id, gen_random_uuid(), :q, now() + interval '15 minutes');
UPDATE inventory SET quantity = quantity - :q WHERE id = :inv_id;
COMMIT;
\else
ROLLBACK;
\endif
