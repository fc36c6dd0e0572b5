#!/bin/bash
# CPU profiles of sync_push and of its PL/pgSQL baseline (bench/bench_push.sh's
# workloads) with perf: cpu-clock samples with DWARF call graphs of the
# backends, for 1- and 10-operation pushes from 2 clients and one push of
# 100,000 operations.  Writes OUTDIR/<workload>.txt: the functions with the most
# time including their callees (perf report --children), and without.
# Run against a server of this machine whose binaries stay in place while it
# runs, e.g.  bash test/private.sh -- bash bench/profile_push.sh /tmp/profile
# (perf must be installed; it needs no hardware counters).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
out=${1:-/tmp/push_profile}
SECS=${SECS:-20}
BIG=${BIG:-100000}
DB=bench_push_profile
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dropdb --if-exists $DB 2>/dev/null' EXIT
dropdb --if-exists $DB 2>/dev/null
createdb $DB
psql -X -q -v ON_ERROR_STOP=1 -d $DB -f bench/push_setup.sql >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null <<SQL
INSERT INTO bench.layout VALUES ('bp_items', 1, 25000, 1), ('bp_items', 10, 4000, 1), ('bp_items', $BIG, 1, 1);
SELECT bench.generate(2, '{}');
VACUUM ANALYZE;
SQL
export PGOPTIONS="-c smartsync.max_batch_size=$BIG -c smartsync.batch_size=$BIG -c smartsync.max_payload_size=256MB"
for path in 0 1; do
    if [ $path = 0 ]; then call="smartsync.sync_push(payload) ->> 'processed'"; ctx="set_config('smartsync.tenant_id', 'bench_t' || :c, true)";
    else call="bench.plain_batch(:tbl, payload)"; ctx="set_config('search_path', 'bench_t' || :c, true)"; fi
    cat > "$tmp/path$path.sql" <<SQL
\set n :n + 1
\set c :client_id + 1
BEGIN;
SELECT $ctx, set_config('smartsync.client_id', 'dev' || :c, true),
       set_config('smartsync.permissions', 'bp_items:*', true);
SELECT $call FROM bench.batches WHERE tbl = :tbl AND size = :s AND path = $path AND client = :c AND n = :n;
END;
SQL
done

# the functions the summary follows (a|b: either)
SUMMARY="smartsync_sync_push plpgsql_call_handler sync_context_read sync_tenant_schema load_entities validate_op \
push_ledger_lock push_ledger_load push_idmap_prefetch push_apply_op|push_apply_run push_ledger_record push_idmap_record \
build_response smartsync_capture|smartsync_stamp_row jsonb_populate_record pg_plan_queries raw_parser parse_analyze_fixedparams|parse_analyze_varparams \
GetCachedPlan standard_ExecutorStart BeginInternalSubTransaction ReleaseCurrentSubTransaction|RollbackAndReleaseCurrentSubTransaction \
CommitTransactionCommand secure_read|secure_write pushJsonbValue JsonbValueToJsonb malloc|free|_int_malloc|_int_free"
report() { # name: writes the report of $tmp/$name.data, and its stacks folded (one line a stack)
    perf script -i "$tmp/$1.data" -F ip,sym 2>/dev/null | awk '
        /^[ \t]*$/ { if (n) { s = f[n]; for (i = n - 1; i >= 1; i--) s = s ";" f[i]; c[s]++ } n = 0; next }
        { sub(/^[ \t]*[0-9a-f]+ /, ""); sub(/ \(inlined\)$/, ""); f[++n] = $0 }
        END { for (s in c) print s, c[s] }' > "$out/$1.folded"
    {
        echo "## $1: share of the backend's samples in stacks through each function"
        awk -v list="$SUMMARY" '
            BEGIN { n = split(list, fn, " ") }
            { c = $NF; total += c; st = ";" $1 ";"
              for (i = 1; i <= n; i++) { split(fn[i], alt, "|"); hit = 0
                  for (a in alt) if (index(st, ";" alt[a] ";")) hit = 1
                  if (hit) in_[i] += c } }
            END { for (i = 1; i <= n; i++) printf "%6.1f%%  %s\n", 100 * in_[i] / total, fn[i]
                  printf "%d samples\n", total }' "$out/$1.folded"
        echo
        echo "## $1: functions by time including callees (children)"
        perf report -i "$tmp/$1.data" --children --stdio -g none --percent-limit 1.5 2>/dev/null | grep -v '^$'
        echo
        echo "## $1: functions by own time (self)"
        perf report -i "$tmp/$1.data" --no-children --stdio -g none --percent-limit 0.7 2>/dev/null | grep -v '^$'
    } > "$out/$1.txt"
}

# pgbench for SECS seconds with 2 clients; the backends are recorded in the middle
for w in "push 1 0" "plain 1 1" "push 10 0" "plain 10 1"; do
    set -- $w
    name="$1_$2"
    pgbench -n -M prepared -c 2 -j 2 -T "$SECS" -D tbl=bp_items -D s=$2 -D n=0 -f "$tmp/path$3.sql" $DB >"$tmp/$name.pgbench" 2>&1 &
    bench=$!
    sleep 2
    pids=$(psql -X -qAt -d $DB -c "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench'")
    perf record -q -F 499 --call-graph dwarf,16384 -p "$pids" -o "$tmp/$name.data" -- sleep $((SECS - 4)) >/dev/null 2>&1
    wait $bench
    report "$name"
    grep -E '^(tps|latency average)' "$tmp/$name.pgbench" >> "$out/$name.txt"
done

# one push of BIG operations, recorded whole
for path in 0 1; do
    name=$([ $path = 0 ] && echo push || echo plain)_$BIG
    PGAPPNAME=profile_big psql -X -qAt -d $DB -c "SELECT pg_sleep(1)" \
        -c "SELECT set_config('smartsync.tenant_id', 'bench_t1', false), set_config('search_path', 'bench_t1', false), set_config('smartsync.client_id', 'dev1', false), set_config('smartsync.permissions', 'bp_items:*', false)" \
        -c "SELECT $([ $path = 0 ] && echo "smartsync.sync_push(payload) ->> 'processed'" || echo "bench.plain_batch('bp_items', payload)") FROM bench.batches WHERE tbl = 'bp_items' AND size = $BIG AND path = $path AND client = 1 AND n = 1" \
        >/dev/null &
    one=$!
    sleep 0.5
    pid=$(psql -X -qAt -d $DB -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'profile_big'")
    perf record -q -F 499 --call-graph dwarf,16384 -p "$pid" -o "$tmp/$name.data" >/dev/null 2>&1 &
    rec=$!
    wait $one
    kill -INT $rec; wait $rec || true
    report "$name"
done
echo "profiles in $out"
