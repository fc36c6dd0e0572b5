#!/bin/bash
# The test command: installs what is missing, then builds smartsync with warnings as
# errors, installs it into PostgreSQL 15 and runs every suite (test/suites.sh:
# pg_regress, isolation specs, pgTAP, corpus, simulation, TAP tests) against
# throwaway clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh
bash test/suites.sh
