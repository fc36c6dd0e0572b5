#!/bin/bash
# The Citus suite (README "Scaling out"): smartsync on Citus schema-based sharding.
#
# Builds this tree into a private copy of the PostgreSQL under test
# (test/install_private.sh: the system installation stays untouched), starts a
# Citus cluster on loopback from it -- a coordinator and two workers, each with
# its own data directory and port under a temporary directory, run as the
# postgres user, shared_preload_libraries = citus (test/citus_cluster.sh) --
# and runs against the coordinator:
#   test/citus/sql/*.sql       pg_regress, in the order of test/citus/schedule
#                              (expected output in test/citus/expected/)
#   test/citus/specs/*.spec    isolation specs (concurrent writers, late commits,
#                              a schema move during a push)
#   test/citus/server.sh       @smartsync/server through the coordinator: push,
#                              changed and pull for two tenants on two workers
#                              (when js/packages/server is built)
# The servers are stopped on exit, failure included.  When the citus extension
# is not installed for that PostgreSQL, prints one line saying so and exits 0.
#
#   bash test/citus.sh                 # or: make citus-check
#   CITUS_TESTS="citus_setup citus_roundtrip" CITUS_SPECS= bash test/citus.sh
#   CITUS_KEEP=1 bash test/citus.sh    # keep the cluster's directory (servers stopped)
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG
. test/citus_cluster.sh
why=$(citus_skip_reason)
if [ -n "$why" ]; then
    echo "test/citus.sh: skipped: $why"
    exit 0
fi

tests=${CITUS_TESTS-}        # default: test/citus/schedule
specs=${CITUS_SPECS-$(cd test/citus/specs && ls *.spec | sed 's/\.spec$//' | sort | tr '\n' ' ')}

echo "citus: building smartsync into a private copy of $("$PG_CONFIG" --version)"
citus_begin
citus_node coordinator
citus_node worker1
citus_node worker2
citus_add_workers coordinator worker1 worker2
export PGPORT=${citus_port[coordinator]}
echo "citus: coordinator on port ${citus_port[coordinator]}, workers on ${citus_port[worker1]} and ${citus_port[worker2]}"

status=0
if [ "${CITUS_TESTS-unset}" = unset ] || [ -n "${tests// }" ]; then
    sched=(); [ -n "$tests" ] || sched=(--schedule=test/citus/schedule)
    # shellcheck disable=SC2086
    "$citus_pkglibdir/pgxs/src/test/regress/pg_regress" --use-existing --bindir="$citus_bindir" \
        --inputdir=test/citus --outputdir="$citus_work/results" --dbname=postgres "${sched[@]}" $tests || status=$?
fi
if [ $status -eq 0 ] && [ -n "${specs// }" ]; then
    # isolationtester asks pg_isolation_test_session_is_blocked who waits; Citus'
    # version also sees a coordinator session waiting on a worker's lock
    citus_psql coordinator -c 'SELECT citus_internal.replace_isolation_tester_func()' >/dev/null
    # shellcheck disable=SC2086
    "$citus_pkglibdir/pgxs/src/test/isolation/pg_isolation_regress" --use-existing --bindir="$citus_bindir" \
        --inputdir=test/citus --outputdir="$citus_work/results_iso" --dbname=postgres $specs || status=$?
fi
# @smartsync/server through the coordinator (test/citus/server.sh)
if [ $status -eq 0 ]; then
    . test/citus/server.sh
    citus_server_check || status=$?
fi
for d in results results_iso; do
    if [ -s "$citus_work/$d/regression.diffs" ]; then
        echo "=== $d/regression.diffs"; head -300 "$citus_work/$d/regression.diffs"
    fi
done
# a server process that died fails the run
if grep -qE 'terminated by signal|PANIC' "$citus_work"/*/server.log; then
    echo "citus: a server process died:"
    grep -E -B2 -A2 'terminated by signal|PANIC' "$citus_work"/*/server.log | head -30
    status=1
fi
exit $status
