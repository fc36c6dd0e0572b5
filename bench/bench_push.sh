#!/bin/bash
# Push throughput: 50-operation mixed batches (60% update, 30% create, 10% delete)
# from 4 concurrent clients, one tenant each, through smartsync.sync_push against
# the same writes as plain INSERT/UPDATE/DELETE statements in one transaction on
# the same tracked tables (PL/pgSQL, cached plans), measured in the same run,
# interleaved.  Then memory: 100 batches of 1,000 operations on one connection.
# Run by bench/run.sh inside a throwaway cluster (PG* set, synchronous_commit=off).
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_push
ROUNDS=${ROUNDS:-5}
BATCHES=${BATCHES:-60}          # per client and round
CLIENTS=4
PER_PATH=$((ROUNDS * BATCHES))
ROWS=$((70 * PER_PATH + 100))
dropdb --if-exists $DB
createdb $DB
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dropdb --if-exists $DB' EXIT
PGOPTIONS="-c bench.rows=$ROWS -c bench.per_path=$PER_PATH" \
    psql -X -q -v ON_ERROR_STOP=1 -d $DB -f bench/push_setup.sql >/dev/null

cat > "$tmp/push.sql" <<'SQL'
\set n :n + 1
\set c :client_id + 1
BEGIN;
SELECT set_config('smartsync.tenant_id', 'bench_t' || :c, true), set_config('smartsync.client_id', 'dev' || :c, true);
SELECT smartsync.sync_push(payload) ->> 'processed' FROM bench.batches WHERE path = 0 AND client = :c AND n = :n;
END;
SQL
cat > "$tmp/plain.sql" <<'SQL'
\set n :n + 1
\set c :client_id + 1
BEGIN;
SELECT set_config('search_path', 'bench_t' || :c, true), set_config('smartsync.client_id', 'dev' || :c, true);
SELECT bench.plain_batch(payload) FROM bench.batches WHERE path = 1 AND client = :c AND n = :n;
END;
SQL

# one pgbench run: "tps latency_ms"
run() { # script, first batch number - 1
    pgbench -n -M prepared -c $CLIENTS -j $CLIENTS -t $BATCHES -D n=$2 -f "$1" $DB 2>/dev/null \
        | awk '/^latency average/ {lat=$4} /^tps = / {tps=$3} END {print tps, lat}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

push_ops=""; plain_ops=""; push_lat=""; plain_lat=""
for r in $(seq 1 "$ROUNDS"); do
    off=$(( (r - 1) * BATCHES ))
    read -r tps lat < <(run "$tmp/push.sql" $off)
    push_ops+="$(awk -v t="$tps" 'BEGIN {print t * 50}') "; push_lat+="$(awk -v l="$lat" 'BEGIN {print l * 1000 / 50}') "
    read -r tps lat < <(run "$tmp/plain.sql" $off)
    plain_ops+="$(awk -v t="$tps" 'BEGIN {print t * 50}') "; plain_lat+="$(awk -v l="$lat" 'BEGIN {print l * 1000 / 50}') "
done

# every pushed operation applied, none failed or conflicted
bad=$(psql -X -qAt -d $DB -c "SELECT sum(n) FROM (SELECT count(*) FILTER (WHERE outcome <> 'applied') AS n FROM bench_t1.sync_ledger
      UNION ALL SELECT count(*) FILTER (WHERE outcome <> 'applied') FROM bench_t2.sync_ledger
      UNION ALL SELECT count(*) FILTER (WHERE outcome <> 'applied') FROM bench_t3.sync_ledger
      UNION ALL SELECT count(*) FILTER (WHERE outcome <> 'applied') FROM bench_t4.sync_ledger) s")
applied=$(psql -X -qAt -d $DB -c "SELECT (SELECT count(*) FROM bench_t1.sync_ledger) + (SELECT count(*) FROM bench_t2.sync_ledger)
      + (SELECT count(*) FROM bench_t3.sync_ledger) + (SELECT count(*) FROM bench_t4.sync_ledger)")
expected=$((ROUNDS * BATCHES * CLIENTS * 50))
if [ "$bad" != "0" ] || [ "$applied" != "$expected" ]; then
    echo "push benchmark: $applied of $expected operations recorded, $bad not applied" >&2
    exit 1
fi

# memory: 100 batches of 1,000 operations on one connection
{
    echo "SET smartsync.tenant_id = 'bench_mem'; SET smartsync.client_id = 'mem'; SET smartsync.batch_size = 1000;"
    for i in $(seq 1 100); do
        echo "SELECT r ->> 'failed' AS failed, (r ->> 'failed')::int > 0 AS bad FROM smartsync.sync_push(bench.big_batch($i)) r \\gset"
        printf '%s\n' "\\if :bad" "\\echo batch $i: :failed failed" "\\endif"
        if [ "$i" = 20 ] || [ "$i" = 60 ] || [ "$i" = 100 ]; then
            echo "SELECT 'mem $i ' || sum(total_bytes) FROM pg_backend_memory_contexts;"
        fi
    done
} > "$tmp/mem.sql"
mem=$(psql -X -qAt -v ON_ERROR_STOP=1 -d $DB -f "$tmp/mem.sql")
m20=$(echo "$mem" | awk '/^mem 20 / {print $3}')
m60=$(echo "$mem" | awk '/^mem 60 / {print $3}')
m100=$(echo "$mem" | awk '/^mem 100 / {print $3}')
if echo "$mem" | grep -q failed; then echo "$mem" >&2; exit 1; fi

m() { echo $1 | tr ' ' '\n' | grep . | median; }
po=$(m "$push_ops"); so=$(m "$plain_ops"); pl=$(m "$push_lat"); sl=$(m "$plain_lat")
echo "sync_push, 50-operation batches (30 updates, 15 creates, 5 deletes), $CLIENTS clients on $CLIENTS tenants,"
echo "synchronous_commit=off, median of $ROUNDS rounds of $BATCHES batches per client"
echo
echo "| workload | operations/s | latency per operation | ratio | target |"
echo "|---|---|---|---|---|"
printf "| plain SQL, one transaction per batch (baseline) | %.0f | %.1f µs | 1.00x | |\n" "$so" "$sl"
printf "| smartsync.sync_push | %.0f | %.1f µs | %s | >= 0.50x |\n" "$po" "$pl" "$(awk -v a="$po" -v b="$so" 'BEGIN { printf "%.2fx", a / b }')"
echo
echo "Memory: 100 batches of 1,000 operations (600 updates, 300 creates, 100 deletes) on one connection;"
printf "backend memory (pg_backend_memory_contexts) %d kB after batch 20, %d kB after batch 60, %d kB after batch 100 (growth %+d kB).\n" \
    "$(( m20 / 1024 ))" "$(( m60 / 1024 ))" "$(( m100 / 1024 ))" "$(( (m100 - m20) / 1024 ))"
