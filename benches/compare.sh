#!/usr/bin/env bash
# PostgreSQL versus Mercato reservation throughput, back to back on this
# machine: builds the `mercato` binary (release), runs
# `mercato bench compare` (every argument is passed on: see
# `target/release/mercato bench compare --help`), then draws the
# latency-versus-throughput plot into the results directory.
#
#   bash benches/compare.sh                       # uniform and hot, 1 line, 5 s per run
#   bash benches/compare.sh --duration 10 --lines 1,3
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

OUT=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --out) OUT=${args[i + 1]:-} ;;
        --out=*) OUT=${args[i]#--out=} ;;
        -h|--help) OUT="-" ;;
    esac
done
if [[ -z $OUT ]]; then
    OUT=benches/results/$(date -u +%Y%m%d-%H%M%S)
    args+=(--out "$OUT")
fi

cargo build --release -p mercato-server
status=0
target/release/mercato bench compare "${args[@]}" || status=$?
if [[ $OUT != "-" && -f $OUT/summary.json ]]; then
    cargo run --release -q -p mercato-benches --features plot --bin plot -- "$OUT" ||
        echo "compare.sh: the plot failed (the results are in $OUT)" >&2
fi
exit "$status"
