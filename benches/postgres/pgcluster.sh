# Shared by run.sh (reservations) and checkout.sh (the order saga): the
# options they have in common, finding or installing PostgreSQL, a private
# throw-away cluster (127.0.0.1 only, default durability) removed on exit,
# running pgbench, latency percentiles. Sourced, not run. Shared by
# search.sh (full-text search) too.
#
# The sourcing script sets PROG (its name, for messages).
# parse_common_option / validate_common_options fill CLIENTS (CLIENT_LIST),
# THREADS, PORT, PORT_GIVEN, JSON_OUT, SAVE_LOGS, PG_BIN, TMP_PARENT,
# VERBOSE. Before pg_setup_cluster the script sets BUDGET (seconds after
# which the watchdog stops everything) and may set PG_EXTRA_CONF (lines
# appended to postgresql.conf). pg_setup_cluster sets WORK, DATA,
# PG_MAJOR, VERSION, S_FSYNC, S_SYNC, S_FPW, S_WALSYNC and the libpq
# environment (PGHOST ...).

# ---------------------------------------------------------------- common options
CLIENTS="8 16 32 64"
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

# The help text of the common options.
common_options_usage() {
    cat <<EOF
  --clients "C ..."  space-separated client counts, one pgbench run each
                     (default "$CLIENTS"; each 1..290)
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
EOF
}

# parse_common_option "$@": if $1 is a common option, takes it (and its value)
# and sets SHIFT to the number of words taken; else returns 1.
parse_common_option() {
    SHIFT=2
    case "$1" in
        --clients) CLIENTS=${2:-} ;;
        --threads) THREADS=${2:-} ;;
        --port) PORT=${2:-}; PORT_GIVEN=1 ;;
        --json) JSON_OUT=${2:-} ;;
        --save-logs) SAVE_LOGS=${2:-} ;;
        --pg-bin) PG_BIN=${2:-} ;;
        --tmpdir) TMP_PARENT=${2:-} ;;
        --verbose) VERBOSE=1; SHIFT=1 ;;
        *) return 1 ;;
    esac
    (($# >= SHIFT)) || usage_die "$1 needs a value"
}

validate_common_options() {
    local c
    is_uint "$THREADS" && ((THREADS >= 1)) || usage_die "--threads must be >= 1, got '$THREADS'"
    is_uint "$PORT" && ((PORT >= 1024 && PORT <= 65535)) || usage_die "--port must be in 1024..65535, got '$PORT'"
    read -r -a CLIENT_LIST <<<"$CLIENTS"
    ((${#CLIENT_LIST[@]} >= 1)) || usage_die "--clients is empty"
    for c in "${CLIENT_LIST[@]}"; do
        is_uint "$c" && ((c >= 1 && c <= 290)) || usage_die "--clients: '$c' is not in 1..290"
    done
    if [[ -n $JSON_OUT ]]; then
        JSON_OUT=$(cd "$(dirname "$JSON_OUT")" 2>/dev/null && pwd)/$(basename "$JSON_OUT") ||
            usage_die "--json: directory of '$JSON_OUT' does not exist"
    fi
    if [[ -n $SAVE_LOGS ]]; then
        mkdir -p "$SAVE_LOGS" && SAVE_LOGS=$(cd "$SAVE_LOGS" && pwd) || usage_die "--save-logs: cannot create '$SAVE_LOGS'"
    fi
    [[ -d $TMP_PARENT ]] || usage_die "--tmpdir: '$TMP_PARENT' is not a directory"
}

die() { echo "$PROG: error: $*" >&2; exit 3; }
usage_die() { echo "$PROG: $*" >&2; echo "Try '$0 --help'." >&2; exit 2; }
log() { echo "[pg-bench] $*" >&2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
# require_uints VAR:option ...: each VAR holds a non-negative integer, else a usage error.
require_uints() {
    local pair v
    for pair; do
        v=${pair%%:*}
        is_uint "${!v}" || usage_die "--${pair#*:} must be a non-negative integer, got '${!v}'"
    done
}

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
pg_find_binaries() {
    if [[ -n $PG_BIN ]]; then
        have_bins "$PG_BIN" || die "--pg-bin '$PG_BIN' lacks one of initdb pg_ctl postgres pgbench psql"
    else
        PG_BIN=$(find_pg_bin) || { install_pg; PG_BIN=$(find_pg_bin) || die "PostgreSQL binaries still not found after install"; }
    fi
    PG_MAJOR=$("$PG_BIN/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/')
    ((PG_MAJOR >= 13)) || die "PostgreSQL >= 13 is needed (gen_random_uuid, pgbench \\if), found $PG_MAJOR"
}

# ---------------------------------------------------------------- port
# Busy: something listens there, or any socket (even a client's, in
# TIME-WAIT) has it as its local port, which makes PostgreSQL's bind fail.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1 && return 0
    command -v ss >/dev/null 2>&1 && [[ -n $(ss -Htan "sport = :$1" 2>/dev/null) ]]
}
pg_pick_port() {
    port_busy "$PORT" || return 0
    ((PORT_GIVEN == 0)) || die "port $PORT on 127.0.0.1 is in use"
    local p
    for ((p = PORT + 1; p <= PORT + 99 && p <= 65535; p++)); do
        if ! port_busy "$p"; then PORT=$p; return 0; fi
    done
    die "no free port in $PORT..$((PORT + 99)) on 127.0.0.1"
}

# ---------------------------------------------------------------- cluster dir, cleanup
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

pg_make_workdir() {
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

    trap cleanup EXIT
    trap 'log "interrupted"; exit 130' INT
    trap 'log "terminated"; exit 143' TERM HUP

    # Watchdog, in its own session so Ctrl-C or a kill of this script's process
    # group cannot skip it: stops the cluster and removes its directory if this
    # script goes away without cleaning up (e.g. SIGKILL), or when the whole run
    # exceeds its time budget. It exits by itself in either case.
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
}

# ---------------------------------------------------------------- initdb + start
pg_start() {
    local password
    password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '%s\n' "$password" >"$WORK/pwfile"
    chown "$PG_OWNER" "$WORK/pwfile"
    chmod 600 "$WORK/pwfile"
    printf '127.0.0.1:%s:*:bench:%s\n' "$PORT" "$password" >"$WORK/pgpass"
    chmod 600 "$WORK/pgpass"

    log "PostgreSQL $PG_MAJOR from $PG_BIN; cluster in $WORK, 127.0.0.1:$PORT"
    as_pg "$PG_BIN/initdb" -D "$DATA" -U bench --pwfile="$WORK/pwfile" \
        --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
        { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
    rm -f "$WORK/pwfile"

    # Only connection and memory sizing; durability (fsync, synchronous_commit,
    # full_page_writes, wal_sync_method) stays at PostgreSQL's defaults.
    cat >>"$DATA/postgresql.conf" <<EOF

# ---- mercato benches/postgres/$PROG ----
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
max_connections = 300
shared_buffers = 256MB
EOF
    # A script's own settings (search.sh: memory and planner sizing, no JIT).
    [[ -z ${PG_EXTRA_CONF:-} ]] || printf '%s\n' "$PG_EXTRA_CONF" >>"$DATA/postgresql.conf"

    touch "$WORK/postgres.log" && chown "$PG_OWNER" "$WORK/postgres.log"
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$WORK/postgres.log" -w -t 60 start >/dev/null ||
        { tail -n 30 "$WORK/postgres.log" >&2; die "could not start PostgreSQL"; }

    export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=bench PGDATABASE=postgres PGPASSFILE=$WORK/pgpass
    unset PGPASSWORD PGSERVICE PGOPTIONS

    VERSION=$(psql_q -c "SHOW server_version")
    local durability
    durability=$(psql_q -F ' ' -c "SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes'), current_setting('wal_sync_method')")
    read -r S_FSYNC S_SYNC S_FPW S_WALSYNC <<<"$durability"
    [[ $S_FSYNC == on && $S_SYNC == on && $S_FPW == on ]] ||
        die "unexpected durability settings: fsync=$S_FSYNC synchronous_commit=$S_SYNC full_page_writes=$S_FPW"
    log "server $VERSION: fsync=$S_FSYNC synchronous_commit=$S_SYNC full_page_writes=$S_FPW wal_sync_method=$S_WALSYNC"
}
psql_q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

# Everything up to a running, checked, empty cluster.
pg_setup_cluster() {
    pg_find_binaries
    pg_pick_port
    pg_make_workdir
    pg_start
}

# ---------------------------------------------------------------- pgbench
# run_pgbench LABEL OUT ARGS...: runs pgbench ARGS with a per-transaction log
# (prefix LABEL) in $WORK/txlog, report in OUT; sets PGB_TXNS, PGB_TPS and
# PGB_FAILED, and PGB_LATENCY ("p50 p90 p99 p999", ms) from the log.
# In the background + wait, so that Ctrl-C / TERM reach the trap at once
# (timeout(1) runs pgbench in its own process group, out of Ctrl-C's reach;
# cleanup() kills it by pid). The time limit is $PGB_TIMEOUT seconds.
run_pgbench() {
    local label=$1 out=$2 rc=0
    shift 2
    (cd "$WORK/txlog" && exec timeout -k 10 "$PGB_TIMEOUT" "$PG_BIN/pgbench" -l --log-prefix="$label" "$@") \
        >"$out" 2>&1 </dev/null &
    PGBENCH_PID=$!
    wait "$PGBENCH_PID" || rc=$?
    PGBENCH_PID=""
    ((VERBOSE)) && cat "$out" >&2
    if ((rc != 0)); then
        tail -n 40 "$out" >&2
        die "pgbench failed (exit $rc) for run $label"
    fi
    PGB_TXNS=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$out")
    PGB_TPS=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$out")
    PGB_FAILED=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$out")
    [[ -n $PGB_TXNS && -n $PGB_TPS ]] || { cat "$out" >&2; die "could not parse pgbench output"; }
    PGB_FAILED=${PGB_FAILED:-0}
    PGB_LATENCY=$(percentiles "$WORK"/txlog/"$label".*)
    rm -f "$WORK"/txlog/"$label".*
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

# ---------------------------------------------------------------- machine
# Fairness: this baseline and Mercato are meant to run on an otherwise idle
# machine. Sets CPU_BUSY to how busy the CPUs are (1 s sample of /proc/stat)
# and warns at 15% or more.
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
measure_cpu_busy() {
    CPU_BUSY=$(cpu_busy_pct)
    if awk -v l="$CPU_BUSY" 'BEGIN { exit !(l >= 15) }'; then
        log "warning: the CPUs were ${CPU_BUSY}% busy just before the runs; other work on this machine will lower the numbers"
    fi
}

# The JSON fields every result file shares, after "system" and "version":
# durability, cpus, cpu_busy_before_pct (one line each, comma-terminated).
json_machine_fields() {
    printf '  "durability": {"fsync": "%s", "synchronous_commit": "%s", "full_page_writes": "%s", "wal_sync_method": "%s"},\n' \
        "$S_FSYNC" "$S_SYNC" "$S_FPW" "$S_WALSYNC"
    printf '  "cpus": %d,\n  "cpu_busy_before_pct": %s,\n' "$(nproc)" "$CPU_BUSY"
}
