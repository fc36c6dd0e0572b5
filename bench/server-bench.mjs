// @smartsync/server benchmarks, run by bench/bench_server.sh inside a cluster (PG* set,
// database prepared): the server is the built command (js/packages/server/dist/cli.js)
// in a process of its own, logged in as authenticator; this process is the clients.
//
//   node bench/server-bench.mjs latency --streams 1000 --commits 100 --signal poll
//     commit-to-event latency at the client: N live streams of one tenant; a writer
//     updates one row by plain SQL, one commit at a time; for every commit and every
//     stream, the time from the UPDATE's start to the `changed` event's arrival.
//     Each gap between commits has a random part (--gap-jitter), so that commits do not
//     fall at the same point of a poll's period; the first and last stream's times are
//     reported too. --reader node (default): the streams are bare sockets of this Node
//     process, which also runs the writer; --reader c: they are read by bench/live_reader.c
//     (epoll, one process, compiled by bench_server.sh; BENCH_LIVE_READER names it), whose
//     cost per event is a recv() and a memmem(), so the figures are more the server's own.
//     --workers N runs the server with --workers N (node:cluster).
//   node bench/server-bench.mjs idle --tenants 100 --writes 200 --seconds 10
//     what an idle server costs: one stream in each of N tenants, CPU per second of the
//     server and of its signal connection's backend (optionally with commits elsewhere).
//   node bench/server-bench.mjs push --seconds 5 --rounds 5 --batch 50 --clients 1 --warmup 2
//     push throughput: the same 50-operation batches through POST /api/sync/push, through
//     direct SQL calls of smartsync.sync_push (same driver, the context as settings), and
//     through api.sync_push in PostgREST's transaction (same driver, no HTTP), interleaved
//     rounds after an unmeasured warm-up of each way; ratios HTTP / SQL and HTTP / api per round.
import fs from "node:fs";
import net from "node:net";
import { parseArgs } from "node:util";

import * as common from "./server-bench-common.mjs";

const { PASSWORD, PUSH_CLAIMS, cpuMs, httpPusher, pg, sign } = common;
const DB = process.env.PGDATABASE ?? "postgres";
// the server command: the tree's build, or another build to compare (BENCH_SERVER_CLI)
const SERVER_CLI = process.env.BENCH_SERVER_CLI ?? new URL("../js/packages/server/dist/cli.js", import.meta.url).pathname;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    streams: { type: "string", default: "1" },
    commits: { type: "string", default: "100" },
    signal: { type: "string", default: "poll" },
    "poll-interval": { type: "string", default: "1" },
    reader: { type: "string", default: "node" },
    workers: { type: "string", default: "1" },
    gap: { type: "string", default: "60" },
    "gap-jitter": { type: "string", default: "20" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "5" },
    batch: { type: "string", default: "50" },
    clients: { type: "string", default: "1" },
    tenants: { type: "string", default: "1" },
    writes: { type: "string", default: "0" },
    warmup: { type: "string", default: "2" },
  },
});

const databaseUrl = (user, password) => common.databaseUrl(DB, user, password);

/** Starts the server command; resolves with its port and a stop function. */
const startServer = (extra) =>
  common.startServerCommand({
    cli: SERVER_CLI,
    db: DB,
    args: extra,
    env: { SMARTSYNC_MAX_STREAMS: "20000", SMARTSYNC_POOL_SIZE: "8" },
    nodeArgs: (process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean),
  });

/** CPU time of the server command: its process and, with --workers, its worker processes. */
function serverCpuMs(pid) {
  let total = cpuMs(pid);
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      if (Number(stat.split(") ")[1].split(" ")[1]) === pid) total += cpuMs(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function latency() {
  const streams = Number(values.streams);
  const commits = Number(values.commits);
  const gap = Number(values.gap);
  const jitter = Number(values["gap-jitter"]);
  const args = ["--signal", values.signal, "--poll-interval", values["poll-interval"]];
  // a build without the option (BENCH_SERVER_CLI) runs as before with the default of 1
  if (values.workers !== "1") args.push("--workers", values.workers);
  const server = await startServer(args);
  const admin = new pg.Client({ connectionString: databaseUrl(process.env.PGUSER ?? "postgres", process.env.PGPASSWORD ?? "") });
  if (values.signal === "notify") {
    await admin.connect();
    await admin.query("SET smartsync.notify = on");
  } else {
    await admin.connect();
  }
  const jwt = await sign({ role: "web_user", tenant_id: "bench-live", practice_id: 1, sub: "1", client_id: "reader" });
  if (values.reader === "c") {
    await latencyC({ server, admin, jwt, streams, commits, gap, jitter });
    return;
  }
  if (values.reader !== "node") throw new Error(`--reader node or c, not ${values.reader}`);
  let current = -1;
  let started = 0;
  const samples = [];
  // per commit: when its UPDATE returned, when the first and the last stream heard it
  const commitsDone = [];
  const firsts = [];
  const lasts = [];
  let arrived = 0;
  let opened = 0;
  const sockets = [];
  // streams open in waves of 50 (each asks the database once, through a pool of 8). Each is a
  // bare socket that finds the events in the bytes it receives: the client's own cost per event
  // is a buffer search (it shares the 2 cores with the server; its CPU time is reported)
  const request = Buffer.from(
    `GET /api/sync/live HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nAuthorization: Bearer ${jwt}\r\n\r\n`,
  );
  const CHANGE = Buffer.from('"reason":"change"');
  const READY = Buffer.from("event: ready");
  const openOne = () =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port: server.port, noDelay: true });
      let ready = false;
      // the end of the previous read, in case a marker is split between two reads
      let tail = Buffer.alloc(0);
      socket.on("data", (chunk) => {
        const now = performance.now();
        const buf = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
        if (!ready) {
          if (!buf.subarray(0, 12).equals(Buffer.from("HTTP/1.1 200"))) {
            reject(new Error(`live: ${buf.toString("latin1", 0, 40)}`));
            socket.destroy();
            return;
          }
          if (buf.indexOf(READY) < 0) {
            tail = buf;
            return;
          }
          ready = true;
          opened++;
          resolve();
        }
        let at = buf.indexOf(CHANGE, 0);
        while (at >= 0) {
          if (current >= 0) {
            samples.push(now - started);
            if (arrived === 0) firsts.push(now - started);
            arrived++;
            if (arrived === streams) lasts.push(now - started);
          }
          at = buf.indexOf(CHANGE, at + CHANGE.length);
        }
        tail = buf.length > CHANGE.length ? buf.subarray(buf.length - CHANGE.length + 1) : buf;
      });
      socket.on("error", reject);
      socket.write(request);
      sockets.push(socket);
    });
  for (let i = 0; i < streams; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, streams - i) }, openOne));
  }
  // let the connection pokes settle
  await new Promise((r) => setTimeout(r, 500));
  const clientCpu0 = process.cpuUsage();
  const serverCpu0 = serverCpuMs(server.pid);
  const loop0 = performance.now();
  for (let c = 0; c < commits; c++) {
    arrived = 0;
    current = c;
    started = performance.now();
    await admin.query("UPDATE tenant_bench_live.clients SET name = $1 WHERE id = 1", [`v${c}`]);
    commitsDone.push(performance.now() - started);
    const deadline = performance.now() + 2000;
    while (arrived < streams && performance.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    if (arrived < streams) process.stderr.write(`commit ${c}: ${arrived} of ${streams} streams heard it\n`);
    // a random part, so that commits do not fall at the same point of a poll's period each time
    await new Promise((r) => setTimeout(r, gap + Math.random() * jitter));
  }
  const clientCpu = process.cpuUsage(clientCpu0);
  const serverCpu = serverCpuMs(server.pid) - serverCpu0;
  const loopMs = performance.now() - loop0;
  for (const s of sockets) s.destroy();
  await admin.end();
  await server.stop();
  const out = latencyReport({
    streams,
    commits,
    samples,
    commitsDone,
    firsts,
    lasts,
    clientCpuMs: (clientCpu.user + clientCpu.system) / 1000,
    serverCpuMs: serverCpu,
    loopMs,
  });
  out.loadavg = (await import("node:os")).loadavg()[0];
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** What latency() reports, from its samples (ms, every event of every stream), per-commit times and CPU. */
function latencyReport({ streams, commits, samples, commitsDone, firsts, lasts, clientCpuMs, serverCpuMs, loopMs, extra }) {
  samples.sort((a, b) => a - b);
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  return {
    streams,
    commits,
    signal: values.signal,
    reader: values.reader,
    workers: Number(values.workers),
    samples: samples.length,
    expected: streams * commits,
    p50: pct(samples, 50),
    p99: pct(samples, 99),
    max: samples.at(-1),
    // medians over the commits: the UPDATE's round trip, the first and the last stream's event
    commitP50: median(commitsDone),
    firstP50: median(firsts),
    firstQ: [0.1, 0.25, 0.5, 0.75, 0.9].map((q) => [...firsts].sort((x, y) => x - y)[Math.floor(q * firsts.length)].toFixed(1)).join(" "),
    lastP50: median(lasts),
    // CPU time per commit of the clients and the writer, and of the server
    clientCpuMsPerCommit: clientCpuMs / commits,
    serverCpuMsPerCommit: serverCpuMs / commits,
    loopMs,
    ...extra,
  };
}

/**
 * latency --reader c: the streams are read by bench/live_reader.c; this process is the writer.
 * Each commit's number goes to the reader before its UPDATE starts; the reader timestamps
 * every event with the same monotonic clock as process.hrtime, and says when every stream
 * has heard the commit (this process waits for that line, without polling). The client CPU
 * reported is the reader's and this process's (also readerCpuMsPerCommit, writerCpuMsPerCommit).
 */
async function latencyC({ server, admin, jwt, streams, commits, gap, jitter }) {
  const { spawn } = await import("node:child_process");
  const { createInterface } = await import("node:readline");
  const bin = process.env.BENCH_LIVE_READER;
  if (bin === undefined) throw new Error("--reader c needs BENCH_LIVE_READER (bench_server.sh compiles bench/live_reader.c)");
  const reader = spawn(bin, [String(server.port), String(streams)], {
    env: { LIVE_READER_TOKEN: jwt },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => reader.once("exit", resolve));
  const lines = createInterface({ input: reader.stdout });
  const linesClosed = new Promise((resolve) => lines.once("close", resolve));
  let onLine = null;
  const events = [];
  lines.on("line", (line) => {
    if (onLine !== null) onLine(line);
    else events.push(line);
  });
  const nextLine = () =>
    new Promise((resolve, reject) => {
      if (events.length > 0) return resolve(events.shift());
      onLine = (line) => {
        onLine = null;
        resolve(line);
      };
      exited.then((code) => reject(new Error(`live_reader exited with ${code}`)));
    });
  const first = await nextLine();
  if (first !== "ready") throw new Error(`live_reader: ${first}`);
  await new Promise((r) => setTimeout(r, 500));
  const heard = new Set();
  lines.removeAllListeners("line");
  const tail = [];
  let waiter = null;
  lines.on("line", (line) => {
    if (line.startsWith("heard ")) {
      heard.add(Number(line.slice(6)));
      waiter?.();
    } else tail.push(line);
  });
  const starts = [];
  const commitsDone = [];
  const clientCpu0 = process.cpuUsage();
  const readerCpu0 = cpuMs(reader.pid);
  const serverCpu0 = serverCpuMs(server.pid);
  const loop0 = performance.now();
  for (let c = 0; c < commits; c++) {
    reader.stdin.write(`${c}\n`);
    const started = process.hrtime.bigint();
    starts.push(started);
    await admin.query("UPDATE tenant_bench_live.clients SET name = $1 WHERE id = 1", [`v${c}`]);
    commitsDone.push(Number(process.hrtime.bigint() - started) / 1e6);
    // woken by the reader's "heard" line (no polling: this process shares the cores), or after 2 s
    if (!heard.has(c)) {
      let timer;
      await new Promise((r) => {
        waiter = r;
        timer = setTimeout(r, 2000);
      });
      clearTimeout(timer);
      waiter = null;
    }
    if (!heard.has(c)) process.stderr.write(`commit ${c}: not every stream heard it\n`);
    await new Promise((r) => setTimeout(r, gap + Math.random() * jitter));
  }
  const clientCpu = process.cpuUsage(clientCpu0);
  const readerCpu = cpuMs(reader.pid) - readerCpu0;
  const serverCpu = serverCpuMs(server.pid) - serverCpu0;
  const loopMs = performance.now() - loop0;
  reader.stdin.end();
  const code = await exited;
  await linesClosed;
  if (code !== 0) throw new Error(`live_reader exited with ${code}`);
  const samples = [];
  const firsts = new Array(commits).fill(Infinity);
  const lasts = new Array(commits).fill(0);
  const counts = new Array(commits).fill(0);
  for (const line of tail) {
    const [c, ns] = line.split(" ");
    const ms = Number(BigInt(ns) - starts[Number(c)]) / 1e6;
    samples.push(ms);
    firsts[c] = Math.min(firsts[c], ms);
    lasts[c] = Math.max(lasts[c], ms);
    counts[c]++;
  }
  await admin.end();
  await server.stop();
  const out = latencyReport({
    streams,
    commits,
    samples,
    commitsDone,
    firsts: firsts.filter((f, c) => counts[c] > 0),
    lasts: lasts.filter((_, c) => counts[c] === streams),
    clientCpuMs: (clientCpu.user + clientCpu.system) / 1000 + readerCpu,
    serverCpuMs: serverCpu,
    loopMs,
    extra: { readerCpuMsPerCommit: readerCpu / commits, writerCpuMsPerCommit: (clientCpu.user + clientCpu.system) / 1000 / commits },
  });
  out.loadavg = (await import("node:os")).loadavg()[0];
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function push() {
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const batch = Number(values.batch);
  const clients = Number(values.clients);
  const server = await startServer(["--signal", "none", "--pool-size", String(Math.max(clients, 2))]);
  const claims = PUSH_CLAIMS;
  const payload = common.pushBatches(batch);
  const check = common.checkPush;

  // one worker of each way per client: its own connection (or keep-alive socket) and device id
  async function worker(way, device) {
    if (way === "http") return httpPusher(server.port, device);
    if (way === "api") {
      // the api path without HTTP: PostgREST's transaction as authenticator, same driver
      const c = new pg.Client({ connectionString: databaseUrl("authenticator", PASSWORD) });
      await c.connect();
      const jwtClaims = JSON.stringify({ ...claims, client_id: device });
      return {
        push: async (body) => {
          await c.query("BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE");
          await c.query(
            "SELECT set_config('search_path', '\"api\", \"public\"', true), set_config('role', 'web_user', true), set_config('request.jwt.claims', $1, true)",
            [jwtClaims],
          );
          const res = await c.query('SELECT "api"."sync_push"($1::jsonb)::text AS r', [body]);
          await c.query("COMMIT");
          return res.rows[0].r;
        },
        close: () => c.end(),
      };
    }
    // direct SQL: smartsync.sync_push with the context as smartsync.* settings (the extension's own caller)
    return common.sqlPusher(DB, device);
  }

  const ways = (process.env.BENCH_WAYS ?? "sql api http").split(" ");
  const rates = { sql: [], api: [], http: [] };
  let serverCpu = 0;
  let serverSys = 0;
  let httpPushes = 0;
  const ratios = { sql: [], api: [] };
  const vacuum = new pg.Client({ connectionString: databaseUrl(process.env.PGUSER ?? "postgres", process.env.PGPASSWORD ?? "") });
  await vacuum.connect();
  // every way warms up first, unmeasured: a deployed server has compiled its hot paths and
  // grown its heap long before; a fresh one would spend the first round doing so
  for (const way of ways) {
    const w = await worker(way, `${way}-warmup`);
    const t0 = performance.now();
    while (performance.now() - t0 < Number(values.warmup) * 1000) check(await w.push(payload(`${way}-warmup`)));
    await w.close();
  }
  for (let r = 0; r < rounds; r++) {
    for (const way of ways) {
      const workers = await Promise.all(Array.from({ length: clients }, (_, i) => worker(way, `${way}-${r}-${i}`)));
      let ops = 0;
      const cpu0 = way === "http" ? await cpuMs(server.pid) : 0;
      const sys0 = way === "http" ? await cpuMs(server.pid, "system") : 0;
      const t0 = performance.now();
      await Promise.all(
        workers.map(async (w, i) => {
          while (performance.now() - t0 < seconds * 1000) {
            check(await w.push(payload(`${way}-${r}-${i}`)));
            ops += batch;
          }
        }),
      );
      rates[way].push(ops / ((performance.now() - t0) / 1000));
      if (way === "http") {
        serverCpu += (await cpuMs(server.pid)) - cpu0;
        serverSys += (await cpuMs(server.pid, "system")) - sys0;
        httpPushes += ops / batch;
      }
      await Promise.all(workers.map((w) => w.close()));
    }
    ratios.sql.push(rates.http.at(-1) / rates.sql.at(-1));
    ratios.api.push(rates.http.at(-1) / rates.api.at(-1));
    await vacuum.query("VACUUM tenant_bench_push.clients, tenant_bench_push.sync_ledger, tenant_bench_push.sync_changes, tenant_bench_push.sync_id_map");
  }
  await vacuum.end();
  await server.stop();
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const sorted = (a) => [...a].sort((x, y) => x - y);
  process.stdout.write(
    `${JSON.stringify({
      batch,
      clients,
      rounds,
      seconds,
      sql: med(rates.sql),
      api: med(rates.api),
      http: med(rates.http),
      httpVsSql: sorted(ratios.sql),
      httpVsApi: sorted(ratios.api),
      serverCpuMsPerPush: serverCpu / httpPushes,
      serverSystemCpuMsPerPush: serverSys / httpPushes,
    })}\n`,
  );
}

/**
 * What an idle server costs: one stream in each of N tenants (bench-idle-1..N, provisioned
 * here when missing), nothing committed to them; for --seconds, the CPU time of the server
 * process and of its signal connection's backend, per second. --writes N commits N times a
 * second to a table of no tenant, so the database's looks do find completed transactions
 * and probe the watched tenants' logs.
 */
async function idle() {
  const tenants = Number(values.tenants);
  const seconds = Number(values.seconds);
  const writes = Number(values.writes);
  const admin = new pg.Client({ connectionString: databaseUrl(process.env.PGUSER ?? "postgres", process.env.PGPASSWORD ?? "") });
  await admin.connect();
  await admin.query("SET client_min_messages = warning");
  for (let i = 1; i <= tenants; i++) {
    const t = `bench-idle-${i}`;
    const known = await admin.query("SELECT 1 FROM smartsync.tenants WHERE tenant_id = $1", [t]);
    if (known.rowCount === 0) await admin.query("SELECT smartsync.provision_tenant($1)", [t]);
  }
  // the writes elsewhere: a table of no tenant
  await admin.query("CREATE TABLE IF NOT EXISTS bench_idle_writes (n bigint NOT NULL)");
  await admin.query("INSERT INTO bench_idle_writes SELECT 0 WHERE NOT EXISTS (SELECT FROM bench_idle_writes)");
  const server = await startServer(["--signal", values.signal, "--poll-interval", values["poll-interval"]]);
  const sockets = [];
  for (let i = 1; i <= tenants; i++) {
    const jwt = await sign({ role: "web_user", tenant_id: `bench-idle-${i}`, practice_id: 1, sub: "1", client_id: "idle" });
    await new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port: server.port, noDelay: true });
      socket.on("data", (chunk) => {
        if (chunk.includes("event: ready")) resolve();
        else if (!chunk.includes("HTTP/1.1 200") && sockets.length === i - 1) reject(new Error(chunk.toString("latin1", 0, 60)));
      });
      socket.on("error", reject);
      socket.write(`GET /api/sync/live HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${jwt}\r\n\r\n`);
      sockets.push(socket);
    });
  }
  const backend = await admin.query(
    "SELECT pid FROM pg_stat_activity WHERE application_name = 'smartsync-server signal' AND datname = current_database()",
  );
  if (backend.rowCount !== 1) throw new Error(`expected one signal connection, found ${backend.rowCount}`);
  const pid = backend.rows[0].pid;
  await new Promise((r) => setTimeout(r, 1000));
  const server0 = await cpuMs(server.pid);
  const backend0 = await cpuMs(pid);
  const t0 = performance.now();
  let committed = 0;
  while (performance.now() - t0 < seconds * 1000) {
    if (writes > 0) {
      await admin.query("UPDATE bench_idle_writes SET n = n + 1");
      committed++;
      const due = t0 + (committed * 1000) / writes;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    } else {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const elapsed = (performance.now() - t0) / 1000;
  const out = {
    signal: values.signal,
    pollIntervalMs: Number(values["poll-interval"]),
    tenants,
    writesPerSecond: committed / elapsed,
    serverCpuMsPerSecond: ((await cpuMs(server.pid)) - server0) / elapsed,
    databaseCpuMsPerSecond: ((await cpuMs(pid)) - backend0) / elapsed,
    loadavg: (await import("node:os")).loadavg()[0],
  };
  for (const s of sockets) s.destroy();
  await server.stop();
  await admin.end();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (positionals[0] === "latency") await latency();
else if (positionals[0] === "push") await push();
else if (positionals[0] === "idle") await idle();
else {
  process.stderr.write("usage: node bench/server-bench.mjs latency|push|idle [options]\n");
  process.exit(2);
}
