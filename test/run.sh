#!/bin/bash
# The test command: installs what is missing, then builds smartsync with warnings as
# errors, installs it into PostgreSQL 15 and runs every suite (test/suites.sh:
# pg_regress, isolation specs, pgTAP, corpus, simulation, TAP tests) against
# throwaway clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh
bash test/suites.sh
# @smartsync/client (js/): npm ci with the committed lock file, unit tests, then integration
# tests against a throwaway cluster of their own (Node.js 20 or later)
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "js/ needs Node.js 20 or later"; exit 1; }
(cd js && npm ci --no-audit --no-fund && npm test -w @smartsync/client && npm run test:integration -w @smartsync/client)
