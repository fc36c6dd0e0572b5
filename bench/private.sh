#!/bin/bash
# Runs benchmarks on a private build of this tree (test/private.sh: a private
# copy of PostgreSQL and a server of its own, nothing installed system-wide),
# with the server settings bench/run.sh uses (bench/settings.conf).
#   bash bench/private.sh            # all benchmarks
#   bash bench/private.sh capture    # one (bench/bench_capture.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    set -- $(ls bench/bench_*.sh | sed 's|bench/bench_\(.*\)\.sh|\1|')
fi
for n in "$@"; do
    [ -f "bench/bench_$n.sh" ] || { echo "no benchmark bench/bench_$n.sh" >&2; exit 2; }
done
PRIVATE_CONF="$(grep -v '^#' bench/settings.conf)" PRIVATE_TAP=0 \
    bash test/private.sh -- bash -c 'set -e; for n in "$@"; do echo; echo "### bench/bench_$n.sh"; bash "bench/bench_$n.sh"; done' _ "$@"
