#!/bin/bash
# Benchmark runner: builds and installs smartsync, starts a throwaway cluster
# (bench/settings.conf: synchronous_commit=off so CPU cost shows) and runs bench/bench_NAME.sh for each
# NAME given, or all of them.  Each prints a markdown table of medians and of
# ratios against a baseline measured in the same run.
#   bash bench/run.sh            # all benchmarks
#   bash bench/run.sh capture    # one
# It installs system-wide; bench/private.sh runs the same on a private build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
make -s >/dev/null
$SUDO make -s install >/dev/null
if [ $# -eq 0 ]; then
    set -- $(ls bench/bench_*.sh | sed 's|bench/bench_\(.*\)\.sh|\1|')
fi
scripts=""
for n in "$@"; do
    [ -f "bench/bench_$n.sh" ] || { echo "no benchmark bench/bench_$n.sh" >&2; exit 2; }
    scripts="$scripts bench/bench_$n.sh"
done
opts=()
while read -r line; do opts+=(-o "${line// = /=}"); done < <(grep -v '^#' bench/settings.conf | grep .)
pg_virtualenv -t -v 15 "${opts[@]}" \
    bash -c 'set -e; for s in "$@"; do echo; echo "### $s"; bash "$s"; done' _ $scripts 2>&1 \
    | grep -v -e '^Creating new PostgreSQL cluster' -e '^Dropping cluster'
