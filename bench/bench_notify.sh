#!/bin/bash
# The change signal's cost to writers: single-row UPDATE throughput on a tracked
# table with smartsync.notify on and off (ALTER DATABASE ... SET), at 1, 2 and 8
# clients (pgbench -M prepared), while one connection LISTENs and consumes every
# notification as @smartsync/server does.  Rounds interleave on and off; the
# ratio is on / off within a round (min / median / max over the rounds).
# Run inside a cluster (PG* set): bash bench/run.sh notify, or
#   PRIVATE_CONF="synchronous_commit = off" bash test/private.sh -- bash bench/bench_notify.sh
# Settings: ROUNDS (5), SECONDS_PER_RUN (5), CLIENTS ("1 2 8"), LISTENER (1; 0: nobody listens)
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_notify
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CLIENTS=${CLIENTS:-1 2 8}
LISTENER=${LISTENER:-1}
# node-postgres (the listener) does not read postgresql-common's cluster files: name the port
export PGPORT=${PGPORT:-$(psql -XAtc 'SHOW port')}
dropdb --if-exists $DB 2>/dev/null
createdb $DB
tmp=$(mktemp -d)
listener=""
cleanup() {
    [ -z "$listener" ] || kill "$listener" 2>/dev/null || true
    rm -rf "$tmp"
    dropdb --if-exists $DB 2>/dev/null || true
}
trap cleanup EXIT
psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION smartsync;
CREATE SCHEMA bench_tpl;
CREATE TABLE bench_tpl.items (
    id          bigint PRIMARY KEY,
    practice_id integer NOT NULL,
    name        text NOT NULL,
    status      text NOT NULL,
    qty         integer NOT NULL,
    notes       text,
    version     bigint NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
SELECT smartsync.register_entity_type('items', 'bench_tpl.items', practice_column => 'practice_id');
SELECT smartsync.provision_tenant('bench', 'bench');
INSERT INTO bench.items (id, practice_id, name, status, qty)
SELECT g, g % 10, 'item ' || g, 'open', 0 FROM generate_series(1, 10000) g;
VACUUM ANALYZE bench.items;
SQL
cat > "$tmp/update.sql" <<'SQL'
\set id random(1, 10000)
UPDATE bench.items SET qty = qty + 1 WHERE id = :id;
SQL

if [ "$LISTENER" = 1 ]; then
    [ -d js/node_modules/pg ] || (cd js && npm ci --silent >/dev/null)
    PGDATABASE=$DB node bench/notify-listener.mjs > "$tmp/listener.out" &
    listener=$!
    for _ in $(seq 1 50); do grep -q listening "$tmp/listener.out" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$tmp/listener.out" || { echo "the listener did not start" >&2; exit 1; }
fi

run() { # clients
    pgbench -n -M prepared -c "$1" -j "$1" -T "$SECONDS_PER_RUN" -f "$tmp/update.sql" $DB 2>/dev/null \
        | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
declare -A tps ratios
for r in $(seq 1 "$ROUNDS"); do
    for c in $CLIENTS; do
        for mode in off on; do
            psql -X -q -d $DB -c "ALTER DATABASE $DB SET smartsync.notify = $mode"
            tps[$c.$mode.$r]=$(run "$c")
        done
        ratios[$c]+="$(awk -v a="${tps[$c.on.$r]}" -v b="${tps[$c.off.$r]}" 'BEGIN { printf "%.3f", a / b }') "
        psql -X -q -d $DB -c "VACUUM bench.items" >/dev/null
    done
done
if [ -n "$listener" ]; then
    kill "$listener"; wait "$listener" 2>/dev/null || true; listener=""
fi

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "Change signal cost: single-row UPDATE of a tracked 8-column row, $ROUNDS interleaved rounds of ${SECONDS_PER_RUN} s,"
echo "listener: $([ "$LISTENER" = 1 ] && grep notifications "$tmp/listener.out" || echo none); load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| clients | notify off (tx/s, median) | notify on (tx/s, median) | on / off per round: min / median / max | goal |"
echo "|---|---|---|---|---|"
for c in $CLIENTS; do
    off=""; on=""
    for r in $(seq 1 "$ROUNDS"); do off+="${tps[$c.off.$r]} "; on+="${tps[$c.on.$r]} "; done
    rs=${ratios[$c]}
    printf "| %s | %.0f | %.0f | %.2f / %.2f / %.2f | %s |\n" "$c" "$(echo $off | median)" "$(echo $on | median)" \
        "$(echo $rs | tr ' ' '\n' | sort -g | head -1)" "$(echo $rs | median)" "$(echo $rs | tr ' ' '\n' | sort -g | tail -1)" \
        "$([ "$c" = 2 ] && echo '>= 0.90' || echo '-')"
done
