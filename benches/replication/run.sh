#!/usr/bin/env bash
# Replication's costs, in one run on one machine (BENCHMARKS.md, "Replication"):
#   1. reservations/s and p99 with local durability alone, async replication
#      and sync replication (one JetStream node, and a three-node cluster
#      with 3 replicas), each with `mercato bench reserve --url`;
#   2. a follower's lag during the async run (sampled from
#      GET /api/v1/replication) and how long it takes to catch up after it;
#   3. the time `mercato promote` takes once the primary is SIGKILLed.
# Everything listens on 127.0.0.1 and stops at the end.
#
#   benches/replication/run.sh [MERCATO_BIN] [SECONDS] [CONNECTIONS]
set -euo pipefail
BIN=${1:-target/release/mercato}
SECONDS_EACH=${2:-10}
CONNECTIONS=${3:-64}
command -v nats-server >/dev/null || { echo "nats-server is missing: apt-get install -y nats-server" >&2; exit 2; }
WORK=$(mktemp -d)
TOKEN=replication-bench-admin-token
export MERCATO_ADMIN_TOKEN=$TOKEN MERCATO_LOG=error
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 600); do curl -sf "$1/readyz" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 2; }
wait_tcp() { for _ in $(seq 1 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; exit 2; }

nats_node() { # dir port [cluster args...]
    local dir=$1 p=$2; shift 2
    mkdir -p "$dir"
    nats-server -js -sd "$dir" -a 127.0.0.1 -p "$p" "$@" >/dev/null 2>&1 &
    PIDS+=($!)
    wait_tcp "$p"
}

serve() { # name port args...
    local name=$1 p=$2; shift 2
    "$BIN" serve --data-dir "$WORK/$name" --listen "127.0.0.1:$p" --empty "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    LAST_PID=$!
    wait_http "http://127.0.0.1:$p"
}

bench() { # url label
    echo "## $2"
    "$BIN" bench reserve --url "$1" --duration "$SECONDS_EACH" --connections "$CONNECTIONS" \
        --products 1000 2>/dev/null | grep -E "^(reserved|latency|check)"
}

NATS1=$(port); nats_node "$WORK/nats1" "$NATS1"
URL1=nats://127.0.0.1:$NATS1

# 1. Local durability alone.
P=$(port); serve local "$P"
bench "http://127.0.0.1:$P" "local durability only (no replication)"
kill -9 "$LAST_PID"

# 2. Async alone, then async with a follower whose lag is sampled (the
# follower shares the machine's cores, so it is measured apart).
P=$(port); serve async-alone "$P" --nats "$URL1" --store-name async-alone
bench "http://127.0.0.1:$P" "async replication (1 JetStream node)"
kill -9 "$LAST_PID"
P=$(port); serve async "$P" --nats "$URL1" --store-name async
PRIMARY_PID=$LAST_PID
F=$(port); serve follower "$F" --follow "$URL1" --store-name async
FOLLOWER_PID=$LAST_PID
(
    max_records=0; max_seconds=0
    while [ ! -e "$WORK/stop-sampling" ]; do
        # Records the follower lacks: the primary's position minus its own.
        primary=$(curl -s "http://127.0.0.1:$P/api/v1/replication" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lsn"])' 2>/dev/null || echo 0)
        report=$(curl -s "http://127.0.0.1:$F/api/v1/replication" || true)
        follower=$(echo "$report" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lsn"])' 2>/dev/null || echo 0)
        seconds=$(echo "$report" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lag_seconds"])' 2>/dev/null || echo 0)
        echo "$primary $follower $seconds" >>"$WORK/samples"
        max_records=$(python3 -c "print(max($max_records, $primary - $follower))")
        max_seconds=$(python3 -c "print(max($max_seconds, $seconds))")
        sleep 0.5
    done
    echo "follower lag during the run: max $max_records records, max $max_seconds s ($(wc -l <"$WORK/samples") samples, primary/follower/lag_seconds last: $(tail -1 "$WORK/samples"))" >"$WORK/lag"
) &
SAMPLER=$!
bench "http://127.0.0.1:$P" "async replication (1 JetStream node), one follower"
touch "$WORK/stop-sampling"; wait "$SAMPLER"; cat "$WORK/lag"
target=$(curl -s "http://127.0.0.1:$P/api/v1/replication" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lsn"])')
start=$(date +%s.%N)
while :; do
    at=$(curl -s "http://127.0.0.1:$F/api/v1/replication" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lsn"])')
    [ "$at" -ge "$target" ] && break
    sleep 0.05
done
echo "follower caught up with record $target $(python3 -c "print(round($(date +%s.%N) - $start, 2))") s after the load ended"
# 3. Failover: the primary SIGKILLed, the follower promoted.
kill -9 "$PRIMARY_PID"
start=$(date +%s.%N)
"$BIN" promote --url "127.0.0.1:$F" --admin-token "$TOKEN" >/dev/null
echo "mercato promote took $(python3 -c "print(round($(date +%s.%N) - $start, 3))") s"
kill -9 "$FOLLOWER_PID"

# 4. Sync, one node.
P=$(port); serve sync "$P" --nats "$URL1" --store-name sync --replication sync
bench "http://127.0.0.1:$P" "sync replication (1 JetStream node)"
kill -9 "$LAST_PID"

# 5. Sync on a three-node cluster, 3 replicas.
ports=($(port) $(port) $(port)); routes=($(port) $(port) $(port))
all="nats-route://127.0.0.1:${routes[0]},nats-route://127.0.0.1:${routes[1]},nats-route://127.0.0.1:${routes[2]}"
for n in 0 1 2; do
    nats_node "$WORK/cluster$n" "${ports[$n]}" --name "n$n" --cluster_name bench \
        --cluster "nats://127.0.0.1:${routes[$n]}" --routes "$all"
done
URLS="nats://127.0.0.1:${ports[0]},nats://127.0.0.1:${ports[1]},nats://127.0.0.1:${ports[2]}"
P=$(port); serve sync3 "$P" --nats "$URLS" --store-name sync3 --replication sync --nats-replicas 3
bench "http://127.0.0.1:$P" "sync replication (3-node cluster, 3 replicas)"
kill -9 "$LAST_PID"
P2=$(port); serve async3 "$P2" --nats "$URLS" --store-name async3 --nats-replicas 3
bench "http://127.0.0.1:$P2" "async replication (3-node cluster, 3 replicas)"
