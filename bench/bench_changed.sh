#!/bin/bash
# sync_changed(cursor) against the cheapest pull that answers the same
# question, sync_pull(p_cursor => cursor, p_limit => 1): calls per second
# (pgbench -M prepared, 1 client), for a cursor with nothing new (what a
# polling client asks almost always), with 1 new change, and with 1,000 new
# changes, on a tenant whose log holds 100,000 rows.  Rounds interleave; the
# ratio is sync_changed / pull within a round (min / median / max).
# Run inside a cluster (PG* set): bash bench/run.sh changed, or
#   bash test/private.sh -- bash bench/bench_changed.sh
# Settings: ROUNDS (5), SECONDS_PER_RUN (4)
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_changed
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
dropdb --if-exists $DB 2>/dev/null
createdb $DB
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${KEEP_DB:-}" ] || dropdb --if-exists $DB 2>/dev/null || true' EXIT
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
-- a log of 100,000 rows: 10,000 rows inserted, then updated 9 times, by the back office
SET smartsync.client_id = 'back-office';
INSERT INTO bench.items (id, practice_id, name, status, qty)
SELECT g, g % 10, 'item ' || g, 'open', 0 FROM generate_series(1, 10000) g;
DO $$ BEGIN FOR i IN 1..9 LOOP UPDATE bench.items SET qty = qty + 1; END LOOP; END $$;
ALTER DATABASE bench_changed SET smartsync.tenant_id = 'bench';
ALTER DATABASE bench_changed SET smartsync.client_id = 'phone';
CREATE TABLE cursors (name text PRIMARY KEY, c text NOT NULL);
SQL
# the three cursors, each drained up to its point
psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
CREATE FUNCTION drain(c text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r jsonb;
BEGIN
    LOOP
        r := smartsync.sync_pull(p_cursor => c, p_limit => 10000);
        c := r->>'cursor';
        EXIT WHEN NOT (r->>'hasMore')::boolean;
    END LOOP;
    RETURN c;
END $$;
INSERT INTO cursors SELECT 'many', drain(NULL);
SET smartsync.client_id = 'back-office';
UPDATE bench.items SET qty = qty + 1 WHERE id <= 1000;
RESET smartsync.client_id;
INSERT INTO cursors SELECT 'one', drain(NULL);
SET smartsync.client_id = 'back-office';
UPDATE bench.items SET qty = qty + 1 WHERE id = 1;
RESET smartsync.client_id;
INSERT INTO cursors SELECT 'none', drain(NULL);
VACUUM ANALYZE;
SQL
for k in none one many; do
    echo "SELECT smartsync.sync_changed(c) FROM cursors WHERE name = '$k';" > "$tmp/changed_$k.sql"
    echo "SELECT smartsync.sync_pull(p_cursor => c, p_limit => 1) FROM cursors WHERE name = '$k';" > "$tmp/pull_$k.sql"
done
# sanity: what each answers
psql -X -At -d $DB -c "SELECT name, smartsync.sync_changed(c), jsonb_array_length(smartsync.sync_pull(p_cursor => c, p_limit => 1000)->'changes') FROM cursors ORDER BY name" > "$tmp/sanity"
run() { pgbench -n -M prepared -c 1 -j 1 -T "$SECONDS_PER_RUN" -f "$1" $DB 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
declare -A tps ratios
for r in $(seq 1 "$ROUNDS"); do
    for k in none one many; do
        tps[changed.$k.$r]=$(run "$tmp/changed_$k.sql")
        tps[pull.$k.$r]=$(run "$tmp/pull_$k.sql")
        ratios[$k]+="$(awk -v a="${tps[changed.$k.$r]}" -v b="${tps[pull.$k.$r]}" 'BEGIN { printf "%.3f", a / b }') "
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "sync_changed vs sync_pull(p_limit => 1), 100,000-row log, 1 client, $ROUNDS interleaved rounds of ${SECONDS_PER_RUN} s;"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg); answers (cursor|sync_changed|pull delivers): $(tr '\n' ' ' < "$tmp/sanity")"
echo
echo "| new since the cursor | sync_changed (calls/s, median) | pull p_limit=>1 (calls/s, median) | sync_changed / pull per round: min / median / max |"
echo "|---|---|---|---|"
for k in none one many; do
    c=""; p=""
    for r in $(seq 1 "$ROUNDS"); do c+="${tps[changed.$k.$r]} "; p+="${tps[pull.$k.$r]} "; done
    rs=${ratios[$k]}
    printf "| %s | %.0f | %.0f | %.2fx / %.2fx / %.2fx |\n" \
        "$(case $k in none) echo nothing;; one) echo 1 change;; many) echo 1,000 changes;; esac)" \
        "$(echo $c | median)" "$(echo $p | median)" \
        "$(echo $rs | tr ' ' '\n' | sort -g | head -1)" "$(echo $rs | median)" "$(echo $rs | tr ' ' '\n' | sort -g | tail -1)"
done
