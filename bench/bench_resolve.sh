#!/bin/bash
# Conflict resolution: smartsync.resolve_conflict with client-wins, merge (three-way
# against the stored base) and server-wins, one conflict per transaction, against a
# plain-SQL baseline doing the bare minimum by hand in the same run (one UPDATE of the
# row with the client's field, one UPDATE closing the conflict, in a PL/pgSQL
# function), interleaved round by round.  Then listing: list_conflicts of 100 open
# conflicts, and conflict_stats, over a store of 10,000 conflicts.
# Run by bench/run.sh inside a throwaway cluster (PG* set, synchronous_commit=off).
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_resolve
ROUNDS=${ROUNDS:-5}
N=${N:-400}                     # resolutions per path and round
PATHS=4                         # client-wins, merge, server-wins, plain SQL
ROWS=$((PATHS * ROUNDS * N))
export PGOPTIONS="-c smartsync.tenant_id=bench_res -c smartsync.client_id=desk"   # the request context of every session
dropdb --if-exists $DB
createdb $DB
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dropdb --if-exists $DB' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d $DB -v rows=$ROWS >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION smartsync;
CREATE SCHEMA bench_tpl;
CREATE TABLE bench_tpl.res_notes (id bigint PRIMARY KEY, title text NOT NULL, body text, tag text);
SELECT smartsync.register_entity_type('res_notes', 'bench_tpl.res_notes');
SELECT smartsync.provision_tenant('bench_res', 'bench_res');
SET smartsync.tenant_id = 'bench_res';
SET smartsync.client_id = 'server';
-- every row at version 1, then changed on the server (version 2)
INSERT INTO bench_res.res_notes SELECT i, 'title ' || i, 'body ' || i, 'x' FROM generate_series(1, :rows) i;
UPDATE bench_res.res_notes SET title = 'server ' || title;
-- one conflict per row, as push stores it: the client changed the body at version 1
INSERT INTO bench_res.sync_conflicts (entity_type, entity_id, operation, operation_id, client_id, conflict_type,
       severity, affected_fields, local_data, server_data, base_data, base_version, server_version)
SELECT 'res_notes', n.id::text, 'update', n.id::text, 'tablet', 'version', 'medium', '{body}',
       jsonb_build_object('body', 'tablet body ' || n.id), to_jsonb(n), c.data, 1, 2
  FROM bench_res.res_notes n
  JOIN bench_res.sync_changes c ON c.entity_id = n.id::text AND c.version = 1
 ORDER BY n.id;
CREATE FUNCTION bench_tpl.plain_resolve(cid bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bench_res.res_notes n SET body = c.local_data ->> 'body'
      FROM bench_res.sync_conflicts c WHERE c.conflict_id = cid AND n.id = c.entity_id::bigint;
    UPDATE bench_res.sync_conflicts SET status = 'resolved', strategy = 'client-wins', resolved_at = now()
     WHERE conflict_id = cid;
END $$;
ANALYZE;
SQL

for s in client-wins merge server-wins; do
    cat > "$tmp/$s.sql" <<SQL
\set n :n + 1
SELECT smartsync.resolve_conflict(:n, '$s') ->> 'status';
SQL
done
cat > "$tmp/plain.sql" <<'SQL'
\set n :n + 1
SELECT bench_tpl.plain_resolve(:n);
SQL

# one pgbench run: resolutions per second
run() { # script, first conflict id - 1
    pgbench -n -M prepared -c 1 -j 1 -t $N -D n=$2 -f "$1" $DB 2>/dev/null | awk '/^tps = / {print $3}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

cw=""; mg=""; sw=""; pl=""
for r in $(seq 1 "$ROUNDS"); do
    base=$(( (r - 1) * PATHS * N ))
    cw+="$(run "$tmp/client-wins.sql" $base) "
    mg+="$(run "$tmp/merge.sql" $((base + N))) "
    sw+="$(run "$tmp/server-wins.sql" $((base + 2 * N))) "
    pl+="$(run "$tmp/plain.sql" $((base + 3 * N))) "
done

# every conflict resolved, each strategy's rows as expected
check=$(psql -X -qAt -d $DB -c "
    SELECT count(*) FILTER (WHERE c.status <> 'resolved')
         + count(*) FILTER (WHERE c.strategy = 'client-wins' AND n.body <> c.local_data ->> 'body')
         + count(*) FILTER (WHERE c.strategy = 'merge' AND (n.body <> c.local_data ->> 'body' OR n.title NOT LIKE 'server %'))
         + count(*) FILTER (WHERE c.strategy = 'server-wins' AND n.version <> 2)
      FROM bench_res.sync_conflicts c JOIN bench_res.res_notes n ON n.id::text = c.entity_id")
if [ "$check" != "0" ]; then
    echo "resolve benchmark: $check conflicts not resolved as expected" >&2
    exit 1
fi

# listing over a store of 10,000 conflicts, 100 of them open
psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
INSERT INTO bench_res.sync_conflicts (entity_type, entity_id, operation, conflict_type, severity, affected_fields,
       local_data, server_data, base_data, base_version, server_version, status)
SELECT entity_type, entity_id, operation, conflict_type, severity, affected_fields, local_data, server_data,
       base_data, base_version, server_version, CASE WHEN g <= 100 THEN 'open' ELSE 'resolved' END
  FROM bench_res.sync_conflicts c, generate_series(1, 10000 - (SELECT count(*) FROM bench_res.sync_conflicts)) g
 WHERE c.conflict_id = 1;
ANALYZE bench_res.sync_conflicts;
SQL
cat > "$tmp/list.sql" <<'SQL'
SELECT jsonb_array_length(smartsync.list_conflicts() -> 'conflicts');
SQL
cat > "$tmp/stats.sql" <<'SQL'
SELECT smartsync.conflict_stats() -> 'open';
SQL
lt=""; st=""
for r in $(seq 1 "$ROUNDS"); do
    lt+="$(pgbench -n -M prepared -c 1 -t 50 -f "$tmp/list.sql" $DB 2>/dev/null | awk '/^latency average/ {print $4}') "
    st+="$(pgbench -n -M prepared -c 1 -t 50 -f "$tmp/stats.sql" $DB 2>/dev/null | awk '/^latency average/ {print $4}') "
done

m() { echo $1 | tr ' ' '\n' | grep . | median; }
c=$(m "$cw"); g=$(m "$mg"); s=$(m "$sw"); p=$(m "$pl")
ratio() { awk -v a="$1" -v b="$p" 'BEGIN { printf "%.2fx", a / b }'; }
echo "resolve_conflict, one conflict per transaction, one client, synchronous_commit=off,"
echo "median of $ROUNDS rounds of $N resolutions per path"
echo
echo "| workload | resolutions/s | latency | ratio |"
echo "|---|---|---|---|"
printf "| plain SQL: UPDATE row + UPDATE conflict (baseline) | %.0f | %.0f µs | 1.00x |\n" "$p" "$(awk -v t="$p" 'BEGIN {print 1e6 / t}')"
printf "| resolve_conflict client-wins | %.0f | %.0f µs | %s |\n" "$c" "$(awk -v t="$c" 'BEGIN {print 1e6 / t}')" "$(ratio "$c")"
printf "| resolve_conflict merge (three-way) | %.0f | %.0f µs | %s |\n" "$g" "$(awk -v t="$g" 'BEGIN {print 1e6 / t}')" "$(ratio "$g")"
printf "| resolve_conflict server-wins (no write) | %.0f | %.0f µs | %s |\n" "$s" "$(awk -v t="$s" 'BEGIN {print 1e6 / t}')" "$(ratio "$s")"
echo
printf "Listing over a store of 10,000 conflicts (100 open): list_conflicts() %.2f ms, conflict_stats() %.2f ms (median latency).\n" \
    "$(m "$lt")" "$(m "$st")"
