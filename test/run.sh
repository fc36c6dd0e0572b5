#!/bin/bash
# The test command: installs what is missing, then builds smartsync with warnings as
# errors, installs it into PostgreSQL 15 and runs the database suites (test/suites.sh:
# pg_regress, isolation specs, pgTAP, corpus, simulation, TAP tests) against throwaway
# clusters, then the js suites (client, server, react, the example app in Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh
bash test/suites.sh
# @smartsync/client and @smartsync/server (js/): npm ci with the committed lock file, unit
# tests, then integration tests against throwaway clusters of their own (Node.js 20 or later)
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "js/ needs Node.js 20 or later"; exit 1; }
(cd js && npm ci --no-audit --no-fund && npm test -w @smartsync/client && npm run test:integration -w @smartsync/client \
    && npm test -w @smartsync/server)
# @smartsync/react (Vitest, React Testing Library, happy-dom), then the example app's browser
# tests: Debian's chromium, a real @smartsync/server and a throwaway cluster of their own
(cd js && npm test -w @smartsync/react && bash examples/vet-app/test/run.sh)
