#!/usr/bin/env node
// npm test: the integration tests against the PostgreSQL server that PG* name,
// or, when none is named, against a throwaway cluster made by pg_virtualenv
// (Debian's postgresql-common) with the smartsync installed in the system.
import { spawnSync } from "node:child_process";

const vitest = ["vitest", "run", ...process.argv.slice(2)];
const named = process.env.PGHOST !== undefined || process.env.PGPORT !== undefined;
// node-postgres does not read the cluster files psql finds the port in: name it
const inCluster = 'export PGPORT="$(psql -XAtc "SHOW port")" && exec npx "$@"';
const r = named
  ? spawnSync("npx", vitest, { stdio: "inherit" })
  : spawnSync("pg_virtualenv", ["-t", "-v", process.env.PG_VERSION ?? "15", "sh", "-c", inCluster, "sh", ...vitest], {
      stdio: "inherit",
    });
if (r.error) {
  process.stderr.write(`${r.error.message}\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
