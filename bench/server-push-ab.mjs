// Before and after for HTTP push (issue 15's "HTTP push at least 0.8x direct SQL"), run by
// bench/server_push_ab.sh inside a cluster with two prepared databases: BENCH_DB_REV (the
// extension SQL of another commit, REV) served by REV's server build (BENCH_REV_CLI), and
// BENCH_DB_NEW (this tree's SQL) served by this tree's build.  The same 50-operation batches of
// creates go, for each build, through
//   sql   smartsync.sync_push called directly (the context as smartsync.* settings),
//   api   the build's runRequest (database.ts): the api function in PostgREST's transaction,
//         no HTTP,
//   http  POST /api/sync/push to the build's server command (a process of its own, logged in
//         as authenticator),
// in interleaved rounds (the order reversed every other round) after an unmeasured warm-up of
// each, one client each.  Prints JSON:
// ops/s per way (median), per-round ratios (min / median / max) and server CPU per push.
//   node bench/server-push-ab.mjs --rounds 5 --seconds 4 --batch 50
import fs from "node:fs";
import os from "node:os";
import { parseArgs } from "node:util";

import { PASSWORD, PUSH_CLAIMS, adminUrl, checkPush, cpuMs, databaseUrl, httpPusher, pg, pushBatches, sqlPusher, startServerCommand } from "./server-bench-common.mjs";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "4" },
    rounds: { type: "string", default: "5" },
    batch: { type: "string", default: "50" },
    warmup: { type: "string", default: "2" },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const BATCH = Number(values.batch);
const builds = {
  rev: {
    db: process.env.BENCH_DB_REV,
    cli: process.env.BENCH_REV_CLI,
  },
  new: {
    db: process.env.BENCH_DB_NEW,
    cli: new URL("../js/packages/server/dist/cli.js", import.meta.url).pathname,
  },
};
for (const b of Object.values(builds)) if (!b.db || !b.cli) throw new Error("set BENCH_DB_REV, BENCH_DB_NEW and BENCH_REV_CLI");
builds.rev.database = await import(new URL("database.js", new URL(`file://${builds.rev.cli}`)).href);
builds.new.database = await import(new URL("../js/packages/server/dist/database.js", import.meta.url).href);

/** Starts a build's server command on a free loopback port. */
const startServer = (build) => startServerCommand({ cli: build.cli, db: build.db, args: ["--signal", "none", "--pool-size", "2"] });

const payload = pushBatches(BATCH);
const check = checkPush;

/** One client of a way of a build: its own connection (or keep-alive socket) and device id. */
async function worker(build, way, device) {
  if (way === "http") return httpPusher(build.server.port, device);
  if (way === "api") {
    // the build's own request transaction (database.ts), as its server runs it, without HTTP
    const pool = new pg.Pool({ connectionString: databaseUrl(build.db, "authenticator", PASSWORD), max: 1, ...build.poolOptions });
    const identity = {
      role: "web_user",
      claims: { ...PUSH_CLAIMS, client_id: device },
      method: "POST",
      path: "/api/sync/push",
      headers: { host: "127.0.0.1", "content-type": "application/json" },
    };
    const { runRequest, apiCallWithBody } = build.database;
    return {
      push: (body) =>
        runRequest(pool, "api", identity, { readOnly: false, statementTimeoutMs: 10000 }, apiCallWithBody("api", "sync_push", body)),
      close: () => pool.end(),
    };
  }
  return sqlPusher(build.db, device);
}

// REV's server used node-postgres's pipeline mode if its source says so (its runRequest then expects it)
const revHandler = fs.readFileSync(new URL("handler.js", new URL(`file://${builds.rev.cli}`)), "utf8");
builds.rev.poolOptions = /pipeline: true/.test(revHandler) ? { pipeline: true } : {};
builds.new.poolOptions = {};
for (const b of Object.values(builds)) b.server = await startServer(b);

const ways = ["sql", "api", "http"];
const rates = {};
const cpu = { rev: [0, 0], new: [0, 0] };
const cpuRounds = { rev: [], new: [] };
// the two builds' runs of a way follow each other, so that a burst of load from elsewhere
// falls on both as far as it can
const order = [];
for (const w of ways) for (const b of ["rev", "new"]) order.push([b, w]);
for (const [b, w] of order) rates[`${b}.${w}`] = [];
const loads = [];
// every way of each build warms up first, unmeasured (a deployed server is warm)
for (const [b, w] of order) {
  const client = await worker(builds[b], w, `${b}-${w}-warmup-${process.pid}`);
  const t0 = performance.now();
  while (performance.now() - t0 < Number(values.warmup) * 1000) check(await client.push(payload(`${b}-${w}-warmup-${process.pid}`)));
  await client.close();
}
for (let r = 0; r < ROUNDS; r++) {
  const list = r % 2 === 0 ? order : [...order].reverse();
  for (const [b, w] of list) {
    const build = builds[b];
    const device = `${b}-${w}-${r}-${process.pid}`;
    const client = await worker(build, w, device);
    const c0 = w === "http" ? cpuMs(build.server.pid) : 0;
    let ops = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < SECONDS * 1000) {
      check(await client.push(payload(device)));
      ops += BATCH;
    }
    rates[`${b}.${w}`].push(ops / ((performance.now() - t0) / 1000));
    if (w === "http") {
      const used = cpuMs(build.server.pid) - c0;
      cpu[b][0] += used;
      cpu[b][1] += ops / BATCH;
      cpuRounds[b].push(used / (ops / BATCH));
    }
    await client.close();
  }
  loads.push(os.loadavg()[0]);
  for (const b of Object.values(builds)) {
    const c = new pg.Client({ connectionString: adminUrl(b.db) });
    await c.connect();
    await c.query("VACUUM tenant_bench_push.clients, tenant_bench_push.sync_ledger, tenant_bench_push.sync_changes, tenant_bench_push.sync_id_map");
    await c.end();
  }
}
for (const b of Object.values(builds)) await b.server.stop();

const sorted = (a) => [...a].sort((x, y) => x - y);
const med = (a) => sorted(a)[Math.floor(a.length / 2)];
const ratio = (a, b) => sorted(rates[a].map((x, i) => x / rates[b][i]));
const out = { batch: BATCH, rounds: ROUNDS, seconds: SECONDS, ops: {}, ratios: {}, serverCpuMsPerPush: {}, load: sorted(loads) };
for (const k of Object.keys(rates)) out.ops[k] = Math.round(med(rates[k]));
for (const b of ["rev", "new"]) {
  out.ratios[`${b} http/sql`] = ratio(`${b}.http`, `${b}.sql`);
  out.ratios[`${b} api/sql`] = ratio(`${b}.api`, `${b}.sql`);
  out.ratios[`${b} http/api`] = ratio(`${b}.http`, `${b}.api`);
  out.serverCpuMsPerPush[b] = cpu[b][0] / cpu[b][1];
  out.serverCpuMsPerPushRounds = { ...out.serverCpuMsPerPushRounds, [b]: sorted(cpuRounds[b]) };
}
out.ratios["http new/rev"] = ratio("new.http", "rev.http");
out.ratios["api new/rev"] = ratio("new.api", "rev.api");
out.ratios["sql new/rev"] = ratio("new.sql", "rev.sql");
process.stdout.write(`${JSON.stringify(out)}\n`);
