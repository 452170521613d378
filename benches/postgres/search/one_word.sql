-- One word: websearch_to_tsquery on the weighted English tsvector, ranked by ts_rank.
\set n random(1, :n_one_word)
WITH q AS MATERIALIZED (
    SELECT websearch_to_tsquery('mercato_english', b.q) AS tsq
      FROM bench_queries b WHERE b.kind = 'one_word' AND b.kn = :n),
m AS MATERIALIZED (
    SELECT p.id, p.category, p.brand, p.price, ts_rank(p.tsv, q.tsq) AS score
      FROM products p, q WHERE p.tsv @@ q.tsq)
SELECT (SELECT json_agg(h) FROM (
            SELECT p.id, p.sku, p.name, p.description, p.category, p.brand, p.price, p.attributes,
                   p.low_stock_threshold, p.on_hand - p.reserved AS available, p.created_at,
                   p.updated_at, top.score
              FROM (SELECT id, score, price FROM m ORDER BY score DESC, id LIMIT 20) AS top
              JOIN products p USING (id)
             ORDER BY top.score DESC, id) AS h) AS hits,
       (SELECT count(*) FROM m) AS total,
       (SELECT json_agg(f) FROM (SELECT category AS value, count(*) AS count FROM m
                                  GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 100) AS f) AS category_facets,
       (SELECT json_agg(f) FROM (SELECT brand AS value, count(*) AS count FROM m
                                  GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 100) AS f) AS brand_facets;
