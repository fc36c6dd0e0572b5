#!/usr/bin/env node
// npm test: the integration tests against the PostgreSQL server that PG* name,
// or, when none is named, against a throwaway cluster made by pg_virtualenv
// (Debian's postgresql-common) with the smartsync installed in the system.
import { spawnSync } from "node:child_process";

const vitest = ["vitest", "run", ...process.argv.slice(2)];
const named = process.env.PGHOST !== undefined || process.env.PGPORT !== undefined;
const r = named
  ? spawnSync("npx", vitest, { stdio: "inherit" })
  : spawnSync("pg_virtualenv", ["-t", "-v", process.env.PG_VERSION ?? "15", "npx", ...vitest], { stdio: "inherit" });
if (r.error) {
  process.stderr.write(`${r.error.message}\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
