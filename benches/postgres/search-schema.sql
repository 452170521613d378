-- PostgreSQL baseline of Mercato's search benchmark: "the best a PostgreSQL
-- shop would do" with what PostgreSQL ships (see README.md, "Search").
-- Loaded by search.sh into its private cluster; the catalog rows come from
-- the same JSON lines Mercato loads.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Full text: English stemming with accents folded ("Lumière" = "lumiere").
-- A configuration named in to_tsvector(regconfig, text) keeps the call
-- IMMUTABLE, so it can feed a stored generated column.
CREATE TEXT SEARCH CONFIGURATION mercato_english (COPY = english);
ALTER TEXT SEARCH CONFIGURATION mercato_english
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;
-- As typed: no stemming, so that a prefix of a word matches the word ("runni"
-- is not a prefix of the stem "run").
CREATE TEXT SEARCH CONFIGURATION mercato_simple (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION mercato_simple
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple;

CREATE TABLE products (
    id bigint PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    description text NOT NULL,
    category text NOT NULL,
    brand text NOT NULL,
    price numeric(12, 2) NOT NULL,
    attributes jsonb NOT NULL,
    low_stock_threshold integer NOT NULL,
    on_hand integer NOT NULL CHECK (on_hand >= 0),
    reserved integer NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Weights: name A, brand and category B, description C.
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('mercato_english'::regconfig, name), 'A') ||
        setweight(to_tsvector('mercato_english'::regconfig, brand || ' ' || replace(category, '-', ' ')), 'B') ||
        setweight(to_tsvector('mercato_english'::regconfig, description), 'C')) STORED,
    -- For prefixes as typed and suggestions: the words of name, brand and category, unstemmed.
    tsv_prefix tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('mercato_simple'::regconfig, name), 'A') ||
        setweight(to_tsvector('mercato_simple'::regconfig, brand || ' ' || replace(category, '-', ' ')), 'B')) STORED
);

-- Brands and categories for suggestions (kind "brand" and "category").
CREATE TABLE suggest_terms (
    kind text NOT NULL,
    term text NOT NULL,
    products integer NOT NULL,
    tsv tsvector NOT NULL,
    PRIMARY KEY (kind, term)
);

-- The query set both systems answer (benches/search/generate_queries.py).
-- kind is the type, with `filtered` split by which filters a query has
-- (filtered_brand, filtered_price, filtered_both): each kind gets its own
-- statement, so the planner can combine the brand index with the full-text
-- one. kn numbers the queries of a kind 1..n for pgbench's random().
CREATE TABLE bench_queries (
    id integer PRIMARY KEY,
    type text NOT NULL,
    kind text NOT NULL,
    kn integer NOT NULL,
    q text NOT NULL,
    category text,
    brand text,
    min_price numeric(12, 2),
    max_price numeric(12, 2),
    in_stock boolean NOT NULL,
    sort text NOT NULL,
    lim integer NOT NULL,
    expect_id bigint,
    UNIQUE (kind, kn)
);

-- The tsquery of a prefix as typed: every word as typed, the last one as a
-- prefix ('wireless' & 'hea':*).
CREATE FUNCTION prefix_tsquery(input text) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_tsquery('mercato_simple'::regconfig,
                      string_agg(quote_literal(w) || CASE WHEN n = last THEN ':*' ELSE '' END,
                                 ' & ' ORDER BY n))
      FROM (SELECT w, n, max(n) OVER () AS last
              FROM regexp_split_to_table(lower(input), '[^[:alnum:]]+') WITH ORDINALITY AS t(w, n)
             WHERE w <> '') AS words
$$;
