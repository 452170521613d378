#!/usr/bin/env bash
# PostgreSQL pessimistic-locking reservation baseline for Mercato.
# See README.md next to this file. `run.sh --help` lists the options.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# ---------------------------------------------------------------- defaults
PRODUCTS=1000
STOCK=1000000
CLIENTS="8 16 32 64"
DURATION=10
WORKLOAD=uniform
LINES=1
MAXQTY=1
THREADS=2
# Below Linux's ephemeral range (32768-60999), so that no client socket of
# an earlier benchmark (in TIME-WAIT) holds it.
PORT=25432
PORT_GIVEN=0
JSON_OUT=""
SAVE_LOGS=""
PG_BIN=""
TMP_PARENT="${TMPDIR:-/tmp}"
VERBOSE=0

usage() {
    cat <<EOF
Usage: $(basename "$0") [OPTIONS]

Textbook PostgreSQL baseline for Mercato's stock reservations: a private,
throw-away PostgreSQL cluster (127.0.0.1 only, default durability) running the
seed plan's schema and a pessimistic-locking reservation transaction
(SELECT ... FOR UPDATE, check, INSERT reservation, UPDATE quantity, COMMIT)
under pgbench, once per client count.

Options:
  --products N       number of products seeded, product_id 1..N (default $PRODUCTS)
  --stock S          initial quantity of every product (default $STOCK); the
                     stock is reset to S before every client count
  --clients "C ..."  space-separated client counts, one pgbench run each
                     (default "$CLIENTS"; each 1..290)
  --duration SECS    length of each pgbench run in seconds (default $DURATION)
  --workload W       uniform: product uniformly random over 1..N;
                     hot: 90% of transactions on products 1..10, 10% uniform
                     over 11..N (default $WORKLOAD)
  --lines L          lines (distinct products) per reservation (default $LINES).
                     Rows are locked in product_id order. With L > 1 each line
                     gets its own order_id (the seed schema has order_id UNIQUE).
  --qty Q            each line reserves random(1, Q) units (default $MAXQTY)
  --threads J        pgbench worker threads, -j (default $THREADS)
  --port P           TCP port on 127.0.0.1 for the private cluster (default
                     $PORT; if the default is busy the next free port up to
                     +99 is used, an explicit --port must be free)
  --json FILE        also write machine-readable results to FILE
  --save-logs DIR    copy pgbench's reports and the server log to DIR
  --pg-bin DIR       PostgreSQL binaries (initdb, pg_ctl, postgres, pgbench,
                     psql); default: newest /usr/lib/postgresql/*/bin.
                     If none is found, postgresql and postgresql-contrib are
                     installed with apt-get (needs root)
  --tmpdir DIR       parent of the throw-away cluster directory (default
                     \$TMPDIR or /tmp); it should be on the same kind of disk
                     Mercato writes to, since commits are fsync'ed
  --verbose          show pgbench's full report, with per-statement latencies
  -h, --help         show this help

Output: a table with, per client count, tps, transactions, rejections
(insufficient stock, rolled back), and p50/p90/p99/p99.9 latency in ms from
pgbench's per-transaction log; then the zero-oversell check. Exit status 0 on
success, 1 if the oversell check failed, 2 on usage errors, other on errors.
The cluster and its directory are removed on exit, error or Ctrl-C.
EOF
}

die() { echo "run.sh: error: $*" >&2; exit 3; }
usage_die() { echo "run.sh: $*" >&2; echo "Try '$0 --help'." >&2; exit 2; }
log() { echo "[pg-bench] $*" >&2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

while (($#)); do
    case "$1" in
        --products) PRODUCTS=${2:-}; shift 2 || usage_die "--products needs a value" ;;
        --stock) STOCK=${2:-}; shift 2 || usage_die "--stock needs a value" ;;
        --clients) CLIENTS=${2:-}; shift 2 || usage_die "--clients needs a value" ;;
        --duration) DURATION=${2:-}; shift 2 || usage_die "--duration needs a value" ;;
        --workload) WORKLOAD=${2:-}; shift 2 || usage_die "--workload needs a value" ;;
        --lines) LINES=${2:-}; shift 2 || usage_die "--lines needs a value" ;;
        --qty) MAXQTY=${2:-}; shift 2 || usage_die "--qty needs a value" ;;
        --threads) THREADS=${2:-}; shift 2 || usage_die "--threads needs a value" ;;
        --port) PORT=${2:-}; PORT_GIVEN=1; shift 2 || usage_die "--port needs a value" ;;
        --json) JSON_OUT=${2:-}; shift 2 || usage_die "--json needs a value" ;;
        --save-logs) SAVE_LOGS=${2:-}; shift 2 || usage_die "--save-logs needs a value" ;;
        --pg-bin) PG_BIN=${2:-}; shift 2 || usage_die "--pg-bin needs a value" ;;
        --tmpdir) TMP_PARENT=${2:-}; shift 2 || usage_die "--tmpdir needs a value" ;;
        --verbose) VERBOSE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage_die "unknown option: $1" ;;
    esac
done

# ---------------------------------------------------------------- validation
for pair in PRODUCTS:products STOCK:stock DURATION:duration LINES:lines MAXQTY:qty THREADS:threads PORT:port; do
    v=${pair%%:*}
    is_uint "${!v}" || usage_die "--${pair#*:} must be a non-negative integer, got '${!v}'"
done
((PRODUCTS >= 1)) || usage_die "--products must be >= 1"
((STOCK <= 2147483647)) || usage_die "--stock must fit in INT"
((DURATION >= 1)) || usage_die "--duration must be >= 1"
((LINES >= 1)) || usage_die "--lines must be >= 1"
((MAXQTY >= 1 && MAXQTY <= 2147483647)) || usage_die "--qty must be >= 1"
((THREADS >= 1)) || usage_die "--threads must be >= 1"
((PORT >= 1024 && PORT <= 65535)) || usage_die "--port must be in 1024..65535"
read -r -a CLIENT_LIST <<<"$CLIENTS"
((${#CLIENT_LIST[@]} >= 1)) || usage_die "--clients is empty"
for c in "${CLIENT_LIST[@]}"; do
    is_uint "$c" && ((c >= 1 && c <= 290)) || usage_die "--clients: '$c' is not in 1..290"
done
case "$WORKLOAD" in
    uniform) ((PRODUCTS >= LINES)) || usage_die "uniform workload needs --products >= --lines" ;;
    hot)
        ((LINES <= 10)) || usage_die "hot workload needs --lines <= 10 (10 hot products)"
        ((PRODUCTS >= 10 + LINES)) || usage_die "hot workload needs --products >= 10 + --lines"
        ;;
    *) usage_die "--workload must be uniform or hot, got '$WORKLOAD'" ;;
esac
if [[ -n $JSON_OUT ]]; then
    JSON_OUT=$(cd "$(dirname "$JSON_OUT")" 2>/dev/null && pwd)/$(basename "$JSON_OUT") ||
        usage_die "--json: directory of '$JSON_OUT' does not exist"
fi
if [[ -n $SAVE_LOGS ]]; then
    mkdir -p "$SAVE_LOGS" && SAVE_LOGS=$(cd "$SAVE_LOGS" && pwd) || usage_die "--save-logs: cannot create '$SAVE_LOGS'"
fi
[[ -d $TMP_PARENT ]] || usage_die "--tmpdir: '$TMP_PARENT' is not a directory"

# ---------------------------------------------------------------- binaries
have_bins() {
    local d=$1 b
    for b in initdb pg_ctl postgres pgbench psql; do [[ -x $d/$b ]] || return 1; done
}
find_pg_bin() {
    local d
    while read -r d; do
        [[ -n $d ]] && have_bins "$d" && { echo "$d"; return 0; }
    done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r)
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        [[ -n $d ]] && have_bins "$d" && { echo "$d"; return 0; }
    fi
    return 1
}
install_pg() {
    [[ $EUID -eq 0 ]] || die "PostgreSQL not found and not root: install postgresql and postgresql-contrib, or pass --pg-bin"
    log "PostgreSQL not found: installing postgresql postgresql-contrib from Debian's packages"
    # Keep the package from creating (and starting) its system-wide 'main'
    # cluster: this benchmark only ever uses its own throw-away cluster.
    local dropin=/etc/postgresql-common/createcluster.d/zz-mercato-bench-no-main.conf
    mkdir -p "$(dirname "$dropin")"
    echo "create_main_cluster = false" >"$dropin"
    local rc=0
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql postgresql-contrib; } >&2 || rc=$?
    rm -f "$dropin"
    ((rc == 0)) || die "apt-get install failed (exit $rc)"
}
if [[ -n $PG_BIN ]]; then
    have_bins "$PG_BIN" || die "--pg-bin '$PG_BIN' lacks one of initdb pg_ctl postgres pgbench psql"
else
    PG_BIN=$(find_pg_bin) || { install_pg; PG_BIN=$(find_pg_bin) || die "PostgreSQL binaries still not found after install"; }
fi
PG_MAJOR=$("$PG_BIN/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/')
((PG_MAJOR >= 13)) || die "PostgreSQL >= 13 is needed (gen_random_uuid, pgbench \\if), found $PG_MAJOR"

# ---------------------------------------------------------------- port
# Busy: something listens there, or any socket (even a client's, in
# TIME-WAIT) has it as its local port, which makes PostgreSQL's bind fail.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1 && return 0
    command -v ss >/dev/null 2>&1 && [[ -n $(ss -Htan "sport = :$1" 2>/dev/null) ]]
}
if port_busy "$PORT"; then
    ((PORT_GIVEN == 0)) || die "port $PORT on 127.0.0.1 is in use"
    found=0
    for ((p = PORT + 1; p <= PORT + 99 && p <= 65535; p++)); do
        if ! port_busy "$p"; then PORT=$p; found=1; break; fi
    done
    ((found)) || die "no free port in $PORT..$((PORT + 99)) on 127.0.0.1"
fi

# ---------------------------------------------------------------- cluster dir, cleanup
if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the server as"
    as_pg() { runuser -u postgres -- "$@"; }
    PG_OWNER=postgres
else
    as_pg() { "$@"; }
    PG_OWNER=$(id -un)
fi

WORK=$(mktemp -d "$TMP_PARENT/mercato-pgbench.XXXXXX")
chmod 711 "$WORK"
DATA=$WORK/data
SOCK=$WORK/sock
mkdir -p "$WORK/out" "$WORK/txlog" "$SOCK" "$DATA"
chown "$PG_OWNER" "$SOCK" "$DATA"
chmod 700 "$DATA"
WATCHDOG_PID=""
PGBENCH_PID=""

stop_cluster() {
    if [[ -f $DATA/postmaster.pid ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    if [[ -n $SAVE_LOGS && -d $WORK/out ]]; then
        cp "$WORK"/out/* "$SAVE_LOGS"/ 2>/dev/null
        cp "$WORK/postgres.log" "$SAVE_LOGS"/ 2>/dev/null
    fi
    if [[ -n $PGBENCH_PID ]]; then
        kill -TERM "$PGBENCH_PID" 2>/dev/null && wait "$PGBENCH_PID" 2>/dev/null
    fi
    stop_cluster
    [[ -n $WATCHDOG_PID ]] && kill "$WATCHDOG_PID" 2>/dev/null
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM HUP

# Watchdog, in its own session so Ctrl-C or a kill of this script's process
# group cannot skip it: stops the cluster and removes its directory if this
# script goes away without cleaning up (e.g. SIGKILL), or when the whole run
# exceeds its time budget. It exits by itself in either case.
BUDGET=$((300 + ${#CLIENT_LIST[@]} * (DURATION + 240)))
setsid bash -c '
    parent=$1 budget=$2 work=$3 bin=$4 owner=$5
    deadline=$((SECONDS + budget))
    while kill -0 "$parent" 2>/dev/null && ((SECONDS < deadline)); do sleep 1; done
    if [[ -f $work/data/postmaster.pid ]]; then
        if [[ $(id -un) == "$owner" ]]; then "$bin/pg_ctl" -D "$work/data" -m immediate -w -t 30 stop
        else runuser -u "$owner" -- "$bin/pg_ctl" -D "$work/data" -m immediate -w -t 30 stop; fi
    fi >/dev/null 2>&1
    if kill -0 "$parent" 2>/dev/null; then kill -TERM "$parent" 2>/dev/null; sleep 30; fi
    rm -rf "$work"
' watchdog "$$" "$BUDGET" "$WORK" "$PG_BIN" "$PG_OWNER" </dev/null >/dev/null 2>&1 &
WATCHDOG_PID=$!

# ---------------------------------------------------------------- initdb + start
PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$PASSWORD" >"$WORK/pwfile"
chown "$PG_OWNER" "$WORK/pwfile"
chmod 600 "$WORK/pwfile"
printf '127.0.0.1:%s:*:bench:%s\n' "$PORT" "$PASSWORD" >"$WORK/pgpass"
chmod 600 "$WORK/pgpass"

log "PostgreSQL $PG_MAJOR from $PG_BIN; cluster in $WORK, 127.0.0.1:$PORT"
as_pg "$PG_BIN/initdb" -D "$DATA" -U bench --pwfile="$WORK/pwfile" \
    --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
rm -f "$WORK/pwfile"

# Only connection and memory sizing; durability (fsync, synchronous_commit,
# full_page_writes, wal_sync_method) stays at PostgreSQL's defaults.
cat >>"$DATA/postgresql.conf" <<EOF

# ---- mercato benches/postgres/run.sh ----
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
max_connections = 300
shared_buffers = 256MB
EOF

touch "$WORK/postgres.log" && chown "$PG_OWNER" "$WORK/postgres.log"
as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$WORK/postgres.log" -w -t 60 start >/dev/null ||
    { tail -n 30 "$WORK/postgres.log" >&2; die "could not start PostgreSQL"; }

export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=bench PGDATABASE=postgres PGPASSFILE=$WORK/pgpass
unset PGPASSWORD PGSERVICE PGOPTIONS
psql_q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

VERSION=$(psql_q -c "SHOW server_version")
DURABILITY=$(psql_q -F ' ' -c "SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes'), current_setting('wal_sync_method')")
read -r S_FSYNC S_SYNC S_FPW S_WALSYNC <<<"$DURABILITY"
[[ $S_FSYNC == on && $S_SYNC == on && $S_FPW == on ]] ||
    die "unexpected durability settings: fsync=$S_FSYNC synchronous_commit=$S_SYNC full_page_writes=$S_FPW"
log "server $VERSION: fsync=$S_FSYNC synchronous_commit=$S_SYNC full_page_writes=$S_FPW wal_sync_method=$S_WALSYNC"

# ---------------------------------------------------------------- schema + seed
psql_q -f "$HERE/schema.sql" >/dev/null
psql_q -c "INSERT INTO inventory (id, product_id, quantity)
           SELECT gen_random_uuid(), g, $STOCK FROM generate_series(1, $PRODUCTS) AS g" >/dev/null
log "schema loaded, $PRODUCTS products seeded with stock $STOCK"

# ---------------------------------------------------------------- pgbench script
gen_multi_script() {
    # Writes a pgbench script reserving $LINES distinct products, sorted by
    # product_id. Distinct uniform sampling without replacement: draw the k-th
    # value from 1..M-k+1 and step over the k-1 values already drawn (kept
    # sorted), so every L-subset of the range is equally likely.
    local L=$1 k j
    echo "-- generated by run.sh: one $L-line reservation, rows locked in product_id order"
    echo '\if :hot'
    echo '\set r random(1, 100)'
    echo '\if :r <= 90'
    echo '\set lo 1'
    echo '\set m 10'
    echo '\else'
    echo '\set lo 11'
    echo '\set m :nproducts - 10'
    echo '\endif'
    echo '\else'
    echo '\set lo 1'
    echo '\set m :nproducts'
    echo '\endif'
    echo '\set a1_1 random(1, :m)'
    for ((k = 2; k <= L; k++)); do
        echo "\\set x random(1, :m - $((k - 1)))"
        for ((j = 1; j < k; j++)); do
            echo "\\set x :x + case when :x >= :a$((k - 1))_$j then 1 else 0 end"
        done
        for ((j = 1; j <= k; j++)); do
            if ((j == 1)); then
                echo "\\set a${k}_1 case when :a$((k - 1))_1 < :x then :a$((k - 1))_1 else :x end"
            elif ((j < k)); then
                echo "\\set a${k}_$j case when :a$((k - 1))_$j < :x then :a$((k - 1))_$j when :a$((k - 1))_$((j - 1)) < :x then :x else :a$((k - 1))_$((j - 1)) end"
            else
                echo "\\set a${k}_$k case when :a$((k - 1))_$((k - 1)) < :x then :x else :a$((k - 1))_$((k - 1)) end"
            fi
        done
    done
    for ((j = 1; j <= L; j++)); do
        echo "\\set p$j :a${L}_$j + :lo - 1"
        echo "\\set q$j random(1, :maxqty)"
    done
    echo 'BEGIN;'
    for ((j = 1; j <= L; j++)); do
        echo "SELECT id AS inv_id$j, quantity AS inv_qty$j FROM inventory WHERE product_id = :p$j FOR UPDATE \\gset"
    done
    local cond="" sep=""
    for ((j = 1; j <= L; j++)); do cond+="$sep:inv_qty$j >= :q$j"; sep=" and "; done
    echo "\\if $cond"
    for ((j = 1; j <= L; j++)); do
        echo "INSERT INTO inventory_reservations (id, inventory_id, order_id, quantity_reserved, expires_at) VALUES (gen_random_uuid(), :inv_id$j, gen_random_uuid(), :q$j, now() + interval '15 minutes');"
    done
    for ((j = 1; j <= L; j++)); do
        echo "UPDATE inventory SET quantity = quantity - :q$j WHERE id = :inv_id$j;"
    done
    echo 'COMMIT;'
    echo '\else'
    echo 'ROLLBACK;'
    echo '\endif'
}
if ((LINES == 1)); then
    SCRIPT=$HERE/reserve.sql
else
    SCRIPT=$WORK/reserve_${LINES}lines.sql
    gen_multi_script "$LINES" >"$SCRIPT"
    cp "$SCRIPT" "$WORK/out/"
fi
HOT=0
[[ $WORKLOAD == hot ]] && HOT=1

# ---------------------------------------------------------------- runs
reset_state() {
    psql_q >/dev/null <<EOF
TRUNCATE inventory_reservations;
UPDATE inventory SET quantity = $STOCK;
VACUUM (ANALYZE) inventory;
VACUUM (ANALYZE) inventory_reservations;
CHECKPOINT;
EOF
}

# Prints "<bad products> <reservation rows> <units reserved>". A product is bad
# if quantity < 0 or quantity + its reserved units != the initial stock.
check_oversell() {
    psql_q -F ' ' -c "
        SELECT (SELECT count(*) FROM inventory i
                  LEFT JOIN (SELECT inventory_id, sum(quantity_reserved) AS s
                               FROM inventory_reservations GROUP BY inventory_id) r
                         ON r.inventory_id = i.id
                 WHERE i.quantity < 0 OR i.quantity + coalesce(r.s, 0) <> $STOCK)
             + abs((SELECT count(*) FROM inventory) - $PRODUCTS),
               (SELECT count(*) FROM inventory_reservations),
               (SELECT coalesce(sum(quantity_reserved), 0) FROM inventory_reservations)"
}

# Nearest-rank percentiles (ms) of pgbench's per-transaction latencies (us,
# column 3 of the -l log). Prints "p50 p90 p99 p999".
percentiles() {
    cat "$@" | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n | awk '
        { v[NR] = $1 }
        function rank(p,   r) { r = int(p * NR); if (r < p * NR) r++; if (r < 1) r = 1; return v[r] }
        END {
            if (NR == 0) { print "null null null null"; exit }
            printf "%.3f %.3f %.3f %.3f\n", rank(0.50) / 1000, rank(0.90) / 1000, rank(0.99) / 1000, rank(0.999) / 1000
        }'
}

# Fairness: this baseline and Mercato are meant to run on an otherwise idle
# machine. Measure how busy the CPUs are (1 s sample of /proc/stat) before the runs.
cpu_busy_pct() {
    local a b
    a=$(head -n1 /proc/stat 2>/dev/null) || { echo 0; return; }
    sleep 1
    b=$(head -n1 /proc/stat 2>/dev/null) || { echo 0; return; }
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x, " "); split(b, y, " "); tot = 0
        for (i = 2; i <= n && i <= 9; i++) tot += y[i] - x[i]
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%.1f", (tot > 0 ? 100 * (tot - idle) / tot : 0) }'
}
CPU_BUSY=$(cpu_busy_pct)
if awk -v l="$CPU_BUSY" 'BEGIN { exit !(l >= 15) }'; then
    log "warning: the CPUs were ${CPU_BUSY}% busy just before the runs; other work on this machine will lower the numbers"
fi

OVERSELL=false
RESULTS=()   # "clients tps transactions rejected failed rows p50 p90 p99 p999"
for c in "${CLIENT_LIST[@]}"; do
    j=$((THREADS < c ? THREADS : c))
    reset_state
    log "run: $WORKLOAD, lines=$LINES, clients=$c, threads=$j, ${DURATION}s"
    out=$WORK/out/pgbench_c$c.txt
    extra=()
    ((VERBOSE)) && extra+=(-r)
    rc=0
    # In the background + wait, so that Ctrl-C / TERM reach the trap at once
    # (timeout(1) runs pgbench in its own process group, out of Ctrl-C's reach;
    # cleanup() kills it by pid).
    (cd "$WORK/txlog" && exec timeout -k 10 $((DURATION + 120)) "$PG_BIN/pgbench" -n -M prepared \
        -c "$c" -j "$j" -T "$DURATION" -l --log-prefix="c$c" \
        -D nproducts="$PRODUCTS" -D hot="$HOT" -D maxqty="$MAXQTY" \
        "${extra[@]}" -f "$SCRIPT") >"$out" 2>&1 </dev/null &
    PGBENCH_PID=$!
    wait "$PGBENCH_PID" || rc=$?
    PGBENCH_PID=""
    ((VERBOSE)) && cat "$out" >&2
    if ((rc != 0)); then
        tail -n 40 "$out" >&2
        die "pgbench failed (exit $rc) for $c clients"
    fi
    txns=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$out")
    tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$out")
    failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$out")
    [[ -n $txns && -n $tps ]] || { cat "$out" >&2; die "could not parse pgbench output"; }
    failed=${failed:-0}
    read -r p50 p90 p99 p999 < <(percentiles "$WORK"/txlog/c"$c".*)
    rm -f "$WORK"/txlog/c"$c".*

    read -r bad rows _units < <(check_oversell)
    if ((bad != 0)); then
        OVERSELL=true
        log "OVERSELL CHECK FAILED for $c clients: $bad products inconsistent"
    fi
    ((rows % LINES == 0)) || log "warning: $rows reservation rows is not a multiple of $LINES lines"
    committed=$((rows / LINES))
    rejected=$((txns - committed))
    if ((rejected < 0)); then
        log "warning: $committed committed reservations > $txns counted transactions (a commit in flight at the end of the run); rejections counted as 0"
        rejected=0
    fi
    RESULTS+=("$c $tps $txns $rejected $failed $rows $p50 $p90 $p99 $p999")
done

# ---------------------------------------------------------------- report
best_c="" best_tps=""
for r in "${RESULTS[@]}"; do
    read -r c tps _ <<<"$r"
    if [[ -z $best_tps ]] || awk -v a="$tps" -v b="$best_tps" 'BEGIN { exit !(a > b) }'; then
        best_c=$c best_tps=$tps
    fi
done

echo
echo "PostgreSQL $VERSION | workload=$WORKLOAD lines=$LINES products=$PRODUCTS stock=$STOCK qty=1..$MAXQTY | ${DURATION}s per run, -M prepared, -j $THREADS | fsync=$S_FSYNC synchronous_commit=$S_SYNC"
printf '%8s %11s %13s %10s %10s %10s %10s %10s\n' clients tps transactions rejected p50_ms p90_ms p99_ms p99.9_ms
for r in "${RESULTS[@]}"; do
    read -r c tps txns rejected failed rows p50 p90 p99 p999 <<<"$r"
    printf '%8s %11.1f %13s %10s %10s %10s %10s %10s\n' "$c" "$tps" "$txns" "$rejected" "$p50" "$p90" "$p99" "$p999"
done
printf 'best: %s clients, %.1f tps | oversell: %s\n' "$best_c" "$best_tps" "$OVERSELL"

if [[ -n $JSON_OUT ]]; then
    {
        printf '{\n  "system": "postgresql",\n  "version": "%s",\n  "workload": "%s",\n  "lines": %d,\n  "products": %d,\n' \
            "$VERSION" "$WORKLOAD" "$LINES" "$PRODUCTS"
        printf '  "stock": %d,\n  "max_qty": %d,\n  "duration_s": %d,\n  "threads": %d,\n  "protocol": "prepared",\n' \
            "$STOCK" "$MAXQTY" "$DURATION" "$THREADS"
        printf '  "durability": {"fsync": "%s", "synchronous_commit": "%s", "full_page_writes": "%s", "wal_sync_method": "%s"},\n' \
            "$S_FSYNC" "$S_SYNC" "$S_FPW" "$S_WALSYNC"
        printf '  "cpus": %d,\n  "cpu_busy_before_pct": %s,\n  "results": [\n' "$(nproc)" "$CPU_BUSY"
        n=${#RESULTS[@]} i=0
        for r in "${RESULTS[@]}"; do
            read -r c tps txns rejected failed rows p50 p90 p99 p999 <<<"$r"
            i=$((i + 1))
            ctps=$(awk -v t="$tps" -v n="$txns" -v r="$rejected" 'BEGIN { printf "%.3f", (n > 0 ? t * (n - r) / n : 0) }')
            printf '    {"clients": %d, "tps": %s, "committed_tps": %s, "transactions": %d, "rejected": %d, "failed": %d, "reservation_rows": %d, "latency_ms": {"p50": %s, "p90": %s, "p99": %s, "p999": %s}}%s\n' \
                "$c" "$tps" "$ctps" "$txns" "$rejected" "$failed" "$rows" "$p50" "$p90" "$p99" "$p999" "$([[ $i -lt $n ]] && echo ,)"
        done
        printf '  ],\n  "best": {"clients": %d, "tps": %s},\n  "oversell": %s\n}\n' "$best_c" "$best_tps" "$OVERSELL"
    } >"$JSON_OUT"
    log "wrote $JSON_OUT"
fi

[[ $OVERSELL == false ]] || exit 1
exit 0
