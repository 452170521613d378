#!/usr/bin/env bash
# PostgreSQL baseline for `mercato bench search`: full-text search over the
# same catalog and the same query set, as a PostgreSQL shop would build it
# (tsvector + GIN, pg_trgm for typos, btree filters), driven by pgbench.
# See README.md next to this file ("Search"). `search.sh --help` lists the options.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=search.sh
# shellcheck source=pgcluster.sh
. "$HERE/pgcluster.sh"

# ---------------------------------------------------------------- defaults
CLIENTS="2 4 8 16"
CATALOG=""
QUERIES=""
DURATION=10
WARMUP=2
RATES="20 200"
OPEN_CLIENTS=16
TYPES="one_word typo prefix facet filtered suggest"
ALL_TYPES=" one_word typo prefix facet filtered suggest "
EXPLAIN=0

usage() {
    cat <<EOF
Usage: $(basename "$0") --catalog FILE --queries FILE [OPTIONS]

PostgreSQL baseline for Mercato's search benchmark: a private, throw-away
PostgreSQL cluster (127.0.0.1 only) loaded with the catalog (JSON lines, as
\`mercato serve --catalog\` reads it): a weighted English tsvector (name A,
brand and category B, description C; accents folded) and an unstemmed one
for prefixes, GIN indexes on both, a pg_trgm GIN index on the name, btree
indexes on category, brand and price. Then, for each query type of the query
set (benches/search/generate_queries.py), pgbench runs that type's SQL
(search/TYPE.sql: hits, exact total and facets (up to 100 values each, most frequent first, as Mercato answers) in one statement):

  1. every query once through psql: mean total, queries with no result,
     and how often the product a query was made from is among the hits;
  2. open loop: each rate of --rates, from --open-clients clients, for --duration
     seconds (pgbench -R: latency counted from each query's scheduled start,
     so queueing behind slow answers is included);
  3. closed loop: each client count of --clients, --duration seconds each;
     the best is PostgreSQL's highest queries/s.

Options:
  --catalog FILE     catalog JSON lines (python3 data/generate_catalog.py --count 100000)
  --queries FILE     query set JSON lines (benches/search/generate_queries.py)
  --types "T ..."    query types to run (default "$TYPES")
  --rates "R ..."    open-loop rates in queries/s, one run each (default "$RATES";
                     "" skips the open loop)
  --open-clients C   clients of the open loop (default $OPEN_CLIENTS)
  --duration SECS    seconds of each measured run (default $DURATION)
  --warmup SECS      seconds of unmeasured load before each type (default $WARMUP)
  --explain          print EXPLAIN (ANALYZE, BUFFERS) of a broad and a narrow query
                     of every kind (also saved with --save-logs)
$(common_options_usage | sed "s/default \"8 16 32 64\"/default \"$CLIENTS\"/")

Output: the load and index build times, then per type the open-loop
latency (p50/p90/p99/p99.9/max ms) at the achieved rate and the closed-loop
queries/s and latency per client count. Exit status 0 on success, 2 on usage
errors, other on errors. The cluster and its directory are removed on exit.
EOF
}

while (($#)); do
    if parse_common_option "$@"; then shift "$SHIFT"; continue; fi
    case "$1" in
        --catalog) CATALOG=${2:-}; shift 2 || usage_die "--catalog needs a value" ;;
        --queries) QUERIES=${2:-}; shift 2 || usage_die "--queries needs a value" ;;
        --types) TYPES=${2:-}; shift 2 || usage_die "--types needs a value" ;;
        --rates) RATES=${2-}; shift 2 || usage_die "--rates needs a value" ;;
        --open-clients) OPEN_CLIENTS=${2:-}; shift 2 || usage_die "--open-clients needs a value" ;;
        --duration) DURATION=${2:-}; shift 2 || usage_die "--duration needs a value" ;;
        --warmup) WARMUP=${2:-}; shift 2 || usage_die "--warmup needs a value" ;;
        --explain) EXPLAIN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage_die "unknown option: $1" ;;
    esac
done

# ---------------------------------------------------------------- validation
validate_common_options
require_uints DURATION:duration WARMUP:warmup OPEN_CLIENTS:open-clients
[[ -n $CATALOG && -r $CATALOG ]] || usage_die "--catalog FILE is needed and must be readable"
[[ -n $QUERIES && -r $QUERIES ]] || usage_die "--queries FILE is needed and must be readable"
CATALOG=$(cd "$(dirname "$CATALOG")" && pwd)/$(basename "$CATALOG")
QUERIES=$(cd "$(dirname "$QUERIES")" && pwd)/$(basename "$QUERIES")
((DURATION >= 1 && DURATION <= 600)) || usage_die "--duration must be in 1..600"
((WARMUP <= 60)) || usage_die "--warmup must be at most 60"
((OPEN_CLIENTS >= 1 && OPEN_CLIENTS <= 290)) || usage_die "--open-clients must be in 1..290"
read -r -a RATE_LIST <<<"$RATES"
for r in "${RATE_LIST[@]}"; do
    is_uint "$r" && ((r >= 1 && r <= 100000)) || usage_die "--rates: '$r' is not in 1..100000"
done
read -r -a TYPE_LIST <<<"$TYPES"
((${#TYPE_LIST[@]} >= 1)) || usage_die "--types is empty"
for t in "${TYPE_LIST[@]}"; do
    [[ $ALL_TYPES == *" $t "* ]] || usage_die "--types: unknown type '$t' (known:$ALL_TYPES)"
done
command -v python3 >/dev/null 2>&1 || die "python3 is needed (to read the query set and the answers)"

# ---------------------------------------------------------------- cluster
PGB_TIMEOUT=$((DURATION + WARMUP + 120))
BUDGET=$((1800 + ${#TYPE_LIST[@]} * (${#CLIENT_LIST[@]} + ${#RATE_LIST[@]} + 1) * PGB_TIMEOUT))
# Reads only: durability stays at its defaults and does not matter. The
# sizing a search database would get on this machine (24 GiB of memory), and
# no JIT: it compiles expressions of "expensive" plans, tens of milliseconds
# that a short query never earns back.
PG_EXTRA_CONF="shared_buffers = 2GB
effective_cache_size = 16GB
work_mem = 64MB
maintenance_work_mem = 1GB
random_page_cost = 1.1
jit = off"
pg_setup_cluster

# ---------------------------------------------------------------- schema + load
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.3f", b - a }'; }

psql_q -f "$HERE/search-schema.sql" >/dev/null
# Each JSON line is read whole into a jsonb column: CSV with quote and
# delimiter characters that JSON text never holds raw.
copy_raw() { # copy_raw TABLE FILE
    psql_q -c "\\copy $1 (doc) FROM '$2' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')" >/dev/null
}
psql_q -c "CREATE UNLOGGED TABLE raw_catalog (doc jsonb NOT NULL)" >/dev/null
t0=$(now_s)
copy_raw raw_catalog "$CATALOG"
T_COPY=$(elapsed "$t0")
t0=$(now_s)
psql_q >/dev/null <<'EOF'
INSERT INTO products (id, sku, name, description, category, brand, price, attributes,
                      low_stock_threshold, on_hand)
SELECT (doc->>'id')::bigint, doc->>'sku', doc->>'name', doc->>'description', doc->>'category',
       doc->>'brand', (doc->>'price')::numeric, doc->'attributes',
       (doc->>'low_stock_threshold')::int, (doc->>'on_hand')::int
  FROM raw_catalog;
EOF
T_INSERT=$(elapsed "$t0")
PRODUCTS=$(psql_q -c "SELECT count(*) FROM products")
log "loaded $PRODUCTS products (copy ${T_COPY} s, insert with both tsvectors ${T_INSERT} s)"
t0=$(now_s)
psql_q >/dev/null <<'EOF'
CREATE INDEX products_tsv ON products USING gin (tsv);
CREATE INDEX products_tsv_prefix ON products USING gin (tsv_prefix);
CREATE INDEX products_name_trgm ON products USING gin (name gin_trgm_ops);
CREATE INDEX products_category ON products (category, id);
CREATE INDEX products_brand_price ON products (brand, price);
CREATE INDEX products_price ON products (price);
INSERT INTO suggest_terms (kind, term, products, tsv)
SELECT 'category', category, count(*), to_tsvector('mercato_simple', replace(category, '-', ' '))
  FROM products GROUP BY category
UNION ALL
SELECT 'brand', brand, count(*), to_tsvector('mercato_simple', brand)
  FROM products GROUP BY brand;
CREATE INDEX suggest_terms_tsv ON suggest_terms USING gin (tsv);
EOF
T_INDEX=$(elapsed "$t0")
t0=$(now_s)
psql_q -c "VACUUM (ANALYZE) products" >/dev/null
psql_q -c "VACUUM (ANALYZE) suggest_terms" >/dev/null
T_ANALYZE=$(elapsed "$t0")
psql_q -c "DROP TABLE raw_catalog" >/dev/null
T_BUILD=$(awk -v a="$T_INSERT" -v b="$T_INDEX" -v c="$T_ANALYZE" 'BEGIN { printf "%.3f", a + b + c }')
BUILD_RATE=$(awk -v n="$PRODUCTS" -v t="$T_BUILD" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }')
TABLE_SIZE=$(psql_q -c "SELECT pg_size_pretty(pg_table_size('products'))")
INDEXES_SIZE=$(psql_q -c "SELECT pg_size_pretty(pg_indexes_size('products'))")
SIZES="$TABLE_SIZE, $INDEXES_SIZE"
log "indexes built in ${T_INDEX} s, analyzed in ${T_ANALYZE} s: $BUILD_RATE products/s from rows to searchable (table, indexes: $SIZES)"

# ---------------------------------------------------------------- query set
psql_q -c "CREATE UNLOGGED TABLE raw_queries (doc jsonb NOT NULL)" >/dev/null
copy_raw raw_queries "$QUERIES"
psql_q >/dev/null <<'EOF'
INSERT INTO bench_queries (id, type, kind, kn, q, category, brand, min_price, max_price, in_stock,
                           sort, lim, expect_id)
SELECT id, type, kind, row_number() OVER (PARTITION BY kind ORDER BY id), q, category, brand,
       min_price, max_price, in_stock, sort, lim, expect_id
  FROM (SELECT (doc->>'id')::int AS id, doc->>'type' AS type,
               CASE WHEN doc->>'type' <> 'filtered' THEN doc->>'type'
                    WHEN doc->>'brand' IS NOT NULL AND doc->>'min_price' IS NOT NULL THEN 'filtered_both'
                    WHEN doc->>'brand' IS NOT NULL THEN 'filtered_brand'
                    ELSE 'filtered_price' END AS kind,
               coalesce(doc->>'q', '') AS q, doc->>'category' AS category, doc->>'brand' AS brand,
               (doc->>'min_price')::numeric AS min_price, (doc->>'max_price')::numeric AS max_price,
               coalesce((doc->>'in_stock')::boolean, false) AS in_stock,
               coalesce(doc->>'sort', 'relevance') AS sort, coalesce((doc->>'limit')::int, 20) AS lim,
               (doc->>'expect_id')::bigint AS expect_id
          FROM raw_queries) AS r;
DROP TABLE raw_queries;
ANALYZE bench_queries;
EOF
# n_KIND=count for every kind, as pgbench -D options.
declare -A KIND_COUNT=()
while read -r kind count; do
    [[ -n $kind ]] && KIND_COUNT[$kind]=$count
done < <(psql_q -F ' ' -c "SELECT kind, count(*) FROM bench_queries GROUP BY kind ORDER BY kind")
DEFINES=()
for kind in one_word typo prefix facet filtered_brand filtered_price filtered_both suggest; do
    DEFINES+=(-D "n_$kind=${KIND_COUNT[$kind]:-0}")
done

# The pgbench scripts of a type: "-f FILE@WEIGHT ..." (filtered: one per
# filter combination, weighted by its share of the queries).
scripts_of() {
    local type=$1 kind
    SCRIPTS=()
    if [[ $type == filtered ]]; then
        for kind in filtered_brand filtered_price filtered_both; do
            ((${KIND_COUNT[$kind]:-0} > 0)) && SCRIPTS+=(-f "$HERE/search/$kind.sql@${KIND_COUNT[$kind]}")
        done
    else
        ((${KIND_COUNT[$type]:-0} > 0)) && SCRIPTS+=(-f "$HERE/search/$type.sql")
    fi
    ((${#SCRIPTS[@]} > 0))
}
kinds_of() { if [[ $1 == filtered ]]; then echo filtered_brand filtered_price filtered_both; else echo "$1"; fi; }

# Every query of a type once, through psql: prints "queries mean_total
# zero_results expect_queries expect_found" (expect_found: the product the
# query was made from is among the hits, or the suggestions).
answer_stats() {
    local type=$1 kind n body
    : >"$WORK/answers.txt"
    for kind in $(kinds_of "$type"); do
        n=${KIND_COUNT[$kind]:-0}
        ((n > 0)) || continue
        # The statement as a subquery, its row as one line of JSON.
        body=$(sed '/^\\set /d; /^--/d' "$HERE/search/$kind.sql")
        body=${body%;}
        {
            for ((i = 1; i <= n; i++)); do
                printf '\\set n %d\nSELECT (SELECT expect_id FROM bench_queries WHERE kind = %s AND kn = :n), to_jsonb(answer)::text FROM (%s) AS answer;\n' \
                    "$i" "'$kind'" "$body"
            done
        } | psql_q -F $'\t' >>"$WORK/answers.txt"
    done
    python3 - "$type" "$WORK/answers.txt" <<'EOF'
import json, sys
kind, path = sys.argv[1], sys.argv[2]
queries = total = zero = expects = found = 0
for line in open(path, encoding="utf-8"):
    if not line.strip():
        continue
    expect, answer = line.rstrip("\n").split("\t", 1)
    answer = json.loads(answer)
    queries += 1
    if kind == "suggest":
        items = answer["items"] or []
        n = len(items)
        ids = {item["product_id"] for item in items}
    else:
        n = answer["total"]
        ids = {hit["id"] for hit in answer["hits"] or []}
    total += n
    zero += n == 0
    if expect:
        expects += 1
        found += int(expect) in ids
print(queries, f"{total / max(queries, 1):.1f}", zero, expects, found)
EOF
}

# Latency percentiles (ms), count and rate of the transactions in pgbench's
# per-transaction logs, leaving out the first second of the run (each
# client prepares its statements on first use: that second is the
# warm-up): "count rate p50 p90 p99 p999 max", the rate being the count
# over the measured window. Under -R the logged time runs from the
# transaction's scheduled start.
log_stats() { # log_stats SECONDS FILE...: SECONDS is the measured window
    local window=$1
    shift
    cat "$@" | awk '$3 ~ /^[0-9]+$/ { printf "%.6f %s\n", $5 + $6 / 1e6, $3 }' | sort -n |
        awk 'NR == 1 { from = $1 + 1.0 } $1 >= from { print $2 }' | sort -n |
        awk -v window="$window" '
        { v[NR] = $1 }
        function rank(p,   r) { r = int(p * NR); if (r < p * NR) r++; if (r < 1) r = 1; return v[r] }
        END {
            if (NR == 0) { print "0 null null null null null null"; exit }
            printf "%d %.3f %.3f %.3f %.3f %.3f %.3f\n", NR, NR / window,
                rank(0.50) / 1000, rank(0.90) / 1000, rank(0.99) / 1000, rank(0.999) / 1000, v[NR] / 1000
        }'
}
# run_type_pgbench LABEL SECONDS ARGS...: pgbench with the type's scripts for
# SECONDS plus the one-second warm-up; sets STATS ("count rate p50 p90 p99
# p999 max", from the log after the warm-up).
run_type_pgbench() {
    local label=$1 seconds=$2 out rc=0
    shift 2
    out="$WORK/out/search_$label.txt"
    (cd "$WORK/txlog" && exec timeout -k 10 "$PGB_TIMEOUT" "$PG_BIN/pgbench" -n -M prepared -l \
        --log-prefix="$label" -T "$((seconds + 1))" "$@" "${DEFINES[@]}" "${SCRIPTS[@]}") >"$out" 2>&1 </dev/null &
    PGBENCH_PID=$!
    wait "$PGBENCH_PID" || rc=$?
    PGBENCH_PID=""
    ((VERBOSE)) && cat "$out" >&2
    if ((rc != 0)); then
        tail -n 40 "$out" >&2
        die "pgbench failed (exit $rc) for run $label"
    fi
    STATS=$(log_stats "$seconds" "$WORK"/txlog/"$label".*)
    rm -f "$WORK"/txlog/"$label".*
}

# EXPLAIN ANALYZE of the query of a kind with the most and the fewest matches.
explain_kind() {
    local kind=$1 n=${KIND_COUNT[$1]:-0} body out="$WORK/out/explain_$1.txt" i
    ((n > 0)) || return 0
    body=$(sed '/^\\set /d; /^--/d' "$HERE/search/$kind.sql")
    : >"$out"
    for i in 1 $(((n + 1) / 2)); do
        printf -- '-- %s, query %d of %d\n' "$kind" "$i" "$n" >>"$out"
        printf '\\set n %d\nSELECT q FROM bench_queries WHERE kind = %s AND kn = :n;\nEXPLAIN (ANALYZE, BUFFERS, COSTS OFF) %s\n' \
            "$i" "'$kind'" "$body" | psql_q >>"$out"
    done
    cat "$out" >&2
}

if ((EXPLAIN)); then
    for t in "${TYPE_LIST[@]}"; do
        for kind in $(kinds_of "$t"); do explain_kind "$kind"; done
    done
fi

measure_cpu_busy
RESULTS=()   # "type queries mean_total zero expect found best_c best_qps"
OPEN=()      # "type rate  count achieved p50 p90 p99 p999 max"
CLOSED=()    # "type clients  count rate p50 p90 p99 p999 max"
for type in "${TYPE_LIST[@]}"; do
    scripts_of "$type" || { log "no $type queries in $QUERIES: skipped"; continue; }
    read -r nq mean_total zero nexp found <<<"$(answer_stats "$type")"
    log "$type: $nq queries, mean total $mean_total, $zero with no result, source product found in $found of $nexp"
    if ((WARMUP > 0)); then
        run_type_pgbench "warm_$type" "$WARMUP" -c "$OPEN_CLIENTS" -j "$THREADS"
    fi
    for r in "${RATE_LIST[@]}"; do
        j=$((THREADS < OPEN_CLIENTS ? THREADS : OPEN_CLIENTS))
        run_type_pgbench "open_${type}_r$r" "$DURATION" -c "$OPEN_CLIENTS" -j "$j" -R "$r"
        OPEN+=("$type $r $STATS")
        read -r _ rate p50 _ p99 _ max <<<"$STATS"
        log "$type open loop at $r/s: achieved $rate/s, p50 $p50 ms, p99 $p99 ms, max $max ms"
    done
    best_c=0 best_qps=0
    for c in "${CLIENT_LIST[@]}"; do
        j=$((THREADS < c ? THREADS : c))
        run_type_pgbench "closed_${type}_c$c" "$DURATION" -c "$c" -j "$j"
        read -r _ rate p50 _ p99 _ _ <<<"$STATS"
        log "$type closed loop, $c clients: $rate/s, p50 $p50 ms, p99 $p99 ms"
        CLOSED+=("$type $c $STATS")
        if awk -v a="$rate" -v b="$best_qps" 'BEGIN { exit !(a > b) }'; then best_c=$c best_qps=$rate; fi
    done
    RESULTS+=("$type $nq $mean_total $zero $nexp $found $best_c $best_qps")
done

# ---------------------------------------------------------------- report
echo
echo "PostgreSQL $VERSION | search over $PRODUCTS products | open loop ${RATES:-off} q/s from $OPEN_CLIENTS clients, closed loop $CLIENTS clients, ${DURATION}s each, -M prepared, -j $THREADS"
echo "build: copy ${T_COPY} s, insert (tsvectors) ${T_INSERT} s, indexes ${T_INDEX} s, analyze ${T_ANALYZE} s: $BUILD_RATE products/s; table, indexes: $SIZES"
printf '%-9s %7s %9s %7s %9s %8s %12s   %s\n' type queries mean_tot no_hits found best_qps best_clients "open loop: rate achieved p50/p99/max ms"
for r in "${RESULTS[@]}"; do
    read -r type nq mean_total zero nexp found best_c best_qps <<<"$r"
    open_text=""
    for o in "${OPEN[@]}"; do
        read -r otype orate _ achieved o50 _ o99 _ omax <<<"$o"
        [[ $otype == "$type" ]] && open_text+="  $orate: $achieved $o50/$o99/$omax"
    done
    printf '%-9s %7s %9s %7s %9s %8s %12s  %s\n' \
        "$type" "$nq" "$mean_total" "$zero" "$found/$nexp" "$best_qps" "$best_c" "$open_text"
done
echo "update-to-visible: immediate; an UPDATE is visible to every query that starts after its COMMIT"

if [[ -n $JSON_OUT ]]; then
    {
        printf '{\n  "system": "postgresql",\n  "version": "%s",\n  "benchmark": "search",\n' "$VERSION"
        printf '  "catalog": "%s",\n  "queries": "%s",\n  "products": %d,\n' "$CATALOG" "$QUERIES" "$PRODUCTS"
        printf '  "rates": [%s],\n  "open_clients": %d,\n  "clients": [%s],\n  "duration_s": %d,\n  "warmup_s": %d,\n  "log_warmup_s": 1,\n' \
            "$(IFS=,; echo "${RATE_LIST[*]}")" "$OPEN_CLIENTS" "$(IFS=,; echo "${CLIENT_LIST[*]}")" "$DURATION" "$WARMUP"
        printf '  "threads": %d,\n  "protocol": "prepared",\n' "$THREADS"
        json_machine_fields
        printf '  "loadavg_before": "%s",\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
        printf '  "build": {"copy_s": %s, "insert_s": %s, "index_s": %s, "analyze_s": %s, "build_s": %s, "products_per_s": %s, "table_size": "%s", "indexes_size": "%s"},\n' \
            "$T_COPY" "$T_INSERT" "$T_INDEX" "$T_ANALYZE" "$T_BUILD" "$BUILD_RATE" "$TABLE_SIZE" "$INDEXES_SIZE"
        printf '  "update_to_visible": "immediate at commit",\n  "types": [\n'
        n=${#RESULTS[@]} i=0
        for r in "${RESULTS[@]}"; do
            read -r type nq mean_total zero nexp found best_c best_qps <<<"$r"
            i=$((i + 1))
            printf '    {"type": "%s", "queries": %d, "mean_total": %s, "no_results": %d, "expect_queries": %d, "expect_found": %d,\n' \
                "$type" "$nq" "$mean_total" "$zero" "$nexp" "$found"
            printf '     "open": ['
            first=1
            for o in "${OPEN[@]}"; do
                read -r otype orate ocount achieved o50 o90 o99 o999 omax <<<"$o"
                [[ $otype == "$type" ]] || continue
                ((first)) || printf ', '
                first=0
                printf '{"target_rate": %s, "achieved_rate": %s, "count": %s, "latency_ms": {"p50": %s, "p90": %s, "p99": %s, "p999": %s, "max": %s}}' \
                    "$orate" "$achieved" "$ocount" "$o50" "$o90" "$o99" "$o999" "$omax"
            done
            printf '],\n'
            printf '     "closed": ['
            first=1
            for cl in "${CLOSED[@]}"; do
                read -r ctype c ccount crate c50 c90 c99 c999 cmax <<<"$cl"
                [[ $ctype == "$type" ]] || continue
                ((first)) || printf ', '
                first=0
                printf '{"clients": %d, "qps": %s, "count": %s, "latency_ms": {"p50": %s, "p90": %s, "p99": %s, "p999": %s, "max": %s}}' \
                    "$c" "$crate" "$ccount" "$c50" "$c90" "$c99" "$c999" "$cmax"
            done
            printf '],\n     "best": {"clients": %d, "qps": %s}}%s\n' "$best_c" "$best_qps" "$([[ $i -lt $n ]] && echo ,)"
        done
        printf '  ]\n}\n'
    } >"$JSON_OUT"
    log "wrote $JSON_OUT"
fi
exit 0
