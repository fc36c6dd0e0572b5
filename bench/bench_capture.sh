#!/bin/bash
# Change-capture cost: UPDATE throughput of tracked tables against the same
# tables untracked and with a hand-written PL/pgSQL audit trigger, in the same
# run: pgbench -M prepared, 2 clients (-c2 -j2), ROUNDS interleaved rounds,
# each ratio taken within a round; the table shows min / median / max.
#   single-row UPDATE of a 20-column row (~1 KB as JSON) and of a 17-column
#     row (~0.5 KB), random rows, SECONDS_PER_RUN seconds per run;
#   one UPDATE of 10,000 rows, each client its own 10,000 (BULK_TX statements
#     per client per run);
#   single-row UPDATEs spread over TENANTS tenants: each client (a new
#     connection every round) runs SPREAD_TX transactions, each choosing a
#     random tenant (SET search_path) and row, so about TENANTS of them (5% at
#     the defaults) are the connection's first write to that tenant's table;
#   first writes only: each of a connection's FIRST_TX writes is its first to
#     that tenant's table (every tenant once per round), so the ratio is what
#     a first write costs: relation cache, capture's setup, planning.
# Run by bench/run.sh inside a throwaway cluster, or against any server
# (PG* set): bash bench/private.sh capture runs it on a private build.
# Before/after: with BASELINE_PGHOST and BASELINE_PGPORT naming a second server
# (another build, e.g. main's), every workload of a round runs on this server
# and then on that one, and a second table shows the baseline server's ratios
# measured in the same rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_capture
SPREAD_DB=bench_capture_spread
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
BULK_TX=${BULK_TX:-3}
TENANTS=${TENANTS:-1000}
SPREAD_TX=${SPREAD_TX:-20000}
FIRST_TX=$((TENANTS / 2))
servers=this
[ -z "${BASELINE_PGPORT:-}" ] || servers="this baseline"
on() { # server, command...: the command against that server
    local srv=$1; shift
    if [ "$srv" = baseline ]; then
        PGHOST=${BASELINE_PGHOST:-${PGHOST:-}} PGPORT=$BASELINE_PGPORT "$@"
    else
        "$@"
    fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; for srv in $servers; do on $srv dropdb --if-exists $DB 2>/dev/null; on $srv dropdb --if-exists $SPREAD_DB 2>/dev/null; done' EXIT
load() { awk '{printf "%s %s %s", $1, $2, $3}' /proc/loadavg; }
echo "setting up (load average $(load))" >&2
for srv in $servers; do
    for d in $DB $SPREAD_DB; do on $srv dropdb --if-exists $d 2>/dev/null; on $srv createdb $d; done
    on $srv psql -X -q -v ON_ERROR_STOP=1 -d $DB -f bench/capture_setup.sql >/dev/null
    on $srv psql -X -q -v ON_ERROR_STOP=1 -d $SPREAD_DB -f bench/capture_spread_setup.sql >/dev/null
    on $srv psql -X -q -v ON_ERROR_STOP=1 -d $SPREAD_DB -c "CALL spread_setup(1, $TENANTS)" >/dev/null
    on $srv psql -X -q -v ON_ERROR_STOP=1 -d $SPREAD_DB -c "CREATE SEQUENCE first_tenant; CREATE SEQUENCE first_plain" >/dev/null
    on $srv psql -X -q -d $SPREAD_DB -c "VACUUM ANALYZE" >/dev/null
done
load_before=$(load)

variants="untracked tracked plpgsql"
for s in $variants; do
    cat > "$tmp/single20_$s.sql" <<SQL
\set id random(1, 20000)
UPDATE $s.records SET qty = qty + 1, status = 'checked-in' WHERE id = :id;
SQL
    cat > "$tmp/single17_$s.sql" <<SQL
\set id random(1, 20000)
UPDATE $s.visits SET qty = qty + 1, status = 'checked-in' WHERE id = :id;
SQL
    cat > "$tmp/bulk_$s.sql" <<SQL
UPDATE $s.records SET qty = qty + 1 WHERE id > :client_id * 10000 AND id <= (:client_id + 1) * 10000;
SQL
done
for s in tenant plain; do
    cat > "$tmp/spread_$s.sql" <<SQL
\set t random(1, $TENANTS)
\set id random(1, 10)
SELECT set_config('search_path', '${s}_' || :t, false);
UPDATE visits SET qty = qty + 1, status = 'checked-in' WHERE id = :id;
SQL
    cat > "$tmp/first_$s.sql" <<SQL
\set id random(1, 10)
SELECT set_config('search_path', '${s}_' || nextval('public.first_$s'), false);
UPDATE visits SET qty = qty + 1, status = 'checked-in' WHERE id = :id;
SQL
done

# tps of one pgbench run on server srv: 2 clients, prepared statements
run() { # db, script, -T n | -t n
    on $srv pgbench -n -M prepared -c 2 -j 2 $3 -f "$2" "$1" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
vac() { on $srv psql -X -q -d "$1" -c "VACUUM $2" >/dev/null; }

declare -A tps
for r in $(seq 1 "$ROUNDS"); do   # interleaved, so drift hits all alike
    for s in $variants; do
        for srv in $servers; do
            tps[${srv}_single20_$s]+="$(run $DB "$tmp/single20_$s.sql" "-T $SECONDS_PER_RUN") "
            vac $DB "$s.records"
        done
        for srv in $servers; do
            tps[${srv}_single17_$s]+="$(run $DB "$tmp/single17_$s.sql" "-T $SECONDS_PER_RUN") "
            vac $DB "$s.visits"
        done
        for srv in $servers; do
            tps[${srv}_bulk_$s]+="$(run $DB "$tmp/bulk_$s.sql" "-t $BULK_TX") "
            vac $DB "$s.records"
        done
    done
    for srv in $servers; do vac $DB "tracked.sync_changes"; vac $DB "plpgsql.change_log"; done
    for s in plain tenant; do
        for srv in $servers; do
            tps[${srv}_spread_$s]+="$(run $SPREAD_DB "$tmp/spread_$s.sql" "-t $SPREAD_TX") "
            on $srv psql -X -q -d $SPREAD_DB -c "ALTER SEQUENCE first_$s RESTART" >/dev/null
            tps[${srv}_first_$s]+="$(run $SPREAD_DB "$tmp/first_$s.sql" "-t $FIRST_TX") "
        done
    done
    echo "round $r done (load average $(load))" >&2
done
load_after=$(load)

# per-round ratios a/b, then min / median / max
ratios() { # list a, list b
    paste <(echo $1 | tr ' ' '\n' | grep .) <(echo $2 | tr ' ' '\n' | grep .) \
        | awk '{print $1 / $2}' | sort -g \
        | awk '{a[NR]=$1} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.2f / %.2f / %.2f", a[1], m, a[NR]}'
}
median() { echo $1 | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {printf "%.1f", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

table() { # the table of server srv
echo "Change capture: pgbench -M prepared -c2 -j2, synchronous_commit=off, $ROUNDS interleaved rounds;"
echo "ratios per round against the untracked table, min / median / max; load average $load_before before, $load_after after"
echo
echo "| workload | untracked (median) | smartsync (median) | smartsync / untracked | PL/pgSQL audit trigger / untracked | goal |"
echo "|---|---|---|---|---|---|"
row() { # label, key, unit, goal
    printf "| %s | %s %s | %s %s | **%s** | %s | %s |\n" "$1" \
        "$(median "${tps[${srv}_${2}_untracked]}")" "$3" "$(median "${tps[${srv}_${2}_tracked]}")" "$3" \
        "$(ratios "${tps[${srv}_${2}_tracked]}" "${tps[${srv}_${2}_untracked]}")" \
        "$(ratios "${tps[${srv}_${2}_plpgsql]}" "${tps[${srv}_${2}_untracked]}")" "$4"
}
row "single-row UPDATE, 20-column row (~1 KB as JSON)" single20 "tx/s" ">= 0.80"
row "single-row UPDATE, 17-column row (~0.5 KB as JSON)" single17 "tx/s" ">= 0.80"
row "one UPDATE of 10,000 rows" bulk "statements/s" ">= 0.50"
printf "| single-row UPDATEs spread over %s tenants (%s per connection, ~%s%% of them its first write to that tenant's table) | %s tx/s | %s tx/s | **%s** | - | >= 0.70 |\n" \
    "$TENANTS" "$SPREAD_TX" "$(awk -v t=$TENANTS -v n=$SPREAD_TX 'BEGIN {printf "%.0f", 100 * t * (1 - exp(-n / t)) / n}')" \
    "$(median "${tps[${srv}_spread_plain]}")" "$(median "${tps[${srv}_spread_tenant]}")" \
    "$(ratios "${tps[${srv}_spread_tenant]}" "${tps[${srv}_spread_plain]}")"
printf "| first writes only: each of %s writes per connection its first to that tenant's table | %s tx/s | %s tx/s | %s | - | - |\n" \
    "$FIRST_TX" "$(median "${tps[${srv}_first_plain]}")" "$(median "${tps[${srv}_first_tenant]}")" \
    "$(ratios "${tps[${srv}_first_tenant]}" "${tps[${srv}_first_plain]}")"
}
for srv in $servers; do
    [ $srv = this ] || { echo; echo "Baseline server (PGPORT=$BASELINE_PGPORT), measured in the same rounds:"; }
    table
done
