#!/bin/bash
# @smartsync/client: push of 1,000 queued operations end to end (IndexedDB queue to every
# real id applied locally), against this cluster over loopback HTTP, with a baseline of the
# same requests from a bare loop (js/packages/client/bench/push-1000.ts).
# Run by bench/run.sh inside a throwaway cluster (PG* set).
set -euo pipefail
cd "$(dirname "$0")/.."
bash js/packages/client/bench/run.sh
