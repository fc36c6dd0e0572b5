#!/bin/bash
# Backend CPU time per resolve_conflict, per strategy, against the plain-SQL baseline of
# bench/bench_resolve.sh (same setup, taken from that script): N resolutions per path in
# one session each, the backend's utime + stime (/proc/PID/stat, read by the backend itself,
# so it needs a superuser) before and after.  CPU time is less disturbed by other load on
# the machine than wall time; it leaves out what the backend waits for (WAL, locks).
# Used to compare PostgreSQL versions (README, "PostgreSQL 15 and 18 side by side"):
#   bash test/private.sh -- bash bench/resolve_cpu.sh
#   bash test/chroot.sh 18 -- bash -c 'make -s && make -s install && pg_virtualenv -t -o synchronous_commit=off bash bench/resolve_cpu.sh'
# Run inside a cluster (PG* set).  Settings: N (2000).  Prints one line per path:
# microseconds of backend CPU per resolution, and the baseline's divided by the path's.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_resolve_cpu
N=${N:-2000}
ROWS=$((4 * N))
export PGOPTIONS="-c smartsync.tenant_id=bench_res -c smartsync.client_id=desk -c smartsync.permissions=*"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dropdb --if-exists $DB 2>/dev/null' EXIT
dropdb --if-exists $DB 2>/dev/null
createdb $DB
# bench_resolve.sh's setup: the here-document of its first psql call
sed -n '/^psql -X -q -v ON_ERROR_STOP=1 -d \$DB -v rows=\$ROWS >\/dev\/null <<.SQL.$/,/^SQL$/p' \
    bench/bench_resolve.sh | sed '1d;$d' > "$tmp/setup.sql"
[ -s "$tmp/setup.sql" ] || { echo "resolve_cpu: no setup found in bench/bench_resolve.sh" >&2; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 -d $DB -v rows=$ROWS -f "$tmp/setup.sql" >/dev/null
cpu="SELECT (string_to_array(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ' '))[14:15]::text;"
k=0
for p in client-wins merge server-wins plain; do
    {
        echo "\\o /dev/null"; echo "SELECT 1;"; echo "\\o"; echo "$cpu"; echo "\\o /dev/null"
        for i in $(seq $((k * N + 1)) $((k * N + N))); do
            if [ $p = plain ]; then echo "SELECT bench_tpl.plain_resolve($i);"
            else echo "SELECT smartsync.resolve_conflict($i, '$p') ->> 'status';"; fi
        done
        echo "\\o"; echo "$cpu"
    } > "$tmp/$p.sql"
    k=$((k + 1))
done
ticks=$(getconf CLK_TCK)
declare -A us
for p in client-wins merge server-wins plain; do
    read -r a b < <(psql -X -qAt -v ON_ERROR_STOP=1 -d $DB -f "$tmp/$p.sql" | tr -d '{}' | tr ',' ' ' | paste -sd' ' \
        | awk '{print $1 + $2, $3 + $4}')
    us[$p]=$(( (b - a) * 1000000 / ticks / N ))
done
echo "resolve_conflict: backend CPU per resolution, $N per path, $(cut -d' ' -f1-3 /proc/loadavg) load"
for p in client-wins merge server-wins plain; do
    awk -v p="$p" -v u="${us[$p]}" -v b="${us[plain]}" 'BEGIN { printf "%-12s %6d us  %.2fx\n", p, u, b / u }'
done
