-- Suggest: completions of the last word typed (earlier words must match
-- too): categories and brands (a small table), then product names from the
-- unstemmed tsvector's GIN index. Product names are not ranked: ranking costs
-- as much as the whole match set, and a PostgreSQL shop after speed skips it.
\set n random(1, :n_suggest)
WITH q AS MATERIALIZED (
    SELECT prefix_tsquery(b.q) AS tsq
      FROM bench_queries b WHERE b.kind = 'suggest' AND b.kn = :n)
SELECT json_agg(s) AS items FROM (
    (SELECT t.kind, t.term AS text, NULL::bigint AS product_id
       FROM suggest_terms t, q WHERE t.tsv @@ q.tsq
      ORDER BY t.kind = 'brand', t.products DESC LIMIT 8)
    UNION ALL
    (SELECT 'product', p.name, p.id FROM products p, q WHERE p.tsv_prefix @@ q.tsq LIMIT 8)
    LIMIT 8) AS s;
