#!/bin/bash
# Conflict resolution: smartsync.resolve_conflict with client-wins, merge (three-way
# against the stored base) and server-wins, one conflict per transaction, each
# against a plain-SQL baseline that does the same writes by hand in the same run:
# client-wins and merge write the row and close the conflict (one UPDATE of the row
# with the client's field, one UPDATE closing the conflict, in a PL/pgSQL
# function); server-wins writes no row, so its baseline only closes the conflict.
# ROUNDS interleaved rounds; each ratio is taken within a round (min / median /
# max).  Then listing over a store of 100,000 open conflicts (and 10,000 resolved
# ones): the first page and a page deep in the store (p_after), and conflict_stats.
# Run by bench/run.sh inside a throwaway cluster, or bash bench/private.sh resolve.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_resolve
ROUNDS=${ROUNDS:-5}
N=${N:-400}                     # resolutions per path and round
PATHS=5                         # client-wins, merge, server-wins, plain write, plain close
OPEN=${OPEN:-100000}            # open conflicts in the store for the listing
ROWS=$((PATHS * ROUNDS * N))
export PGOPTIONS="-c smartsync.tenant_id=bench_res -c smartsync.client_id=desk -c smartsync.permissions=*"   # the request context of every session (a resolution needs the permission of its write)
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
-- server-wins writes no row: its baseline only closes the conflict
CREATE FUNCTION bench_tpl.plain_close(cid bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bench_res.sync_conflicts SET status = 'resolved', strategy = 'server-wins', resolved_at = now()
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
cat > "$tmp/close.sql" <<'SQL'
\set n :n + 1
SELECT bench_tpl.plain_close(:n);
SQL
load() { awk '{printf "%s %s %s", $1, $2, $3}' /proc/loadavg; }
load_before=$(load)

# one pgbench run: resolutions per second
run() { # script, first conflict id - 1
    pgbench -n -M prepared -c 1 -j 1 -t $N -D n=$2 -f "$1" $DB 2>/dev/null | awk '/^tps = / {print $3}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

cw=""; mg=""; sw=""; pl=""; cl=""
for r in $(seq 1 "$ROUNDS"); do
    base=$(( (r - 1) * PATHS * N ))
    cw+="$(run "$tmp/client-wins.sql" $base) "
    mg+="$(run "$tmp/merge.sql" $((base + N))) "
    sw+="$(run "$tmp/server-wins.sql" $((base + 2 * N))) "
    pl+="$(run "$tmp/plain.sql" $((base + 3 * N))) "
    cl+="$(run "$tmp/close.sql" $((base + 4 * N))) "
done

# every conflict resolved, each strategy's rows as expected
check=$(psql -X -qAt -d $DB -c "
    SELECT count(*) FILTER (WHERE c.status <> 'resolved')
         + count(*) FILTER (WHERE c.strategy = 'client-wins' AND n.body <> c.local_data ->> 'body')
         + count(*) FILTER (WHERE c.strategy = 'merge' AND (n.body <> c.local_data ->> 'body' OR n.title NOT LIKE 'server %'))
         + count(*) FILTER (WHERE c.strategy = 'server-wins' AND c.resolved_by IS NOT NULL AND n.version <> 2)
      FROM bench_res.sync_conflicts c JOIN bench_res.res_notes n ON n.id::text = c.entity_id")
if [ "$check" != "0" ]; then
    echo "resolve benchmark: $check conflicts not resolved as expected" >&2
    exit 1
fi

# listing over a store of OPEN open conflicts (plus the resolved ones above)
psql -X -q -v ON_ERROR_STOP=1 -d $DB -v open=$OPEN >/dev/null <<'SQL'
INSERT INTO bench_res.sync_conflicts (entity_type, entity_id, operation, conflict_type, severity, affected_fields,
       local_data, server_data, base_data, base_version, server_version, created_at)
SELECT c.entity_type, c.entity_id, c.operation, c.conflict_type,
       (ARRAY['low', 'medium', 'high', 'critical'])[1 + g % 4], c.affected_fields, c.local_data, c.server_data,
       c.base_data, c.base_version, c.server_version, now() - interval '1 day' + g * interval '1 ms'
  FROM bench_res.sync_conflicts c, generate_series(1, :open) g
 WHERE c.conflict_id = 1;
VACUUM ANALYZE bench_res.sync_conflicts;
SQL
deep=$(psql -X -qAt -d $DB -c "SELECT conflict_id FROM bench_res.sync_conflicts WHERE status = 'open'
                                ORDER BY created_at, conflict_id OFFSET $((OPEN - 200)) LIMIT 1")
open_count=$(psql -X -qAt -d $DB -c "SELECT smartsync.conflict_stats() ->> 'open'")
cat > "$tmp/list.sql" <<'SQL'
SELECT jsonb_array_length(smartsync.list_conflicts() -> 'conflicts');
SQL
cat > "$tmp/deep.sql" <<SQL
SELECT jsonb_array_length(smartsync.list_conflicts(p_after => $deep) -> 'conflicts');
SQL
cat > "$tmp/stats.sql" <<'SQL'
SELECT smartsync.conflict_stats() -> 'open';
SQL
lt=""; dt=""; st=""
lat() { pgbench -n -M prepared -c 1 -t 50 -f "$1" $DB 2>/dev/null | awk '/^latency average/ {print $4}'; }
for r in $(seq 1 "$ROUNDS"); do
    lt+="$(lat "$tmp/list.sql") "; dt+="$(lat "$tmp/deep.sql") "; st+="$(lat "$tmp/stats.sql") "
done
load_after=$(load)

m() { echo $1 | tr ' ' '\n' | grep . | median; }
ratios() { # per-round ratios a/b: min / median / max
    paste <(echo $1 | tr ' ' '\n' | grep .) <(echo $2 | tr ' ' '\n' | grep .) \
        | awk '{print $1 / $2}' | sort -g \
        | awk '{a[NR]=$1} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.2f / %.2f / %.2f", a[1], m, a[NR]}'
}
mm() { m "$1" | awk '{printf "%.2f", $1}'; }
row() { # label, list, baseline list
    local t; t=$(m "$2")
    printf "| %s | %.0f | %.0f µs | %s |\n" "$1" "$t" "$(awk -v t="$t" 'BEGIN {print 1e6 / t}')" "$3"
}
echo "resolve_conflict, one conflict per transaction, one client, synchronous_commit=off, $ROUNDS interleaved rounds"
echo "of $N resolutions per path; ratios per round, min / median / max; load average $load_before before, $load_after after"
echo
echo "| workload | resolutions/s (median) | latency | ratio to its baseline |"
echo "|---|---|---|---|"
row "plain SQL: UPDATE row + UPDATE conflict (baseline of client-wins and merge)" "$pl" "1.00"
row "resolve_conflict client-wins" "$cw" "**$(ratios "$cw" "$pl")**"
row "resolve_conflict merge (three-way)" "$mg" "**$(ratios "$mg" "$pl")**"
row "plain SQL: UPDATE conflict only (baseline of server-wins)" "$cl" "1.00"
row "resolve_conflict server-wins (no row written)" "$sw" "**$(ratios "$sw" "$cl")**"
echo
echo "Listing a store of $open_count open conflicts (median latency of $ROUNDS rounds of 50 calls):"
echo
echo "| call | ms | target |"
echo "|---|---|---|"
echo "| list_conflicts() (first page of 100, total from the kept counts) | $(mm "$lt") | a page costs what it holds |"
echo "| list_conflicts(p_after => a conflict 200 from the end) | $(mm "$dt") | a page costs what it holds |"
echo "| conflict_stats() | $(mm "$st") | < 5 ms |"
