#!/usr/bin/env bash
# Immediate against periodic durability, in alternating pairs: one run per
# mode is too noisy on a shared machine for the ratio of two Mercato modes.
# Three pairs per workload (uniform and hot, 1 and 3 lines), 64 connections,
# 5 s each (about 4 minutes). Prints "skew lines pair durability reservations/s".
#
#   bash benches/durability-pairs.sh [MERCATO_BINARY] > pairs.txt
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-}
if [[ -z $BIN ]]; then
    (cd "$ROOT" && cargo build --release -q -p mercato-server)
    BIN=$ROOT/target/release/mercato
fi

for workload in "uniform 1" "hot 1" "uniform 3" "hot 3"; do
    read -r skew lines <<<"$workload"
    for pair in 1 2 3; do
        for durability in immediate periodic; do
            rps=$("$BIN" bench reserve --server-bin "$BIN" --connections 64 --duration 5 \
                --skew "$skew" --lines "$lines" --durability "$durability" --json 2>/dev/null |
                python3 -c 'import json, sys; print(round(json.load(sys.stdin)["throughput_rps"]))')
            echo "$skew $lines $pair $durability $rps"
        done
    done
done
