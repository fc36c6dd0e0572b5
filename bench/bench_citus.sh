#!/bin/bash
# smartsync on Citus (README "Scaling out"): push and pull through the
# coordinator against the same tenant on a single PostgreSQL node, and two
# tenants pushing at once on one worker against the same two tenants on two
# workers.  Builds this tree into a private installation and starts a Citus
# coordinator, two workers and a plain node (test/citus_cluster.sh), all with
# synchronous_commit=off; rounds are interleaved and each figure is a median,
# each ratio the min / median / max of the per-round ratios.  Rates are steady
# rates (each connection's first transactions left out: steady()); CPU per
# operation is each node's whole CPU time over the run, first transactions in.
#   bash bench/bench_citus.sh          # ROUNDS=5 BATCHES=30 CLIENTS=4 PULL_SECONDS=4
# Prints one line and exits 0 when the citus extension is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG
. test/citus_cluster.sh
why=$(citus_skip_reason)
if [ -n "$why" ]; then
    echo "bench/bench_citus.sh: skipped: $why"
    exit 0
fi
ROUNDS=${ROUNDS:-5}
BATCHES=${BATCHES:-30}          # per client and run
CLIENTS=${CLIENTS:-4}           # per tenant
PULL_SECONDS=${PULL_SECONDS:-4}
# runs on ct1 per round: push on the single node's ct1 (own data), push through
# the coordinator, push on worker1 directly, and the two-tenant runs (one worker,
# two workers, each also pinned)
RUNS_CT1=6
PER_CLIENT=$((ROUNDS * RUNS_CT1 * BATCHES))
ROWS=$((CLIENTS * PER_CLIENT * 35 + 100))

CITUS_CONF="synchronous_commit = off
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
autovacuum = off"
citus_begin
citus_node coordinator
citus_node worker1
citus_node worker2
citus_node single plain
citus_add_workers coordinator worker1 worker2
tmp="$citus_work/bench"
mkdir -p "$tmp"
pgbench="$citus_bindir/pgbench"

setup() { citus_psql "$1" -v citus="$2" -v clients=$CLIENTS -v batches=$PER_CLIENT -v rows=$ROWS \
              -f bench/citus_setup.sql >/dev/null; }
setup single false
setup coordinator true
# the batches on worker1 too, for the pushes made there directly (a table of its
# own: the schema bench, made on the coordinator, exists on every node)
PGOPTIONS='-c citus.enable_ddl_propagation=off' citus_psql worker1 -c 'CREATE TABLE bench.batches (client int, n int, payload jsonb, PRIMARY KEY (client, n))'
citus_psql coordinator -c 'COPY bench.batches TO STDOUT' | citus_psql worker1 -c 'COPY bench.batches FROM STDIN'
# ct1, ct2 and cp on worker1 (node group 1), ct3 on worker2 (group 2); one move per statement
place() { citus_psql coordinator -c "SELECT citus_schema_move('$1', '127.0.0.1', ${citus_port[$2]})
    WHERE (SELECT p.groupid FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
            WHERE s.logicalrelid = '$1.sync_changes'::regclass) <> $3" >/dev/null; }
place ct1 worker1 1; place ct2 worker1 1; place cp worker1 1; place ct3 worker2 2
for node in single coordinator; do citus_psql "$node" -f bench/citus_pull.sql >/dev/null; done
citus_psql coordinator -At -c "SELECT string_agg(format('%s on node group %s', s.logicalrelid::regclass::text, p.groupid), ', ' ORDER BY 1)
    FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
   WHERE s.logicalrelid::text ~ '^(ct[0-9]|cp)\.sync_changes$'" | sed 's/^/placement: /'

# pgbench scripts.  push: client c of tenant ct:t pushes its batch n + 1;
# two tenants: the even clients push to ct:ta, the odd ones to ct:tb.
cat > "$tmp/push.sql" <<'SQL'
\set n :n + 1
\set c :client_id + 1
SELECT set_config('smartsync.tenant_id', 'ct' || :t, false), set_config('smartsync.client_id', 'dev' || :c, false),
       set_config('smartsync.permissions', 'bc_items:*', false);
SELECT smartsync.sync_push(payload) ->> 'processed' FROM bench.batches WHERE client = :c AND n = :n;
SQL
cat > "$tmp/push2.sql" <<'SQL'
\set n :n + 1
\set t :ta + (:tb - :ta) * (:client_id % 2)
\set c :client_id / 2 + 1
SELECT set_config('smartsync.tenant_id', 'ct' || :t, false), set_config('smartsync.client_id', 'dev' || :c, false),
       set_config('smartsync.permissions', 'bc_items:*', false);
SELECT smartsync.sync_push(payload) ->> 'processed' FROM bench.batches WHERE client = :c AND n = :n;
SQL
pull_script() { # node -> the pull of the 1,000 changes after the kept cursor
    echo "SELECT jsonb_array_length(smartsync.sync_pull(p_cursor => '$(citus_psql "$1" -At -c 'SELECT cursor FROM bench.cursor')', p_limit => 1000, p_entity_types => 'bc_items') -> 'changes');"
}
pull_script single > "$tmp/pull_single.sql"
pull_script coordinator > "$tmp/pull_citus.sql"

# the steady rate of a pgbench run from its transaction log (pgbench -l): each
# client's first 3 transactions (a new connection, on a worker a new backend
# with cold caches) left out, the sum over the clients (which ran at the same
# time) of each one's rate after them, times the operations per transaction
steady() { # log prefix, operations per transaction
    cat "$1".* | awk -v ops="$2" '
        { c = $1; t = $5 * 1000000 + $6
          if ($2 == 2) s[c] = t
          if ($2 > 2) { k[c]++; if (t > l[c]) l[c] = t } }
        END { r = 0
              for (c in k) if (l[c] > s[c]) r += k[c] * 1000000 / (l[c] - s[c])
              printf "%.1f\n", r * ops }'
    rm -f "$1".*
}
declare -A next=()   # next batch offset per tenant of the single node and of the cluster
# one pgbench run: operations/s.  push NODE TENANT [pgbench args]
push() {
    local node=$1 t=$2 key off
    key="$([ "$node" = single ] && echo single || echo citus)/$t"
    off=${next[$key]:-0}
    next[$key]=$((off + BATCHES))
    "$pgbench" -n -p "${citus_port[$node]}" -c "$CLIENTS" -j "$CLIENTS" -t "$BATCHES" -l --log-prefix="$tmp/log" \
        -D n="$off" -D t="$t" -f "$tmp/push.sql" postgres >/dev/null 2>&1
    steady "$tmp/log" 50
}
# two tenants at once through the coordinator: push2 TA TB (both advance their offsets)
push2() {
    local ta=$1 tb=$2 off
    off=${next["citus/$ta"]:-0}
    [ "${next["citus/$tb"]:-0}" -le "$off" ] || off=${next["citus/$tb"]}
    next["citus/$ta"]=$((off + BATCHES)); next["citus/$tb"]=$((off + BATCHES))
    "$pgbench" -n -p "${citus_port[coordinator]}" -c $((2 * CLIENTS)) -j $((2 * CLIENTS)) -t "$BATCHES" -l --log-prefix="$tmp/log" \
        -D n="$off" -D ta="$ta" -D tb="$tb" -f "$tmp/push2.sql" postgres >/dev/null 2>&1
    steady "$tmp/log" 50
}
# the pull through pgbench for PULL_SECONDS: changes/s
pull() {
    PGOPTIONS="-c smartsync.tenant_id=cp" "$pgbench" -n -p "${citus_port[$1]}" -c "$CLIENTS" -j "$CLIENTS" \
        -T "$PULL_SECONDS" -l --log-prefix="$tmp/log" -f "$2" postgres >/dev/null 2>&1
    steady "$tmp/log" 1000
}
# pins a node's postmaster and all its processes (new backends inherit it) to CPUs
pin() { taskset -a -p -c "$2" "$(head -1 "$citus_work/$1/postmaster.pid")" >/dev/null; }
unpin() { local all; all="0-$(( $(nproc) - 1 ))"; pin worker1 "$all"; pin worker2 "$all"; }

# CPU time (clock ticks) a node's processes used so far: the live ones, and the
# exited ones the postmaster has reaped (its cutime and cstime)
node_cpu() {
    local pm c t
    pm=$(head -1 "$citus_work/$1/postmaster.pid")
    t=$(awk '{print $16 + $17}' "/proc/$pm/stat")
    for c in $(pgrep -P "$pm"); do
        t=$(( t + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0) ))
    done
    echo "$t"
}
nodes=(coordinator worker1 worker2 single)
hz=$(getconf CLK_TCK)
declare -A res=() cpuop=()
# measure NAME COMMAND...: the command's rate (operations per second), and the
# CPU each node spent per operation (µs)
measure() {
    local name=$1 n t0 t1 rate i=0 b=()
    shift
    for n in "${nodes[@]}"; do b+=("$(node_cpu "$n")"); done
    t0=$(date +%s%N)
    rate=$("$@")
    t1=$(date +%s%N)
    sleep 0.3
    res[$name]+="$rate "
    for n in "${nodes[@]}"; do
        cpuop[$name/$n]+="$(awk -v d=$(( $(node_cpu "$n") - b[i] )) -v hz="$hz" -v r="$rate" -v ms=$(( (t1 - t0) / 1000000 )) \
            'BEGIN { printf "%.1f", (r > 0 && ms > 0) ? d * 1e6 / hz / (r * ms / 1000) : 0 }') "
        i=$((i + 1))
    done
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for r in $(seq 1 "$ROUNDS"); do
    measure push_single push single 1
    measure push_citus push coordinator 1
    measure push_direct push worker1 1
    measure pull_single pull single "$tmp/pull_single.sql"
    measure pull_citus pull coordinator "$tmp/pull_citus.sql"
    measure pull_direct pull worker1 "$tmp/pull_citus.sql"
    measure two_one push2 1 2
    measure two_two push2 1 3
    if [ "$(nproc)" -ge 2 ]; then
        pin worker1 0; pin worker2 1
        measure pin_one push2 1 2
        measure pin_two push2 1 3
        unpin
    fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# every pushed operation applied, none failed: on the single node and the cluster
check() { citus_psql "$1" -At -c "SELECT count(*) FILTER (WHERE outcome <> 'applied') || ' ' || count(*) FROM
    (SELECT outcome FROM ct1.sync_ledger UNION ALL SELECT outcome FROM ct2.sync_ledger UNION ALL SELECT outcome FROM ct3.sync_ledger) s"; }
for node in single coordinator; do
    read -r bad total < <(check "$node")
    if [ "$bad" != 0 ] || [ "$total" = 0 ]; then echo "bench_citus: $node: $bad of $total operations not applied" >&2; exit 1; fi
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratios() { # "a1 a2 ..." "b1 b2 ..." -> min / median / max of a_i / b_i
    paste <(echo "$1" | tr ' ' '\n' | grep .) <(echo "$2" | tr ' ' '\n' | grep .) | awk '{print $1 / $2}' | sort -g \
        | awk '{a[NR]=$1} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.2f / %.2f / %.2f", a[1], m, a[NR]}'
}
row() { printf "| %s | %.0f | %s | %s |\n" "$1" "$(echo "${res[$2]}" | median)" "${3:-}" "${4:-}"; }
us() { printf "%.0f" "$(echo "${cpuop[$1/$2]}" | median)"; }
echo
echo "smartsync on Citus 13.2: a coordinator and two workers on one machine ($(nproc) CPUs, shared), synchronous_commit=off,"
echo "$ROUNDS interleaved rounds; push: 50-operation batches (30 updates, 15 creates, 5 deletes), $CLIENTS clients per tenant,"
echo "$BATCHES batches per client and run; pull: the same 1,000 changes from a kept cursor, $CLIENTS clients, ${PULL_SECONDS}s per run"
echo
echo "| workload | operations/s (median) | ratio min / median / max | target |"
echo "|---|---|---|---|"
row "push, one tenant, single PostgreSQL node (baseline)" push_single "1.00" ""
row "push, the same tenant through the Citus coordinator" push_citus "$(ratios "${res[push_citus]}" "${res[push_single]}")" ">= 0.70"
row "push, the same tenant on its worker directly (no routing)" push_direct "$(ratios "${res[push_direct]}" "${res[push_single]}")" ""
row "pull, changes/s, single PostgreSQL node (baseline)" pull_single "1.00" ""
row "pull, changes/s, through the Citus coordinator" pull_citus "$(ratios "${res[pull_citus]}" "${res[pull_single]}")" ">= 0.70"
row "pull, changes/s, on its worker directly (no routing)" pull_direct "$(ratios "${res[pull_direct]}" "${res[pull_single]}")" ""
row "two tenants pushing at once, both on worker1 (baseline)" two_one "1.00" ""
row "two tenants pushing at once, on worker1 and worker2" two_two "$(ratios "${res[two_two]}" "${res[two_one]}")" "> 1.50"
if [ -n "${res[pin_one]:-}" ]; then
    row "the same, each worker pinned to a CPU of its own: both on worker1 (baseline)" pin_one "1.00" ""
    row "the same, each worker pinned to a CPU of its own: on worker1 and worker2" pin_two "$(ratios "${res[pin_two]}" "${res[pin_one]}")" "> 1.50"
fi
echo
echo "CPU per operation (µs, median), by node: what each node would need if it had a machine of its own"
echo
echo "| workload | single node | coordinator | worker1 | worker2 |"
echo "|---|---|---|---|---|"
for w in push_single push_citus push_direct pull_single pull_citus pull_direct two_one two_two; do
    printf "| %s | %s | %s | %s | %s |\n" "$w" "$(us "$w" single)" "$(us "$w" coordinator)" "$(us "$w" worker1)" "$(us "$w" worker2)"
done
