// Where an HTTP push's time goes (issue 15): one client pushes the same 50-operation batches
// as server_push_ab.sh, one push at a time, and this reports per push the wall time and the CPU
// time, exact (/proc/<pid>/schedstat), of the bench client, of the database backends and of the
// server process (its main thread, all its threads) and the server's wake-ups (voluntary
// context switches of its main thread).  The server is the tree's smartsync-server command, or
// a floor to compare it with, a bare node:http server in a process of its own (this file, run as
// `floor MODE`) that reads the same request and answers
//   echo         a canned 8.4 KB JSON answer at once;
//   echo-timer   the same after a 4 ms timer (a request's wait for the database, without one);
//   echo-pg      the same after `SELECT pg_sleep(0.004)` through node-postgres;
//   runrequest   the push through database.js's runRequest (no routing, tokens, logs, metrics).
// Runs inside a cluster (PG* set) with a database made as server_push_ab.sh makes its own:
//   node bench/server-push-cost.mjs --db DB [--server cli|echo|echo-timer|echo-pg|runrequest]
//        [--way http|sql] [--seconds 5] [--warmup 2] [--cli path/to/cli.js]
import fs from "node:fs";
import http from "node:http";
import { parseArgs } from "node:util";

import { PUSH_CLAIMS, adminUrl, checkPush, httpPusher, pg, pushBatches, sqlPusher, startServerCommand } from "./server-bench-common.mjs";

if (process.argv.at(-2) === "floor") {
  // a floor server (started by startServerCommand: the mode is the last argument)
  const mode = process.argv.at(-1);
  const { runRequest, apiCallWithBody } = await import(new URL("../js/packages/server/dist/database.js", import.meta.url).href);
  const results = Array.from({ length: 50 }, (_, i) => ({ realId: 442501 + i, tempId: `temp_floor_${i}`, success: true, version: 1, entityId: 442501 + i, operation: "create", entityType: "clients", operationId: i }));
  const canned = Buffer.from(`{"failed": 0, "results": ${JSON.stringify(results)}}`);
  const pool = new pg.Pool({ connectionString: process.env.SMARTSYNC_DATABASE_URL, max: 2 });
  const identity = { role: "web_user", claims: { ...PUSH_CLAIMS, client_id: `floor-${process.pid}` }, method: "POST", path: "/api/sync/push", headers: { host: "127.0.0.1" } };
  const server = http.createServer({ noDelay: true, keepAliveTimeout: 5000 }, (req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      let out = canned;
      if (mode === "echo-timer") await new Promise((r) => setTimeout(r, 4));
      else if (mode === "echo-pg") await pool.query("SELECT pg_sleep(0.004)");
      else if (mode === "runrequest") {
        out = Buffer.from(await runRequest(pool, "api", identity, { readOnly: false, statementTimeoutMs: 10000 }, apiCallWithBody("api", "sync_push", body)));
      }
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": String(out.byteLength) });
      res.end(out);
    });
  });
  server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ msg: "listening", port: server.address().port })));
  process.on("SIGTERM", () => process.exit(0));
} else {
  const { values } = parseArgs({
    options: {
      db: { type: "string" },
      server: { type: "string", default: "cli" },
      way: { type: "string", default: "http" },
      seconds: { type: "string", default: "5" },
      warmup: { type: "string", default: "2" },
      cli: { type: "string", default: new URL("../js/packages/server/dist/cli.js", import.meta.url).pathname },
    },
  });
  if (values.db === undefined) throw new Error("give --db");
  const db = values.db;
  const server =
    values.way !== "http"
      ? null
      : values.server === "cli"
        ? await startServerCommand({ cli: values.cli, db, args: ["--signal", "none", "--pool-size", "2"] })
        : await startServerCommand({ cli: new URL(import.meta.url).pathname, db, args: ["floor", values.server] });
  const device = `cost-${process.pid}`;
  const payload = pushBatches(50);
  const client = server === null ? await sqlPusher(db, device) : await httpPusher(server.port, device);
  const admin = new pg.Client({ connectionString: adminUrl(db) });
  await admin.connect();
  let t0 = performance.now();
  while (performance.now() - t0 < Number(values.warmup) * 1000) checkPush(await client.push(payload(device)));
  const ns = (path) => Number(fs.readFileSync(path, "utf8").split(" ")[0]);
  const backends = (await admin.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")).rows.map((r) => r.pid);
  const snapshot = () => {
    const s = { backends: backends.reduce((a, p) => a + ns(`/proc/${p}/schedstat`), 0), client: ns(`/proc/${process.pid}/schedstat`) };
    if (server !== null) {
      s.main = ns(`/proc/${server.pid}/task/${server.pid}/schedstat`);
      s.all = fs.readdirSync(`/proc/${server.pid}/task`).reduce((a, t) => a + ns(`/proc/${server.pid}/task/${t}/schedstat`), 0);
      s.wakeups = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(fs.readFileSync(`/proc/${server.pid}/task/${server.pid}/status`, "utf8"))[1]);
    }
    return s;
  };
  const s0 = snapshot();
  let n = 0;
  t0 = performance.now();
  while (performance.now() - t0 < Number(values.seconds) * 1000) {
    checkPush(await client.push(payload(device)));
    n++;
  }
  const wall = performance.now() - t0;
  const s1 = snapshot();
  const per = (k, unit = 1e6) => Number(((s1[k] - s0[k]) / n / unit).toFixed(3));
  const out = { way: values.way, server: server === null ? null : values.server, pushes: n, wallMs: Number((wall / n).toFixed(3)), clientCpuMs: per("client"), backendCpuMs: per("backends") };
  if (server !== null) Object.assign(out, { serverMainCpuMs: per("main"), serverAllCpuMs: per("all"), serverWakeups: per("wakeups", 1) });
  console.log(JSON.stringify(out));
  await client.close();
  await admin.end();
  if (server !== null) await server.stop();
}
