#!/bin/bash
# The floor under any change capture that writes its log in the writer's
# transaction: single-row UPDATEs of the 20-column row (bench/capture_setup.sql)
# against the same UPDATE that also inserts the smallest log row there is, by
# plain SQL in the same statement (no trigger, no JSON, no smartsync code):
#   untracked  UPDATE ... SET qty = qty + 1, status = ... WHERE id = :id
#   floor1     the UPDATE, also setting version and updated_at in its SET list
#              (no BEFORE trigger), with bench/capture_floor.c's AFTER row
#              trigger: a 16-byte log row (seq from a sequence, the row's id)
#              by heap_insert and its primary key entry by index_insert; no
#              JSON, no SPI, no executor, no image of the row
#   floor2     floor1 with a second index on the log, (entity, seq): one
#              entity's history, which the merge's base and tombstones need
#   tracked    smartsync's capture (stamp_row BEFORE trigger, the C capture
#              trigger, the changed columns as JSON, the log's two indexes)
# The same four for one UPDATE of 10,000 rows (each client its own 10,000,
# BULK_TX statements per client per round; the floors' entity keys are the
# rows' ids, in order: the cheapest case for an entity index).
# pgbench -M prepared -c2 -j2, ROUNDS interleaved rounds of SECONDS_PER_RUN s,
# ratios per round against untracked, min / median / max. Run inside a cluster
# (PG* set), for example:
#   PRIVATE_CONF="synchronous_commit = off" bash test/private.sh -- bash bench/capture_floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_capture_floor
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
BULK_TX=${BULK_TX:-3}
tmp=$(mktemp -d)
chmod 755 "$tmp"   # the server (another user) loads the module from here
trap 'rm -rf "$tmp"; dropdb --if-exists $DB 2>/dev/null' EXIT
gcc -O2 -Wall -Wextra -Werror -Wno-unused-parameter -fPIC -shared -I"$(pg_config --includedir-server)" \
    -o "$tmp/capture_floor.so" bench/capture_floor.c
load() { awk '{printf "%s %s %s", $1, $2, $3}' /proc/loadavg; }
dropdb --if-exists $DB 2>/dev/null
createdb $DB
psql -X -q -v ON_ERROR_STOP=1 -d $DB -f bench/capture_setup.sql >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d $DB -v so="$tmp/capture_floor.so" >/dev/null <<'SQL'
CREATE FUNCTION public.floor_log() RETURNS trigger LANGUAGE c AS :'so', 'floor_log';
CREATE SCHEMA floor1;
CREATE TABLE floor1.records (LIKE bench_tpl.records INCLUDING ALL);
CREATE TABLE floor1.log (seq bigint PRIMARY KEY, entity bigint NOT NULL);
CREATE SEQUENCE floor1.log_seq;
INSERT INTO floor1.records SELECT * FROM untracked.records;
CREATE SCHEMA floor2;
CREATE TABLE floor2.records (LIKE bench_tpl.records INCLUDING ALL);
CREATE TABLE floor2.log (seq bigint PRIMARY KEY, entity bigint NOT NULL);
CREATE INDEX ON floor2.log (entity, seq);
CREATE SEQUENCE floor2.log_seq;
INSERT INTO floor2.records SELECT * FROM untracked.records;
DO $$
DECLARE s text;
BEGIN
    FOREACH s IN ARRAY ARRAY['floor1', 'floor2'] LOOP
        EXECUTE format('CREATE TRIGGER log AFTER INSERT OR UPDATE ON %I.records FOR EACH ROW EXECUTE FUNCTION public.floor_log(%L, %L)',
                       s, format('%I.log', s)::regclass::oid, format('%I.log_seq', s)::regclass::oid);
    END LOOP;
END $$;
VACUUM ANALYZE;
SQL
load_before=$(load)
cat > "$tmp/untracked.sql" <<'SQL'
\set id random(1, 20000)
UPDATE untracked.records SET qty = qty + 1, status = 'checked-in' WHERE id = :id;
SQL
for f in floor1 floor2; do
    cat > "$tmp/$f.sql" <<SQL
\set id random(1, 20000)
UPDATE $f.records SET qty = qty + 1, status = 'checked-in', version = version + 1, updated_at = now() WHERE id = :id;
SQL
done
cat > "$tmp/tracked.sql" <<'SQL'
\set id random(1, 20000)
UPDATE tracked.records SET qty = qty + 1, status = 'checked-in' WHERE id = :id;
SQL
stamp() { [ "${1#floor}" = "$1" ] || echo ", version = version + 1, updated_at = now()"; }
for v in untracked floor1 floor2 tracked; do
    cat > "$tmp/bulk_$v.sql" <<SQL
UPDATE $v.records SET qty = qty + 1$(stamp $v) WHERE id > :client_id * 10000 AND id <= (:client_id + 1) * 10000;
SQL
done
variants="untracked floor1 floor2 tracked"
declare -A tps
for r in $(seq 1 "$ROUNDS"); do
    for v in $variants; do
        tps[$v]+="$(pgbench -n -M prepared -c 2 -j 2 -T "$SECONDS_PER_RUN" -f "$tmp/$v.sql" $DB 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p') "
    done
    for v in $variants; do
        tps[bulk_$v]+="$(pgbench -n -M prepared -c 2 -j 2 -t "$BULK_TX" -f "$tmp/bulk_$v.sql" $DB 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p') "
        psql -X -q -d $DB -c "VACUUM $v.records" >/dev/null
    done
    psql -X -q -d $DB -c "VACUUM" >/dev/null
    [ "$r" -gt 1 ] || psql -X -qAt -d $DB -c "SELECT 'log rows: floor1 ' || (SELECT count(*) FROM floor1.log) || ', floor2 ' || (SELECT count(*) FROM floor2.log)" >&2
    echo "round $r done (load average $(load))" >&2
done
ratios() {
    paste <(echo $1 | tr ' ' '\n' | grep .) <(echo $2 | tr ' ' '\n' | grep .) \
        | awk '{print $1 / $2}' | sort -g \
        | awk '{a[NR]=$1} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.2f / %.2f / %.2f", a[1], m, a[NR]}'
}
median() { echo $1 | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {printf "%.1f", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "Single-row UPDATE of a 20-column row, and one UPDATE of 10,000 such rows per client ($BULK_TX per client per round), pgbench -M prepared -c2 -j2, $ROUNDS interleaved rounds of $SECONDS_PER_RUN s;"
echo "load average $load_before before, $(load) after"
echo
echo "| variant | single-row: tx/s (median) | / untracked: min / median / max | 10,000 rows: statements/s (median) | / untracked: min / median / max |"
echo "|---|---|---|---|---|"
for v in $variants; do
    echo "| $v | $(median "${tps[$v]}") | $(ratios "${tps[$v]}" "${tps[untracked]}") | $(median "${tps[bulk_$v]}") | $(ratios "${tps[bulk_$v]}" "${tps[bulk_untracked]}") |"
done
