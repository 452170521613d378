#!/usr/bin/env bash
# PostgreSQL baseline for `mercato bench checkout`: the seed plan's order saga
# on the seed plan's schemas, one SQL transaction per saga step, under pgbench.
# See README.md next to this file ("Checkout"). `checkout.sh --help` lists the options.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=checkout.sh
# shellcheck source=pgcluster.sh
. "$HERE/pgcluster.sh"

# ---------------------------------------------------------------- defaults
PRODUCTS=1000
STOCK=1000000
DURATION=10
ORDERS=0
WORKLOAD=uniform
LINES=1-3
MAXQTY=1
USERS=100000
FLASH=0

# --flash-sale changes the defaults, whatever its place among the options.
for arg in "$@"; do
    if [[ $arg == --flash-sale ]]; then
        FLASH=1 PRODUCTS=1 STOCK=100 LINES=1 ORDERS=5000 CLIENTS="10 50 250"
    fi
done

usage() {
    cat <<EOF
Usage: $(basename "$0") [OPTIONS]

Textbook PostgreSQL baseline for Mercato's checkout: a private, throw-away
PostgreSQL cluster (127.0.0.1 only, default durability) with the seed plan's
inventory, orders, order_items and saga_state_log tables (plus products and
payments), and pgbench clients that each run orders through the plan's saga,
one SQL transaction per step: create (PENDING), reserve (SELECT ... FOR
UPDATE; AWAITING_PAYMENT or CANCELLED insufficient_stock), pay (tok_visa,
zero-latency gateway), confirm (CONFIRMED, reservations committed). One
pgbench transaction is one order, so its latency is create-to-CONFIRMED.

Options:
  --products N       products 1..N, each with a price and --stock S units (default $PRODUCTS)
  --stock S          initial quantity of every product (default $STOCK); the
                     stock is reset to S before every client count
  --duration SECS    length of each run in seconds (default $DURATION); not with --orders
  --orders N         instead of a duration: N orders per run in all, N/C per
                     client (pgbench -t), N a multiple of every client count
  --workload W       uniform: products uniformly random over 1..N; hot: 90% of
                     orders take all their lines among products 1..10, 10%
                     among 11..N (default $WORKLOAD)
  --lines L|A-B      lines (distinct products) per order: L, or random in A..B,
                     1 <= A <= B <= 3 (default $LINES)
  --qty Q            each line orders random(1, Q) units (default $MAXQTY)
  --users U          user_id random in 1..U (default $USERS)
  --flash-sale       a flash sale: defaults become --products 1 --stock 100
                     --lines 1 --orders 5000 --clients "10 50 250", and every
                     run must end with exactly min(orders, stock) orders
                     CONFIRMED and all others CANCELLED insufficient_stock
$(common_options_usage)

Output: per client count, orders/s, confirmed orders/s, orders confirmed,
cancelled and unfinished, and p50/p90/p99/p99.9 order latency in ms from
pgbench's per-transaction log; then the checks (no oversell; every order
CONFIRMED with its payment, or CANCELLED insufficient_stock with nothing held;
stock conserved). Exit status 0 on success, 1 if a check failed, 2 on usage
errors, other on errors. The cluster and its directory are removed on exit.
EOF
}

DURATION_GIVEN=0
while (($#)); do
    if parse_common_option "$@"; then shift "$SHIFT"; continue; fi
    case "$1" in
        --products) PRODUCTS=${2:-}; shift 2 || usage_die "--products needs a value" ;;
        --stock) STOCK=${2:-}; shift 2 || usage_die "--stock needs a value" ;;
        --duration) DURATION=${2:-}; DURATION_GIVEN=1; shift 2 || usage_die "--duration needs a value" ;;
        --orders) ORDERS=${2:-}; shift 2 || usage_die "--orders needs a value" ;;
        --workload) WORKLOAD=${2:-}; shift 2 || usage_die "--workload needs a value" ;;
        --lines) LINES=${2:-}; shift 2 || usage_die "--lines needs a value" ;;
        --qty) MAXQTY=${2:-}; shift 2 || usage_die "--qty needs a value" ;;
        --users) USERS=${2:-}; shift 2 || usage_die "--users needs a value" ;;
        --flash-sale) shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage_die "unknown option: $1" ;;
    esac
done

# ---------------------------------------------------------------- validation
if [[ $LINES =~ ^([0-9]+)-([0-9]+)$ ]]; then
    MINLINES=${BASH_REMATCH[1]} MAXLINES=${BASH_REMATCH[2]}
elif is_uint "$LINES"; then
    MINLINES=$LINES MAXLINES=$LINES
else
    usage_die "--lines must be L or A-B, got '$LINES'"
fi
((MINLINES >= 1 && MINLINES <= MAXLINES && MAXLINES <= 3)) || usage_die "--lines: need 1 <= A <= B <= 3, got '$LINES'"
validate_common_options
require_uints PRODUCTS:products STOCK:stock DURATION:duration ORDERS:orders MAXQTY:qty USERS:users
((PRODUCTS >= 1)) || usage_die "--products must be >= 1"
((STOCK <= 2147483647)) || usage_die "--stock must fit in INT"
((DURATION >= 1)) || usage_die "--duration must be >= 1"
((MAXQTY >= 1 && MAXQTY <= 1000)) || usage_die "--qty must be in 1..1000"
((USERS >= 1)) || usage_die "--users must be >= 1"
((ORDERS == 0 || DURATION_GIVEN == 0)) || usage_die "--duration and --orders exclude each other"
for c in "${CLIENT_LIST[@]}"; do
    ((ORDERS == 0 || ORDERS % c == 0)) || usage_die "--orders $ORDERS is not a multiple of $c clients"
done
case "$WORKLOAD" in
    uniform) ((PRODUCTS >= MAXLINES)) || usage_die "uniform workload needs --products >= the most lines" ;;
    hot) ((PRODUCTS >= 10 + MAXLINES)) || usage_die "hot workload needs --products >= 10 + the most lines" ;;
    *) usage_die "--workload must be uniform or hot, got '$WORKLOAD'" ;;
esac
if ((FLASH)); then
    ((PRODUCTS == 1 && MINLINES == 1 && MAXLINES == 1 && MAXQTY == 1 && ORDERS > 0)) ||
        usage_die "--flash-sale needs --products 1 --lines 1 --qty 1 and --orders (its defaults)"
fi

# ---------------------------------------------------------------- cluster
if ((ORDERS > 0)); then
    PGB_TIMEOUT=900
else
    PGB_TIMEOUT=$((DURATION + 120))
fi
BUDGET=$((300 + ${#CLIENT_LIST[@]} * (PGB_TIMEOUT + 120)))
pg_setup_cluster

# ---------------------------------------------------------------- schema + seed
psql_q -f "$HERE/checkout-schema.sql" >/dev/null
psql_q >/dev/null <<EOF
INSERT INTO products (id, name, price)
     SELECT g, 'product ' || g, ((g * 37) % 9900 + 100) / 100.0 FROM generate_series(1, $PRODUCTS) AS g;
INSERT INTO inventory (id, product_id, quantity)
     SELECT gen_random_uuid(), g, $STOCK FROM generate_series(1, $PRODUCTS) AS g;
EOF
log "schema loaded, $PRODUCTS products seeded with stock $STOCK"
SCRIPT=$HERE/checkout.sql
HOT=0
[[ $WORKLOAD == hot ]] && HOT=1

# The saga's tables are emptied with TRUNCATE and deliberately not analyzed:
# TRUNCATE leaves them "never analyzed", and the planner then assumes some
# size and plans index scans. ANALYZE of an empty table records 0 rows
# instead, the first plans of pgbench's prepared statements become sequential
# scans (UPDATE orders ... WHERE id = $1 scanned the whole table), and, as
# generic plans, they stay so for the run: 150 million rows read in 10 s,
# a third less throughput. For the same reason autovacuum (and so autoanalyze)
# is off for these tables: an autoanalyze that happens to run while a table
# holds a few dozen rows records a tiny table, and the prepared statements are
# re-planned as sequential scans for the rest of the run (seen in two of six
# 64-client runs: 3,852 and 5,092 sequential scans). They are emptied before
# every run and only grow during one, so they need no vacuum; inventory and
# products keep autovacuum. A production database has large, analyzed tables
# and index scans; seq_scans in the report shows the plans were index scans.
psql_q -c "ALTER TABLE orders SET (autovacuum_enabled = off);
           ALTER TABLE order_items SET (autovacuum_enabled = off);
           ALTER TABLE saga_state_log SET (autovacuum_enabled = off);
           ALTER TABLE payments SET (autovacuum_enabled = off);
           ALTER TABLE inventory_reservations SET (autovacuum_enabled = off)" >/dev/null
reset_state() {
    psql_q >/dev/null <<EOF
TRUNCATE saga_state_log, order_items, payments, inventory_reservations, orders;
UPDATE inventory SET quantity = $STOCK;
VACUUM (ANALYZE) inventory;
VACUUM (ANALYZE) products;
CHECKPOINT;
SELECT pg_stat_reset();
EOF
}

# Sequential scans of the tables the saga fills, since reset_state (a
# handful at most when every plan is an index scan; inventory and products
# are left out: with --products 1 a scan of their one row is the right plan).
# A backend's statistics reach the shared counters when it ends: pgbench's
# have ended when this runs.
seq_scans() {
    psql_q -c "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables
                WHERE relname IN ('orders', 'order_items', 'saga_state_log', 'payments', 'inventory_reservations')"
}

# The state after a run, one line of counts (names in CHECK_FIELDS):
#   orders, confirmed, cancelled
#   no_stock:       CANCELLED with the saga log's RESERVE_INVENTORY FAILED
#                   insufficient_stock
#   unfinished:     PENDING or AWAITING_PAYMENT
#   other:          orders in any other status
#   bad_cancelled:  CANCELLED without the saga log's RESERVE_INVENTORY FAILED
#                   insufficient_stock, or with a reservation, a payment, or
#                   other than 2 saga log rows
#   bad_confirmed:  CONFIRMED without exactly one payment, SUCCEEDED, of the
#                   order's total, or with a reservation left, or other than 5
#                   saga log rows
#   bad_totals:     total_amount differs from its items' sum
#   bad_prices:     an item's unit_price differs from its product's price
#   stray:          reservation rows belonging to no order line
#   bad_products:   quantity < 0, or quantity + units sold (CONFIRMED orders)
#                   + units still reserved differs from the initial stock
#   oversold:       products with units sold > initial stock
#   sold, held, left: units sold, still reserved, still in stock (all products)
CHECK_FIELDS="orders confirmed cancelled no_stock unfinished other bad_cancelled bad_confirmed bad_totals bad_prices stray bad_products oversold sold held left"
check_state() {
    psql_q -F ' ' <<EOF
WITH items AS (SELECT order_id, sum(quantity * unit_price) AS total FROM order_items GROUP BY order_id),
held AS (SELECT i.order_id, count(*) AS n FROM inventory_reservations r JOIN order_items i ON i.id = r.order_id GROUP BY i.order_id),
logs AS (SELECT order_id, count(*) AS n,
                bool_or(step_name = 'RESERVE_INVENTORY' AND status = 'FAILED' AND details = 'insufficient_stock') AS no_stock
           FROM saga_state_log GROUP BY order_id),
pay AS (SELECT order_id, count(*) AS n, count(*) FILTER (WHERE status = 'SUCCEEDED') AS ok, max(amount) AS amount
          FROM payments GROUP BY order_id),
per_order AS (
    SELECT o.status, o.total_amount, it.total AS items_total, coalesce(h.n, 0) AS held,
           coalesce(l.n, 0) AS logs, coalesce(l.no_stock, false) AS no_stock,
           coalesce(p.n, 0) AS payments, coalesce(p.ok, 0) AS paid, p.amount AS paid_amount
      FROM orders o
      LEFT JOIN items it ON it.order_id = o.id
      LEFT JOIN held h ON h.order_id = o.id
      LEFT JOIN logs l ON l.order_id = o.id
      LEFT JOIN pay p ON p.order_id = o.id),
sold AS (SELECT i.product_id, sum(i.quantity) AS units FROM order_items i JOIN orders o ON o.id = i.order_id
          WHERE o.status = 'CONFIRMED' GROUP BY i.product_id),
held_units AS (SELECT v.product_id, sum(r.quantity_reserved) AS units FROM inventory_reservations r
                 JOIN inventory v ON v.id = r.inventory_id GROUP BY v.product_id),
prod AS (SELECT v.product_id, v.quantity, coalesce(s.units, 0) AS sold, coalesce(h.units, 0) AS held
           FROM inventory v LEFT JOIN sold s USING (product_id) LEFT JOIN held_units h USING (product_id))
SELECT count(*),
       count(*) FILTER (WHERE status = 'CONFIRMED'),
       count(*) FILTER (WHERE status = 'CANCELLED'),
       count(*) FILTER (WHERE status = 'CANCELLED' AND no_stock),
       count(*) FILTER (WHERE status IN ('PENDING', 'AWAITING_PAYMENT')),
       count(*) FILTER (WHERE status NOT IN ('PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'CANCELLED')),
       count(*) FILTER (WHERE status = 'CANCELLED' AND (NOT no_stock OR held > 0 OR payments > 0 OR logs <> 2)),
       count(*) FILTER (WHERE status = 'CONFIRMED' AND (held > 0 OR payments <> 1 OR paid <> 1
                                                       OR paid_amount <> total_amount OR logs <> 5)),
       count(*) FILTER (WHERE items_total IS DISTINCT FROM total_amount),
       (SELECT count(*) FROM order_items i JOIN products p ON p.id = i.product_id WHERE i.unit_price <> p.price),
       (SELECT count(*) FROM inventory_reservations r WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.id = r.order_id)),
       (SELECT count(*) FROM prod WHERE quantity < 0 OR quantity + sold + held <> $STOCK)
           + abs((SELECT count(*) FROM inventory) - $PRODUCTS),
       (SELECT count(*) FROM prod WHERE sold > $STOCK),
       (SELECT coalesce(sum(sold), 0) FROM prod),
       (SELECT coalesce(sum(held), 0) FROM prod),
       (SELECT coalesce(sum(quantity), 0) FROM prod)
  FROM per_order;
EOF
}

# Milliseconds from the first order's creation (step a's BEGIN) to the last
# confirmation's (step d's BEGIN): how long the stock lasted, in a flash sale.
sold_out_ms() {
    psql_q -c "SELECT coalesce(round(extract(epoch FROM
                   (SELECT max(created_at) FROM saga_state_log WHERE step_name = 'CONFIRM_ORDER')
                 - (SELECT min(created_at) FROM orders)) * 1000, 1), 0)"
}

measure_cpu_busy

ALL_PASSED=true
OVERSELL=false
RESULTS=()   # "clients tps txns failed p50 p90 p99 p999 passed <CHECK_FIELDS...>"
for c in "${CLIENT_LIST[@]}"; do
    j=$((THREADS < c ? THREADS : c))
    reset_state
    if ((ORDERS > 0)); then
        length=(-t $((ORDERS / c)))
        what="$ORDERS orders ($((ORDERS / c)) per client)"
    else
        length=(-T "$DURATION")
        what="${DURATION}s"
    fi
    log "run: $WORKLOAD, lines=$LINES, clients=$c, threads=$j, $what"
    extra=()
    ((VERBOSE)) && extra+=(-r)
    run_pgbench "c$c" "$WORK/out/checkout_c$c.txt" -n -M prepared -c "$c" -j "$j" "${length[@]}" \
        -D nproducts="$PRODUCTS" -D hot="$HOT" -D minlines="$MINLINES" -D maxlines="$MAXLINES" \
        -D maxqty="$MAXQTY" -D nusers="$USERS" "${extra[@]}" -f "$SCRIPT"
    read -r p50 p90 p99 p999 <<<"$PGB_LATENCY"

    sleep 0.5   # let pgbench's backends finish exiting (and report their statistics)
    scans=$(seq_scans)
    ((scans <= 100)) || log "warning: $scans sequential scans of the saga's tables during the run: some plans were not index scans"
    state=$(check_state)
    # shellcheck disable=SC2086
    read -r $CHECK_FIELDS <<<"$state"
    problems=()
    ((other == 0)) || problems+=("$other orders in an unexpected status")
    ((bad_cancelled == 0)) || problems+=("$bad_cancelled CANCELLED orders without insufficient_stock or with something held or paid")
    ((bad_confirmed == 0)) || problems+=("$bad_confirmed CONFIRMED orders without their payment or saga log, or with a reservation left")
    ((bad_totals == 0)) || problems+=("$bad_totals orders whose total is not their items' sum")
    ((bad_prices == 0)) || problems+=("$bad_prices items not at the product's price")
    ((stray == 0)) || problems+=("$stray reservations of no order line")
    ((bad_products == 0)) || problems+=("$bad_products products whose stock does not add up")
    if ((oversold != 0)); then
        OVERSELL=true
        problems+=("$oversold products OVERSOLD")
    fi
    # Every pgbench transaction is one order that reached CONFIRMED or
    # CANCELLED; pgbench -T lets a started script finish, so none is left over.
    ((unfinished == 0)) || problems+=("$unfinished orders left PENDING or AWAITING_PAYMENT")
    ((orders == PGB_TXNS)) || problems+=("$orders orders in the database, $PGB_TXNS counted by pgbench")
    ((PGB_FAILED == 0)) || problems+=("$PGB_FAILED pgbench transactions failed")
    if ((FLASH)); then
        expect=$((ORDERS < STOCK ? ORDERS : STOCK))
        ((confirmed == expect)) || problems+=("flash sale: $confirmed confirmed, expected $expect")
        ((sold == expect && left == STOCK - expect && held == 0)) ||
            problems+=("flash sale: sold $sold, left $left, held $held; expected $expect, $((STOCK - expect)), 0")
        ((no_stock == ORDERS - expect)) || problems+=("flash sale: $no_stock cancelled for insufficient_stock, expected $((ORDERS - expect))")
    fi
    passed=true
    if ((${#problems[@]})); then
        passed=false ALL_PASSED=false
        for p in "${problems[@]}"; do log "CHECK FAILED ($c clients): $p"; done
    fi
    log "$c clients: $orders orders, $confirmed confirmed, $cancelled cancelled ($no_stock insufficient_stock), $unfinished unfinished; units sold $sold, held $held, left $left; checks passed: $passed"
    elapsed=$(awk -v t="$PGB_TPS" -v n="$PGB_TXNS" 'BEGIN { printf "%.3f", (t > 0 ? n / t : 0) }')
    sold_out=$(sold_out_ms)
    RESULTS+=("$c $PGB_TPS $PGB_TXNS $PGB_FAILED $p50 $p90 $p99 $p999 $passed $elapsed $sold_out $scans $state")
done

# ---------------------------------------------------------------- report
# Sets c tps txns failed p50 p90 p99 p999 passed elapsed sold_out scans and $CHECK_FIELDS from a RESULTS row.
parse_result() {
    # shellcheck disable=SC2086
    read -r c tps txns failed p50 p90 p99 p999 passed elapsed sold_out scans $CHECK_FIELDS <<<"$1"
}
best_c="" best_tps=""
for r in "${RESULTS[@]}"; do
    parse_result "$r"
    ctps=$(awk -v t="$tps" -v n="$txns" -v k="$confirmed" 'BEGIN { printf "%.3f", (n > 0 ? t * k / n : 0) }')
    if [[ -z $best_tps ]] || awk -v a="$ctps" -v b="$best_tps" 'BEGIN { exit !(a > b) }'; then
        best_c=$c best_tps=$ctps
    fi
done

length_desc="${DURATION}s per run"
((ORDERS > 0)) && length_desc="$ORDERS orders per run"
echo
echo "PostgreSQL $VERSION | checkout$( ((FLASH)) && echo ' flash sale') workload=$WORKLOAD lines=$LINES products=$PRODUCTS stock=$STOCK qty=1..$MAXQTY | $length_desc, -M prepared, -j $THREADS | fsync=$S_FSYNC synchronous_commit=$S_SYNC"
printf '%8s %10s %12s %8s %10s %10s %10s %9s %9s %9s %9s\n' \
    clients orders/s confirmed/s orders confirmed cancelled unfinished p50_ms p90_ms p99_ms p99.9_ms
for r in "${RESULTS[@]}"; do
    parse_result "$r"
    ctps=$(awk -v t="$tps" -v n="$txns" -v k="$confirmed" 'BEGIN { printf "%.1f", (n > 0 ? t * k / n : 0) }')
    printf '%8s %10.1f %12s %8s %10s %10s %10s %9s %9s %9s %9s\n' \
        "$c" "$tps" "$ctps" "$orders" "$confirmed" "$cancelled" "$unfinished" "$p50" "$p90" "$p99" "$p999"
done
if ((FLASH)); then
    for r in "${RESULTS[@]}"; do
        parse_result "$r"
        printf 'flash sale, %s clients: %s orders in %.2f s; %s CONFIRMED (stock lasted %s ms), %s CANCELLED with insufficient_stock; sold %s of %s, %s left; oversold products: %s; checks passed: %s\n' \
            "$c" "$orders" "$elapsed" "$confirmed" "$sold_out" "$no_stock" "$sold" "$STOCK" "$left" "$oversold" "$passed"
    done
fi
printf 'best: %s clients, %.1f confirmed orders/s | oversell: %s | checks passed: %s\n' \
    "$best_c" "$best_tps" "$OVERSELL" "$ALL_PASSED"

if [[ -n $JSON_OUT ]]; then
    {
        printf '{\n  "system": "postgresql",\n  "version": "%s",\n  "benchmark": "checkout",\n  "flash_sale": %s,\n' \
            "$VERSION" "$( ((FLASH)) && echo true || echo false)"
        printf '  "workload": "%s",\n  "lines": "%s",\n  "min_lines": %d,\n  "max_lines": %d,\n  "products": %d,\n' \
            "$WORKLOAD" "$LINES" "$MINLINES" "$MAXLINES" "$PRODUCTS"
        printf '  "stock": %d,\n  "max_qty": %d,\n  "users": %d,\n' "$STOCK" "$MAXQTY" "$USERS"
        if ((ORDERS > 0)); then
            printf '  "duration_s": null,\n  "orders_per_run": %d,\n' "$ORDERS"
        else
            printf '  "duration_s": %d,\n  "orders_per_run": null,\n' "$DURATION"
        fi
        printf '  "threads": %d,\n  "protocol": "prepared",\n  "sql_transactions_per_order": 4,\n' "$THREADS"
        json_machine_fields
        printf '  "results": [\n'
        n=${#RESULTS[@]} i=0
        for r in "${RESULTS[@]}"; do
            parse_result "$r"
            i=$((i + 1))
            ctps=$(awk -v t="$tps" -v n="$txns" -v k="$confirmed" 'BEGIN { printf "%.3f", (n > 0 ? t * k / n : 0) }')
            printf '    {"clients": %d, "tps": %s, "confirmed_tps": %s, "transactions": %d, "failed": %d, "elapsed_s": %s,\n' \
                "$c" "$tps" "$ctps" "$txns" "$failed" "$elapsed"
            printf '     "orders": %d, "confirmed": %d, "cancelled": %d, "cancelled_insufficient_stock": %d, "unfinished": %d,\n' \
                "$orders" "$confirmed" "$cancelled" "$no_stock" "$unfinished"
            printf '     "units": {"sold": %d, "held": %d, "left": %d}, "oversold_products": %d, "sold_out_ms": %s, "seq_scans": %d, "checks_passed": %s,\n' \
                "$sold" "$held" "$left" "$oversold" "$( ((FLASH)) && echo "$sold_out" || echo null)" "$scans" "$passed"
            printf '     "latency_ms": {"p50": %s, "p90": %s, "p99": %s, "p999": %s}}%s\n' \
                "$p50" "$p90" "$p99" "$p999" "$([[ $i -lt $n ]] && echo ,)"
        done
        printf '  ],\n  "best": {"clients": %d, "tps": %s},\n  "oversell": %s,\n  "checks_passed": %s\n}\n' \
            "$best_c" "$best_tps" "$OVERSELL" "$ALL_PASSED"
    } >"$JSON_OUT"
    log "wrote $JSON_OUT"
fi

[[ $ALL_PASSED == true ]] || exit 1
exit 0
