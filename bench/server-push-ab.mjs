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
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import { parseArgs } from "node:util";

const require = createRequire(new URL("../js/packages/server/package.json", import.meta.url));
const pg = require("pg");
const { SignJWT } = await import(require.resolve("jose"));

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
const SECRET = "bench-secret-bench-secret-bench-secret";
const PASSWORD = process.env.BENCH_AUTHENTICATOR_PASSWORD ?? "bench-authenticator";
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

function databaseUrl(db, user, password) {
  const host = process.env.PGHOST ?? "localhost";
  const port = process.env.PGPORT ?? "5432";
  const auth = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return host.startsWith("/")
    ? `postgresql://${auth}@/${db}?host=${encodeURIComponent(host)}&port=${port}`
    : `postgresql://${auth}@${host}:${port}/${db}`;
}
const admin = (db) => databaseUrl(db, process.env.PGUSER ?? "postgres", process.env.PGPASSWORD ?? "");

/** Starts a build's server command on a free loopback port. */
async function startServer(build) {
  const child = spawn("node", [build.cli, "--port", "0", "--host", "127.0.0.1", "--signal", "none", "--pool-size", "2"], {
    env: {
      PATH: process.env.PATH,
      SMARTSYNC_DATABASE_URL: databaseUrl(build.db, "authenticator", PASSWORD),
      SMARTSYNC_JWT_SECRET: SECRET,
      SMARTSYNC_LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d) => {
      if (buf === null) return;
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      const entry = JSON.parse(buf.slice(0, nl));
      buf = null;
      if (entry.msg === "listening") resolve(entry.port);
      else reject(new Error(`unexpected first log line ${buf}`));
    });
    child.once("exit", (code) => reject(new Error(`the server exited with ${code}`)));
  });
  return { port, pid: child.pid, stop: () => new Promise((r) => (child.once("exit", r), child.kill("SIGTERM"))) };
}

/** CPU time (user + system) a process has used, in milliseconds. */
function cpuMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

const claims = { role: "web_user", tenant_id: "bench-push", practice_id: 1, sub: "1", permissions: ["clients:create"] };
let n = 0;
function payload(device) {
  const ops = [];
  for (let i = 0; i < BATCH; i++) {
    n++;
    ops.push({
      id: n,
      operation: "create",
      entityType: "clients",
      entityId: `temp_${device}_${n}`,
      data: { name: `Client ${n}`, email: `c${n}@example.com` },
      timestamp: 1731230000000,
    });
  }
  return JSON.stringify({ operations: ops, clientTimestamp: 1731230005000 });
}
function check(text) {
  if (!text.includes('"failed": 0')) throw new Error(text.slice(0, 300));
}

/** One client of a way of a build: its own connection (or keep-alive socket) and device id. */
async function worker(build, way, device) {
  if (way === "http") {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const jwt = await new SignJWT({ ...claims, client_id: device })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("2h")
      .sign(new TextEncoder().encode(SECRET));
    return {
      push: (body) =>
        new Promise((resolve, reject) => {
          const req = http.request(
            {
              host: "127.0.0.1",
              port: build.server.port,
              path: "/api/sync/push",
              method: "POST",
              agent,
              headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
            },
            (res) => {
              let text = "";
              res.setEncoding("utf8");
              res.on("data", (d) => (text += d));
              res.on("end", () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`push ${res.statusCode}: ${text}`))));
            },
          );
          req.on("error", reject);
          req.end(body);
        }),
      close: async () => agent.destroy(),
    };
  }
  if (way === "api") {
    // the build's own request transaction (database.ts), as its server runs it, without HTTP
    const pool = new pg.Pool({ connectionString: databaseUrl(build.db, "authenticator", PASSWORD), max: 1, ...build.poolOptions });
    const identity = {
      role: "web_user",
      claims: { ...claims, client_id: device },
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
  const c = new pg.Client({ connectionString: admin(build.db) });
  await c.connect();
  await c.query(
    "SELECT set_config('smartsync.tenant_id', 'bench-push', false), set_config('smartsync.practice_id', '1', false)," +
      " set_config('smartsync.user_id', '1', false), set_config('smartsync.client_id', $1, false)," +
      " set_config('smartsync.permissions', 'clients:create', false)",
    [device],
  );
  return {
    push: async (body) => (await c.query("SELECT smartsync.sync_push($1::jsonb)::text AS r", [body])).rows[0].r,
    close: () => c.end(),
  };
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
    const c = new pg.Client({ connectionString: admin(b.db) });
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
