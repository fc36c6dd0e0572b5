#!/bin/bash
# Pull cost: delivering the same 1,000 changes (1,000 updated rows, ~300 bytes
# each) from a tenant change log of 10,000 rows and, after the log has grown,
# of 1,000,000 rows (same tenant, same run); the 10,000-row case is the
# baseline.  Also the backend's peak memory for a 10,000-change page.
# Run by bench/run.sh inside a throwaway cluster (PG* set).
#   pg_virtualenv bash bench/bench_pull.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_pull
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
BIG=${BIG:-1000000}
dropdb --if-exists $DB 2>/dev/null
createdb $DB
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dropdb --if-exists $DB 2>/dev/null' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $DB "$@"; }
q -f bench/pull_setup.sql >/dev/null
export PGOPTIONS="-c smartsync.tenant_id=bench"

# log of 10,000 rows: 9,000 rows created, a cursor, 1,000 of them updated
q -c "CALL bench_mark('start')"
q -c "INSERT INTO tenant_bench.bench_items (id, practice_id, name, species, qty, notes)
      SELECT g, 1, 'pet ' || g, 'dog', g % 50, 'seen for a yearly checkup, all fine, next visit in a year'
        FROM generate_series(1, 9000) g"
q -c "CALL bench_mark('small')"
q -c "UPDATE tenant_bench.bench_items SET qty = qty + 1, status = 'checked-in' WHERE id <= 1000"
small_rows=$(q -c "SELECT count(*) FROM tenant_bench.sync_changes")

pull_script() { # cursor name, limit -> pgbench script
    local c; c=$(q -c "SELECT cursor FROM bench_cursor WHERE name = '$1'")
    echo "SELECT jsonb_array_length(smartsync.sync_pull(p_cursor => '$c', p_limit => $2)->'changes');"
}
raw_script() { # the same 1,000 log rows read as one jsonb array by plain SQL (no cursor, no dedup)
    echo "SELECT jsonb_array_length(jsonb_agg(jsonb_build_object('entityType', entity_type, 'operation', operation, 'id', data->'id', 'data', data, 'updatedAt', changed_at, 'version', version))) FROM (SELECT * FROM tenant_bench.sync_changes ORDER BY xid DESC, seq DESC LIMIT 1000) s;"
}
delivered() { psql -X -At -v ON_ERROR_STOP=1 -d $DB -f "$1"; }
run() { pgbench -n -c 1 -j 1 -T "$SECONDS_PER_RUN" -f "$1" $DB 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
pull_script small 1000 > "$tmp/small.sql"
raw_script > "$tmp/raw.sql"
n_small=$(delivered "$tmp/small.sql")
pull_script start 10000 > "$tmp/page_small.sql"

# grow the same tenant's log to BIG rows, then the same kind of 1,000 changes
q -c "CALL bench_fill($((BIG - small_rows - 10000)), 10000)"
q -c "CALL bench_mark('big10k')"
q -c "CALL bench_fill(9000, 9000)"
q -c "CALL bench_mark('big')"
q -c "UPDATE tenant_bench.bench_items SET qty = qty + 1, status = 'checked-out' WHERE id <= 1000"
q -c "VACUUM ANALYZE tenant_bench.sync_changes"
big_rows=$(q -c "SELECT count(*) FROM tenant_bench.sync_changes")
pull_script big 1000 > "$tmp/big.sql"
n_big=$(delivered "$tmp/big.sql")
pull_script big10k 10000 > "$tmp/page_big.sql"

# peak memory of one backend for one 10,000-change page (VmHWM from /proc)
mem() { # script -> peak private memory (MB) of a fresh backend that ran it:
       # VmHWM less the shared memory it mapped (RssShmem), from /proc
    psql -X -At -d $DB -f "$1" -c "SELECT (regexp_match(s, 'VmHWM:\s+(\d+)'))[1]::int - (regexp_match(s, 'RssShmem:\s+(\d+)'))[1]::int FROM pg_read_file('/proc/' || pg_backend_pid() || '/status') s" 2>/dev/null \
        | tail -1 | awk '{ if ($1 ~ /^-?[0-9]+$/) printf "%.1f", $1 / 1024; else print "n/a" }'
}
n_page_small=$(delivered "$tmp/page_small.sql"); n_page_big=$(delivered "$tmp/page_big.sql")
echo "SELECT 1;" > "$tmp/nothing.sql"
m_base=$(mem "$tmp/nothing.sql"); m_small=$(mem "$tmp/page_small.sql"); m_big=$(mem "$tmp/page_big.sql")

declare -A tps
for r in $(seq 1 "$ROUNDS"); do   # interleaved, so drift hits all alike
    for s in small big raw; do
        tps[$s]+="$(run "$tmp/$s.sql") "
    done
done
m() { echo $1 | tr ' ' '\n' | grep . | median; }
ts=$(m "${tps[small]}"); tb=$(m "${tps[big]}"); tr=$(m "${tps[raw]}")

echo "Pull: 1,000 updated rows (~300 bytes of JSON each) delivered by sync_pull(p_cursor, p_limit => 1000), 1 client, median of $ROUNDS runs of ${SECONDS_PER_RUN}s"
echo
echo "| case | log rows | changes delivered | ms per pull | changes/s | vs 10,000-row log | target |"
echo "|---|---|---|---|---|---|---|"
awk -v t="$ts" -v n="$n_small" -v rows="$small_rows" 'BEGIN { printf "| 10,000-row log (baseline) | %d | %d | %.2f | %.0f | 1.00x | >= 50,000 changes/s |\n", rows, n, 1000 / t, t * n }'
awk -v t="$tb" -v b="$ts" -v n="$n_big" -v rows="$big_rows" 'BEGIN { printf "| 1,000,000-row log | %d | %d | %.2f | %.0f | %.2fx time | <= 1.20x |\n", rows, n, 1000 / t, t * n, b / t }'
awk -v t="$tr" -v b="$ts" -v rows="$big_rows" 'BEGIN { printf "| reference: plain SQL read of the last 1,000 log rows as JSON | %d | 1000 | %.2f | %.0f | %.2fx time | - |\n", rows, 1000 / t, t * 1000, b / t }'
echo
echo "| 10,000-change page | changes delivered | backend peak private memory (VmHWM - RssShmem) |"
echo "|---|---|---|"
echo "| idle backend (SELECT 1) | - | ${m_base} MB |"
echo "| from the 10,000-row log | $n_page_small | ${m_small} MB |"
echo "| from the 1,000,000-row log | $n_page_big | ${m_big} MB |"
