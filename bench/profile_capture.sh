#!/bin/bash
# CPU profiles of change capture (bench/bench_capture.sh's workloads) with perf:
# cpu-clock samples with frame-pointer call graphs of the two pgbench backends,
# for the single-row UPDATE of the 20-column row and the 10,000-row UPDATE, each
# on the tracked table and on the untracked one.  Writes OUTDIR/<workload>.txt:
# the share of the backends' samples in stacks through each step of capture,
# and that share of a transaction's backend wall time at the measured rate (2
# backends / tps: on a loaded machine more than their CPU time), then the
# functions with the most time including their callees, and without.
# Run against a server of this machine whose binaries stay in place while it
# runs, e.g.  bash test/private.sh -- bash bench/profile_capture.sh /tmp/profile
# (perf must be installed; it needs no hardware counters).  Settings: SECS (12).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
out=${1:-/tmp/capture_profile}
SECS=${SECS:-12}
DB=bench_capture_profile
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dropdb --if-exists $DB 2>/dev/null' EXIT
dropdb --if-exists $DB 2>/dev/null
createdb $DB
psql -X -q -v ON_ERROR_STOP=1 -d $DB -f bench/capture_setup.sql >/dev/null
for s in untracked tracked; do
    cat > "$tmp/single_$s.sql" <<SQL
\set id random(1, 20000)
UPDATE $s.records SET qty = qty + 1, status = 'checked-in' WHERE id = :id;
SQL
    cat > "$tmp/bulk_$s.sql" <<SQL
UPDATE $s.records SET qty = qty + 1 WHERE id > :client_id * 10000 AND id <= (:client_id + 1) * 10000;
SQL
done

# the steps the summary follows (a|b: either; a>b: b in stacks through a)
SUMMARY="AfterTriggerEndQuery smartsync_capture smartsync_capture>writer_flush smartsync_capture>btinsert \
smartsync_capture>hashinsert smartsync_capture>heap_insert|heap_multi_insert smartsync_capture>writer_add \
smartsync_capture>nextval_internal smartsync_capture>write_row \
smartsync_capture>index_open|table_open ExecBRUpdateTriggers|ExecBRUpdateTriggersNew heap_lock_tuple \
smartsync_stamp_row ExecARUpdateTriggers tuplestore_puttupleslot heap_update ExecInsertIndexTuples \
standard_ExecutorStart CommitTransactionCommand XLogInsert"
report() { # name, microseconds of backend time per transaction: writes the report of $tmp/$name.data
    perf script -i "$tmp/$1.data" -F ip,sym 2>/dev/null | awk '
        /^[ \t]*$/ { if (n) { s = f[n]; for (i = n - 1; i >= 1; i--) s = s ";" f[i]; c[s]++ } n = 0; next }
        { sub(/^[ \t]*[0-9a-f]+ /, ""); sub(/ \(inlined\)$/, ""); sub(/\+0x[0-9a-f]+$/, ""); f[++n] = $0 }
        END { for (s in c) print s, c[s] }' > "$out/$1.folded"
    {
        echo "## $1: share of the backends' samples in stacks through each step, and us of a transaction's $2 us"
        awk -v list="$SUMMARY" -v us="$2" '
            BEGIN { n = split(list, fn, " ") }
            { c = $NF; total += c; st = ";" $1 ";"
              for (i = 1; i <= n; i++) {
                  outer = ""; inner = fn[i]
                  if (index(fn[i], ">")) { split(fn[i], pr, ">"); outer = pr[1]; inner = pr[2] }
                  from = 1
                  if (outer != "") { from = index(st, ";" outer ";"); if (!from) continue }
                  rest = substr(st, from)
                  split(inner, alt, "|"); hit = 0
                  for (a in alt) if (index(rest, ";" alt[a] ";")) hit = 1
                  if (hit) in_[i] += c } }
            END { for (i = 1; i <= n; i++) printf "%6.1f%%  %6.1f us  %s\n", 100 * in_[i] / total, us * in_[i] / total, fn[i]
                  printf "%d samples\n", total }' "$out/$1.folded"
        echo
        echo "## $1: functions by time including callees (children)"
        perf report -i "$tmp/$1.data" --children --stdio -g none --percent-limit 2 2>/dev/null | grep -v '^$' | grep -v '0x0000'
        echo
        echo "## $1: functions by own time (self)"
        perf report -i "$tmp/$1.data" --no-children --stdio -g none --percent-limit 0.7 2>/dev/null | grep -v '^$'
    } > "$out/$1.txt"
}

# pgbench with 2 clients; the backends are recorded in the middle of the run
for w in single_tracked single_untracked bulk_tracked bulk_untracked; do
    pgbench -n -M prepared -c 2 -j 2 -T "$SECS" -f "$tmp/$w.sql" $DB >"$tmp/$w.pgbench" 2>&1 &
    bench=$!
    sleep 2
    pids=$(psql -X -qAt -d $DB -c "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench'")
    perf record -q -F 999 -g -p "$pids" -o "$tmp/$w.data" -- sleep $((SECS - 4)) >/dev/null 2>&1 || true
    wait $bench
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$tmp/$w.pgbench")
    # backend time per transaction: 2 backends busy for 1/tps each
    report "$w" "$(awk -v t="$tps" 'BEGIN { printf "%.1f", 2e6 / t }')"
    grep -E '^(tps|latency average)' "$tmp/$w.pgbench" >> "$out/$w.txt"
    psql -X -q -d $DB -c "VACUUM ${w#*_}.records" >/dev/null
done
echo "profiles in $out (load $(cut -d' ' -f1-3 /proc/loadavg))"
for w in single_tracked bulk_tracked; do echo; sed -n '1,/ samples$/p' "$out/$w.txt"; done
