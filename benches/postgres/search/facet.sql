-- A facet-only browse: one category, no words; first page by id, exact total, facets.
\set n random(1, :n_facet)
WITH q AS MATERIALIZED (
    SELECT b.category FROM bench_queries b WHERE b.kind = 'facet' AND b.kn = :n),
m AS MATERIALIZED (
    SELECT p.id, p.category, p.brand, p.price, 0::real AS score
      FROM products p WHERE p.category = (SELECT category FROM q))
SELECT (SELECT json_agg(h) FROM (
            SELECT p.id, p.sku, p.name, p.description, p.category, p.brand, p.price, p.attributes,
                   p.low_stock_threshold, p.on_hand - p.reserved AS available, p.created_at,
                   p.updated_at, top.score
              FROM (SELECT id, score, price FROM m ORDER BY id LIMIT 20) AS top
              JOIN products p USING (id)
             ORDER BY id) AS h) AS hits,
       (SELECT count(*) FROM m) AS total,
       (SELECT json_agg(f) FROM (SELECT category AS value, count(*) AS count FROM m
                                  GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 100) AS f) AS category_facets,
       (SELECT json_agg(f) FROM (SELECT brand AS value, count(*) AS count FROM m
                                  GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 100) AS f) AS brand_facets;
