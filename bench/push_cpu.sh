#!/bin/bash
# The backend's CPU time per 10-operation push, another commit's library (REV,
# default main: before) against this tree's (after), and per batch of the
# same writes by the PL/pgSQL function of bench/bench_push.sh: one connection
# per run of N batches (each in its own transaction), RUNS runs of each
# interleaved, the CPU time read from /proc/self/stat by the backend itself.
# CPU time, unlike latency, hardly moves with the machine's load.  Runs inside
# a private server of this tree (it swaps the library file between runs):
#   PRIVATE_CONF=$'synchronous_commit = off\nshared_buffers = 512MB' \
#       bash test/private.sh -- bash bench/push_cpu.sh main
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
REV=${1:-main}
N=${N:-300}
RUNS=${RUNS:-4}
PG_CONFIG=${PG_CONFIG:-pg_config}
DB=bench_push_cpu
# the two libraries (REV's and this tree's) and use before|after
. bench/ab_builds.sh
dropdb --if-exists $DB 2>/dev/null
createdb $DB
psql -X -q -v ON_ERROR_STOP=1 -d $DB -f bench/push_setup.sql >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d $DB -c "INSERT INTO bench.layout VALUES ('bp_items', 10, $N, $((3 * RUNS)))" \
    -c "SELECT bench.generate(1, '{}')" -c "VACUUM ANALYZE" >/dev/null
tick=$(getconf CLK_TCK)
cpu="split_part(pg_read_file('/proc/self/stat'), ' ', 14)::bigint + split_part(pg_read_file('/proc/self/stat'), ' ', 15)::bigint"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
slot=0
for r in $(seq 1 "$RUNS"); do
    for v in before after plain; do
        [ $v = plain ] || use $v
        {
            echo "SET smartsync.tenant_id = 'bench_t1'; SET search_path = bench_t1, public; SET smartsync.client_id = 'dev1';"
            echo "SET smartsync.permissions = 'bp_items:*';"
            echo "SELECT smartsync.sync_push(bench.batch('bp_items', 'warm$v$r', 0, 1, 1)) IS NULL \\g /dev/null"
            echo "SELECT $cpu AS t0 \\gset"
            for n in $(seq $((slot * N + 1)) $((slot * N + N))); do
                if [ $v = plain ]; then
                    echo "SELECT bench.plain_batch('bp_items', payload) FROM bench.batches WHERE tbl = 'bp_items' AND size = 10 AND path = 1 AND client = 1 AND n = $n \\g /dev/null"
                else
                    echo "SELECT smartsync.sync_push(payload) ->> 'processed' FROM bench.batches WHERE tbl = 'bp_items' AND size = 10 AND path = 0 AND client = 1 AND n = $n \\g /dev/null"
                fi
            done
            echo "SELECT $cpu - :t0;"
        } > "$tmp/run.sql"
        t=$(psql -X -qAt -v ON_ERROR_STOP=1 -d $DB -f "$tmp/run.sql" | tail -1)
        echo "$v $(awk -v t=$t -v k=$tick -v n=$N 'BEGIN {print t / k * 1e6 / n}')" >> "$tmp/rows"
        slot=$((slot + 1))
    done
done
use after
echo "CPU time of the backend per 10-operation batch (6 columns), $RUNS runs of $N of each, interleaved;"
echo "before: $REV, after: this tree; load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
for v in before after plain; do
    awk -v v=$v '$1 == v {a[++n] = $2} END {
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        printf "%s: %.0f / %.0f / %.0f µs (min / median / max)\n", v == "plain" ? "PL/pgSQL function" : "sync_push " v, a[1], (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2, a[n] }' "$tmp/rows"
done
