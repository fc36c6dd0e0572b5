#!/bin/bash
# Change-capture cost: UPDATE throughput on a tracked table against the same
# table untracked and with a hand-written PL/pgSQL logging trigger.
# Run by bench/run.sh inside a throwaway cluster (PG* set, synchronous_commit=off).
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_capture
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
dropdb --if-exists $DB 2>/dev/null
createdb $DB
psql -X -q -v ON_ERROR_STOP=1 -d $DB -f bench/capture_setup.sql >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dropdb --if-exists $DB 2>/dev/null' EXIT

for s in untracked tracked plpgsql; do
    cat > "$tmp/single_$s.sql" <<SQL
\set id random(1, 10000)
UPDATE $s.records SET qty = qty + 1, status = 'checked-in' WHERE id = :id;
SQL
    cat > "$tmp/bulk_$s.sql" <<SQL
UPDATE $s.records SET qty = qty + 1 WHERE id <= 10000;
SQL
done

# tps of one pgbench run: client count 1, prepared statements
run() { # script, mode(-T n | -t n)
    pgbench -n -M prepared -c 1 -j 1 $2 -f "$1" $DB 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A single bulk
for r in $(seq 1 "$ROUNDS"); do
    for s in untracked tracked plpgsql; do   # interleaved, so drift hits all alike
        single[$s]+="$(run "$tmp/single_$s.sql" "-T $SECONDS_PER_RUN") "
        bulk[$s]+="$(run "$tmp/bulk_$s.sql" "-t 3") "
        psql -X -q -d $DB -c "VACUUM $s.records" >/dev/null
    done
done
psql -X -q -d $DB -c "VACUUM" >/dev/null

m() { echo $1 | tr ' ' '\n' | grep . | median; }
su=$(m "${single[untracked]}"); st=$(m "${single[tracked]}"); sp=$(m "${single[plpgsql]}")
bu=$(m "${bulk[untracked]}");   bt=$(m "${bulk[tracked]}");   bp=$(m "${bulk[plpgsql]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

echo "Change capture, 20-column row (~1 KB as JSON), synchronous_commit=off, 1 client, median of $ROUNDS rounds"
echo
echo "| workload | untracked | smartsync (C) | PL/pgSQL trigger | smartsync / untracked | PL/pgSQL / untracked | target |"
echo "|---|---|---|---|---|---|---|"
printf "| single-row UPDATE (tx/s) | %.0f | %.0f | %.0f | %s | %s | >= 0.80x |\n" "$su" "$st" "$sp" "$(ratio $st $su)" "$(ratio $sp $su)"
printf "| 10,000-row UPDATE (statements/s) | %.2f | %.2f | %.2f | %s | %s | >= 0.50x |\n" "$bu" "$bt" "$bp" "$(ratio $bt $bu)" "$(ratio $bp $bu)"
