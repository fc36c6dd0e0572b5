#!/bin/bash
# The main job: a throwaway PostgreSQL cluster, a veterinary practice tenant, and
# a walk through smartsync's sync cycle, printed step by step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
make -s >/dev/null
$SUDO make -s install >/dev/null
pg_virtualenv -t -v 15 psql -X -q -v ON_ERROR_STOP=1 -P pager=off -f examples/demo.sql 2>&1 \
    | grep -v -e '^Creating new PostgreSQL cluster' -e '^Dropping cluster'
