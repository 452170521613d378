#!/usr/bin/env bash
# The harness of this series (a copy, kept with its results): runs each
# checkout workload only when the machine is quiet (< 8% busy in 4 successive
# 5 s samples) and redoes it if the watcher saw other work during it: "other"
# CPU >= 15% of one CPU, or >= 20 processes forked, in 2 or more 2 s samples
# wholly inside a pgbench run.
#   harness/run-clean.sh OUT uniform:1 hot:1 flash:1 uniform:2 ...
set -uo pipefail
H=$(cd "$(dirname "$0")" && pwd)
OUT=$1; shift
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$H/../../../.."   # the repository
git rev-parse --short HEAD > "$OUT/commit.txt"
wait_quiet() {
    local q=0 b
    for ((k = 0; k < 2000; k++)); do
        b=$(python3 "$H/busy.py" 5)
        if ((b < 8)); then q=$((q + 1)); else q=0; fi
        ((q >= 4)) && return 0
    done
    return 1
}
run_one() {  # name, args...
    local name=$1; shift
    local attempt
    for attempt in 1 2 3 4 5 6 7 8; do
        wait_quiet || { echo "never quiet"; return 1; }
        rm -f "$OUT/.stop"
        : > "$OUT/$name.watcher.log"
        python3 "$H/watch.py" "$OUT/$name.watcher.log" "$OUT/.stop" & local W=$!
        echo "$(date +%T) $name attempt $attempt"
        nice -n 10 bash benches/postgres/checkout.sh "$@" --json "$OUT/$name.json" >"$OUT/$name.txt" 2>"$OUT/$name.stderr"
        local rc=$?
        touch "$OUT/.stop"; wait $W
        local bad
        bad=$(awk '/ other=/ { o = $0; sub(/.* other=/, "", o); sub(/%.*/, "", o); f = $0; sub(/.* forks=/, "", f); sub(/ .*/, "", f); if (o + 0 >= 15 || f + 0 >= 20) c++ } END { print c + 0 }' "$OUT/$name.watcher.log")
        echo "$(date +%T) $name rc=$rc interfered_samples=$bad"
        if ((bad < 2)); then return 0; fi
        mv "$OUT/$name.txt" "$OUT/$name.attempt$attempt.discarded.txt"
    done
}
for spec in "$@"; do
    w=${spec%%:*} r=${spec#*:}
    case $w in
        uniform) run_one postgresql-checkout-uniform-l1-3-r$r --workload uniform --lines 1-3 --duration 10 --clients "1 2 4 8 16 32 64 128" ;;
        hot) run_one postgresql-checkout-hot-l1-3-r$r --workload hot --lines 1-3 --duration 10 --clients "1 2 4 8 16 32 64 128" ;;
        flash) run_one postgresql-checkout-flash-r$r --flash-sale ;;
    esac
done
rm -f "$OUT/.stop"
echo finished
