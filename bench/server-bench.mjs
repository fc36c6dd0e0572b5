// @smartsync/server benchmarks, run by bench/bench_server.sh inside a cluster (PG* set,
// database prepared): the server is the built command (js/packages/server/dist/cli.js)
// in a process of its own, logged in as authenticator; this process is the clients.
//
//   node bench/server-bench.mjs latency --streams 1000 --commits 100 --signal poll
//     commit-to-event latency at the client: N live streams of one tenant; a writer
//     updates one row by plain SQL, one commit at a time; for every commit and every
//     stream, the time from the UPDATE's start to the `changed` event's arrival.
//   node bench/server-bench.mjs push --seconds 5 --rounds 5 --batch 50 --clients 1
//     push throughput: the same 50-operation batches through POST /api/sync/push, through
//     direct SQL calls of smartsync.sync_push (same driver, the context as settings), and
//     through api.sync_push in PostgREST's transaction (same driver, no HTTP), interleaved
//     rounds; ratios HTTP / SQL and HTTP / api per round.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import http from "node:http";
import { parseArgs } from "node:util";

const require = createRequire(new URL("../js/packages/server/package.json", import.meta.url));
const pg = require("pg");
const { SignJWT } = await import(require.resolve("jose"));

const SECRET = "bench-secret-bench-secret-bench-secret";
const PASSWORD = process.env.BENCH_AUTHENTICATOR_PASSWORD ?? "bench-authenticator";
const DB = process.env.PGDATABASE ?? "postgres";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    streams: { type: "string", default: "1" },
    commits: { type: "string", default: "100" },
    signal: { type: "string", default: "poll" },
    "poll-interval": { type: "string", default: "10" },
    gap: { type: "string", default: "60" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "5" },
    batch: { type: "string", default: "50" },
    clients: { type: "string", default: "1" },
  },
});

function databaseUrl(user, password) {
  const host = process.env.PGHOST ?? "localhost";
  const port = process.env.PGPORT ?? "5432";
  const auth = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return host.startsWith("/")
    ? `postgresql://${auth}@/${DB}?host=${encodeURIComponent(host)}&port=${port}`
    : `postgresql://${auth}@${host}:${port}/${DB}`;
}

const sign = (claims) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setExpirationTime("2h").sign(new TextEncoder().encode(SECRET));

/** Starts the server command; resolves with its port and a stop function. */
async function startServer(extra) {
  const child = spawn(
    "node",
    [new URL("../js/packages/server/dist/cli.js", import.meta.url).pathname, "--port", "0", "--host", "127.0.0.1", ...extra],
    {
      env: {
        PATH: process.env.PATH,
        SMARTSYNC_DATABASE_URL: databaseUrl("authenticator", PASSWORD),
        SMARTSYNC_JWT_SECRET: SECRET,
        SMARTSYNC_LOG_LEVEL: "info",
        SMARTSYNC_MAX_STREAMS: "20000",
        SMARTSYNC_POOL_SIZE: "8",
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  // the first log line says where it listens; the rest (one per request, as deployed) is read and dropped
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
      else reject(new Error(`unexpected first log line ${JSON.stringify(entry)}`));
    });
    child.once("exit", (code) => reject(new Error(`the server exited with ${code}`)));
  });
  return {
    port,
    pid: child.pid,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", resolve);
        child.kill("SIGTERM");
      }),
  };
}

/** CPU time (user + system) a process has used, in milliseconds (Linux /proc, 100 ticks a second). */
async function cpuMs(pid) {
  const fs = await import("node:fs/promises");
  const f = (await fs.readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function latency() {
  const streams = Number(values.streams);
  const commits = Number(values.commits);
  const gap = Number(values.gap);
  const args = ["--signal", values.signal, "--poll-interval", values["poll-interval"]];
  const server = await startServer(args);
  const admin = new pg.Client({ connectionString: databaseUrl(process.env.PGUSER ?? "postgres", process.env.PGPASSWORD ?? "") });
  if (values.signal === "notify") {
    await admin.connect();
    await admin.query("SET smartsync.notify = on");
  } else {
    await admin.connect();
  }
  const jwt = await sign({ role: "web_user", tenant_id: "bench-live", practice_id: 1, sub: "1", client_id: "reader" });
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  let current = -1;
  let started = 0;
  const samples = [];
  let arrived = 0;
  let opened = 0;
  const sockets = [];
  // streams open in waves of 50 (each asks the database once, through a pool of 8)
  const openOne = () =>
    new Promise((resolve, reject) => {
      const req = http.get(
        { host: "127.0.0.1", port: server.port, path: "/api/sync/live", agent, headers: { authorization: `Bearer ${jwt}` } },
        (res) => {
          if (res.statusCode !== 200) return reject(new Error(`live: ${res.statusCode}`));
          let buf = "";
          let ready = false;
          res.setEncoding("utf8");
          res.on("data", (chunk) => {
            const now = performance.now();
            buf += chunk;
            let sep;
            while ((sep = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, sep);
              buf = buf.slice(sep + 2);
              if (block.includes("event: ready") && !ready) {
                ready = true;
                opened++;
                resolve();
              } else if (block.includes("event: changed") && block.includes('"reason":"change"') && current >= 0) {
                samples.push(now - started);
                arrived++;
              }
            }
          });
        },
      );
      req.on("error", reject);
      sockets.push(req);
    });
  for (let i = 0; i < streams; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, streams - i) }, openOne));
  }
  // let the connection pokes settle
  await new Promise((r) => setTimeout(r, 500));
  for (let c = 0; c < commits; c++) {
    arrived = 0;
    current = c;
    started = performance.now();
    await admin.query("UPDATE tenant_bench_live.clients SET name = $1 WHERE id = 1", [`v${c}`]);
    const deadline = performance.now() + 2000;
    while (arrived < streams && performance.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    if (arrived < streams) process.stderr.write(`commit ${c}: ${arrived} of ${streams} streams heard it\n`);
    await new Promise((r) => setTimeout(r, gap));
  }
  for (const s of sockets) s.destroy();
  await admin.end();
  await server.stop();
  samples.sort((a, b) => a - b);
  const out = {
    streams,
    commits,
    signal: values.signal,
    samples: samples.length,
    expected: streams * commits,
    p50: pct(samples, 50),
    p99: pct(samples, 99),
    max: samples.at(-1),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function push() {
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const batch = Number(values.batch);
  const clients = Number(values.clients);
  const server = await startServer(["--signal", "none", "--pool-size", String(Math.max(clients, 2))]);
  const claims = { role: "web_user", tenant_id: "bench-push", practice_id: 1, sub: "1", permissions: ["clients:create"] };
  let n = 0;
  const payload = (client) => {
    const ops = [];
    for (let i = 0; i < batch; i++) {
      n++;
      ops.push({
        id: n,
        operation: "create",
        entityType: "clients",
        entityId: `temp_${client}_${n}`,
        data: { name: `Client ${n}`, email: `c${n}@example.com` },
        timestamp: 1731230000000,
      });
    }
    return JSON.stringify({ operations: ops, clientTimestamp: 1731230005000 });
  };
  const check = (text) => {
    if (!text.includes('"failed": 0')) throw new Error(text.slice(0, 300));
  };

  // one worker of each way per client: its own connection (or keep-alive socket) and device id
  async function worker(way, device) {
    if (way === "http") {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const jwt = await sign({ ...claims, client_id: device });
      return {
        push: (body) =>
          new Promise((resolve, reject) => {
            const req = http.request(
              {
                host: "127.0.0.1",
                port: server.port,
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
    const c = new pg.Client({ connectionString: databaseUrl(process.env.PGUSER ?? "postgres", process.env.PGPASSWORD ?? "") });
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

  const ways = ["sql", "api", "http"];
  const rates = { sql: [], api: [], http: [] };
  let serverCpu = 0;
  let httpPushes = 0;
  const ratios = { sql: [], api: [] };
  const vacuum = new pg.Client({ connectionString: databaseUrl(process.env.PGUSER ?? "postgres", process.env.PGPASSWORD ?? "") });
  await vacuum.connect();
  for (let r = 0; r < rounds; r++) {
    for (const way of ways) {
      const workers = await Promise.all(Array.from({ length: clients }, (_, i) => worker(way, `${way}-${r}-${i}`)));
      let ops = 0;
      const cpu0 = way === "http" ? await cpuMs(server.pid) : 0;
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
    })}\n`,
  );
}

if (positionals[0] === "latency") await latency();
else if (positionals[0] === "push") await push();
else {
  process.stderr.write("usage: node bench/server-bench.mjs latency|push [options]\n");
  process.exit(2);
}
