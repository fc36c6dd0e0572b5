#!/bin/bash
# The Citus suite (README "Scaling out"): smartsync on Citus schema-based sharding.
#
# Builds this tree into a private copy of the PostgreSQL under test
# (test/install_private.sh: the system installation stays untouched), starts a
# Citus cluster on loopback from it -- a coordinator and two workers, each with
# its own data directory and port under a temporary directory, run as the
# postgres user, shared_preload_libraries = citus -- and runs against the
# coordinator:
#   test/citus/sql/*.sql       pg_regress, in the order of test/citus/schedule
#                              (expected output in test/citus/expected/)
#   test/citus/specs/*.spec    isolation specs (concurrent writers, late commits)
# The servers are stopped on exit, failure included.  When the citus extension
# is not installed for that PostgreSQL, prints one line saying so and exits 0.
#
#   bash test/citus.sh                 # or: make citus-check
#   CITUS_TESTS="citus_setup citus_roundtrip" CITUS_SPECS= bash test/citus.sh
#   CITUS_KEEP=1 bash test/citus.sh    # keep the cluster's directory (servers stopped)
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG
pgversion=$("$PG_CONFIG" --version)
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/citus.control" ] ||
   [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
    echo "test/citus.sh: skipped: the citus extension is not installed for $pgversion (README \"Scaling out\" says how to install it)"
    exit 0
fi

tests=${CITUS_TESTS-}        # default: test/citus/schedule
specs=${CITUS_SPECS-$(cd test/citus/specs && ls *.spec | sed 's/\.spec$//' | sort | tr '\n' ' ')}

work=$(mktemp -d "${TMPDIR:-/tmp}/smartsync_citus.XXXXXX")
chmod 755 "$work"
nodes=(coordinator worker1 worker2)
started=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    for n in "${started[@]}"; do
        as_pg "$bindir/pg_ctl" -D "$work/$n" -m immediate -w stop >/dev/null 2>&1 || true
    done
    if [ -n "${CITUS_KEEP:-}" ]; then echo "citus: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "citus: building smartsync into a private copy of $pgversion"
bindir=$(bash test/install_private.sh "$work/pg")
pkglibdir="$work/pg$("$PG_CONFIG" --pkglibdir)"
chmod -R a+rX "$work"

# three free loopback ports
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=()
while [ ${#ports[@]} -lt 3 ]; do
    p=$(( 20000 + RANDOM % 20000 ))
    if port_free "$p" && [[ " ${ports[*]} " != *" $p "* ]]; then ports+=("$p"); fi
done

mkdir -p "$work/sock"
chown postgres "$work/sock" 2>/dev/null || true
for i in 0 1 2; do
    n=${nodes[$i]}
    mkdir -p "$work/$n"
    chown postgres "$work/$n" 2>/dev/null || true
    as_pg "$bindir/initdb" -D "$work/$n" -A trust -U postgres --no-sync >/dev/null
    cat >> "$work/$n/postgresql.conf" <<EOF
port = ${ports[$i]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work/sock'
shared_preload_libraries = 'citus'
max_prepared_transactions = 100
wal_level = logical
fsync = off
citus.log_remote_commands = off
EOF
    as_pg "$bindir/pg_ctl" -D "$work/$n" -l "$work/$n/server.log" -w start >/dev/null
    started+=("$n")
done
echo "citus: coordinator on port ${ports[0]}, workers on ${ports[1]} and ${ports[2]}"

export PGHOST="$work/sock" PGUSER=postgres PGDATABASE=postgres
node_psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -p "$1" "${@:2}"; }
for i in 0 1 2; do node_psql "${ports[$i]}" -c 'CREATE EXTENSION citus' >/dev/null; done
node_psql "${ports[0]}" >/dev/null <<EOF
SELECT citus_set_coordinator_host('127.0.0.1', ${ports[0]});
SELECT citus_add_node('127.0.0.1', ${ports[1]});
SELECT citus_add_node('127.0.0.1', ${ports[2]});
EOF
export PGPORT=${ports[0]}

status=0
mkdir -p "$work/results"
if [ "${CITUS_TESTS-unset}" = unset ] || [ -n "${tests// }" ]; then
    sched=(); [ -n "$tests" ] || sched=(--schedule=test/citus/schedule)
    # shellcheck disable=SC2086
    "$pkglibdir/pgxs/src/test/regress/pg_regress" --use-existing --bindir="$bindir" \
        --inputdir=test/citus --outputdir="$work/results" --dbname=postgres "${sched[@]}" $tests || status=$?
fi
if [ $status -eq 0 ] && [ -n "${specs// }" ]; then
    mkdir -p "$work/results_iso"
    # isolationtester asks pg_isolation_test_session_is_blocked who waits; Citus'
    # version also sees a coordinator session waiting on a worker's lock
    node_psql "${ports[0]}" -c 'SELECT citus_internal.replace_isolation_tester_func()' >/dev/null
    # shellcheck disable=SC2086
    "$pkglibdir/pgxs/src/test/isolation/pg_isolation_regress" --use-existing --bindir="$bindir" \
        --inputdir=test/citus --outputdir="$work/results_iso" --dbname=postgres $specs || status=$?
fi
for d in results results_iso; do
    if [ -s "$work/$d/regression.diffs" ]; then echo "=== $d/regression.diffs"; head -300 "$work/$d/regression.diffs"; fi
done
# a server process that died fails the run
if grep -qE 'terminated by signal|PANIC' "$work"/*/server.log; then
    echo "citus: a server process died:"
    grep -E -B2 -A2 'terminated by signal|PANIC' "$work"/*/server.log | head -30
    status=1
fi
exit $status
