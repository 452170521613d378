#!/usr/bin/env bash
# The search benchmark of issue 10, both systems in one run: the 100,000-product
# catalog and the query set, PostgreSQL (benches/postgres/search.sh), then
# Mercato (`mercato bench search`), then the side-by-side summary. Results go
# to benches/results/<UTC timestamp>-search/ (or --out DIR).
#
#   bash benches/search.sh --bin target/release/mercato [--baseline-bin /tmp/mercato-before]
#
# Options (the rest are passed to `mercato bench search`):
#   --bin PATH           the mercato binary to measure (default target/release/mercato)
#   --baseline-bin PATH  a binary without the indexer, for the reservation comparison
#   --count N            products in the catalog (default 100000)
#   --catalog FILE       use this catalog instead of generating one
#   --out DIR            where results go
#   --skip-postgres      Mercato only
#   --quick              1 s runs, one rate and two client counts (to try the setup)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BIN=target/release/mercato
COUNT=100000
CATALOG=""
OUT=""
SKIP_PG=0
QUICK=0
PASS=()
while (($#)); do
    case "$1" in
        --bin) BIN=$2; shift 2 ;;
        --count) COUNT=$2; shift 2 ;;
        --catalog) CATALOG=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --skip-postgres) SKIP_PG=1; shift ;;
        --quick) QUICK=1; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) PASS+=("$1"); shift ;;
    esac
done
[[ -x $BIN ]] || { echo "search.sh: no binary at $BIN (cargo build --release -p mercato-server, or --bin)" >&2; exit 2; }
OUT=${OUT:-benches/results/$(date -u +%Y%m%d-%H%M%S)-search}
mkdir -p "$OUT"

if [[ -z $CATALOG ]]; then
    CATALOG=${TMPDIR:-/tmp}/mercato-catalog-$COUNT.jsonl
    [[ -s $CATALOG ]] || python3 data/generate_catalog.py --count "$COUNT" --out "$CATALOG" >&2
fi
python3 benches/search/generate_queries.py --catalog "$CATALOG" --out "$OUT/queries.jsonl"
{
    echo "catalog: $CATALOG ($(wc -l <"$CATALOG") products, sha256 $(sha256sum "$CATALOG" | cut -d' ' -f1))"
    echo "binary: $BIN ($("$BIN" --version 2>/dev/null || echo '?')), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB"
} >"$OUT/run.txt"

PG_ARGS=() M_ARGS=()
if ((QUICK)); then
    PG_ARGS=(--duration 1 --warmup 1 --rates 20 --clients "2 4")
    M_ARGS=(--duration 1 --warmup 1 --rates 20 --clients 2,4 --changes 6 --reserve-duration 1 --reserve-pairs 1)
fi

if ((SKIP_PG == 0)); then
    echo "before PostgreSQL: $(uptime)" >>"$OUT/run.txt"
    bash benches/postgres/search.sh --catalog "$CATALOG" --queries "$OUT/queries.jsonl" \
        --json "$OUT/postgresql.json" --save-logs "$OUT/postgresql-logs" "${PG_ARGS[@]}" |
        tee "$OUT/postgresql.txt"
fi
echo "before Mercato: $(uptime)" >>"$OUT/run.txt"
status=0
"$BIN" bench search --server-bin "$BIN" --catalog "$CATALOG" --queries "$OUT/queries.jsonl" \
    "${M_ARGS[@]}" "${PASS[@]}" --json >"$OUT/mercato.json" 2> >(tee "$OUT/mercato.log" >&2) || status=$?
echo "after: $(uptime)" >>"$OUT/run.txt"
python3 benches/search/summarize.py "$OUT" | tee "$OUT/summary.md"
exit "$status"
