-- Filtered and sorted, the queries with its brand: a word, the filter, in stock,
-- cheapest first. One statement per filter combination, so the planner can
-- combine the btree indexes with the full-text one.
\set n random(1, :n_filtered_brand)
WITH q AS MATERIALIZED (
    SELECT websearch_to_tsquery('mercato_english', b.q) AS tsq, b.brand, b.min_price, b.max_price
      FROM bench_queries b WHERE b.kind = 'filtered_brand' AND b.kn = :n),
m AS MATERIALIZED (
    SELECT p.id, p.category, p.brand, p.price, ts_rank(p.tsv, q.tsq) AS score
      FROM products p, q
     WHERE p.tsv @@ q.tsq AND p.brand = q.brand
       AND p.on_hand > p.reserved)
SELECT (SELECT json_agg(h) FROM (
            SELECT p.id, p.sku, p.name, p.description, p.category, p.brand, p.price, p.attributes,
                   p.low_stock_threshold, p.on_hand - p.reserved AS available, p.created_at,
                   p.updated_at, top.score
              FROM (SELECT id, score, price FROM m ORDER BY price, id LIMIT 20) AS top
              JOIN products p USING (id)
             ORDER BY top.price, id) AS h) AS hits,
       (SELECT count(*) FROM m) AS total,
       (SELECT json_agg(f) FROM (SELECT category AS value, count(*) AS count FROM m
                                  GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 100) AS f) AS category_facets,
       (SELECT json_agg(f) FROM (SELECT brand AS value, count(*) AS count FROM m
                                  GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 100) AS f) AS brand_facets;
