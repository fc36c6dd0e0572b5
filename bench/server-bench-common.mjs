// What bench/server-bench.mjs and bench/server-push-ab.mjs share: the connection URLs, the
// tokens, starting a server command, a process's CPU time, and the push benchmark's batches
// and clients (HTTP and direct SQL).
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import http from "node:http";

const require = createRequire(new URL("../js/packages/server/package.json", import.meta.url));
export const pg = require("pg");
const { SignJWT } = await import(require.resolve("jose"));

export const SECRET = "bench-secret-bench-secret-bench-secret";
export const PASSWORD = process.env.BENCH_AUTHENTICATOR_PASSWORD ?? "bench-authenticator";

/** A connection URL of database db on the server PG* names. */
export function databaseUrl(db, user, password) {
  const host = process.env.PGHOST ?? "localhost";
  const port = process.env.PGPORT ?? "5432";
  const auth = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return host.startsWith("/")
    ? `postgresql://${auth}@/${db}?host=${encodeURIComponent(host)}&port=${port}`
    : `postgresql://${auth}@${host}:${port}/${db}`;
}

/** The same, as the PG* user (a superuser in the benchmarks' clusters). */
export const adminUrl = (db) => databaseUrl(db, process.env.PGUSER ?? "postgres", process.env.PGPASSWORD ?? "");

/** An HS256 token of claims, signed with the servers' secret. */
export const sign = (claims) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setExpirationTime("2h").sign(new TextEncoder().encode(SECRET));

/**
 * Starts a server command (cli, a dist/cli.js) on a free loopback port, logged in to database db
 * as authenticator; resolves with its port, pid and a stop function.
 */
export async function startServerCommand({ cli, db, args = [], env = {}, nodeArgs = [] }) {
  const child = spawn("node", [...nodeArgs, cli, "--port", "0", "--host", "127.0.0.1", ...args], {
    env: {
      PATH: process.env.PATH,
      SMARTSYNC_DATABASE_URL: databaseUrl(db, "authenticator", PASSWORD),
      SMARTSYNC_JWT_SECRET: SECRET,
      SMARTSYNC_LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  // the "listening" line says where it listens (with --workers, each worker's lines may come
  // first); the rest (one per request, as deployed) is read and dropped
  const port = await new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d) => {
      if (buf === null) return;
      buf += d;
      let nl;
      while (buf !== null && (nl = buf.indexOf("\n")) >= 0) {
        const entry = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (entry.msg === "listening") {
          buf = null;
          resolve(entry.port);
        } else if (entry.level === "error") reject(new Error(`the server logged ${JSON.stringify(entry)}`));
      }
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

/** CPU time (user, system or both) a process has used, in milliseconds (Linux /proc, 100 ticks a second). */
export function cpuMs(pid, part = "both") {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const user = Number(f[11]) * 10;
  const system = Number(f[12]) * 10;
  return part === "user" ? user : part === "system" ? system : user + system;
}

/** The push benchmark's identity: tenant bench-push, allowed to create clients. */
export const PUSH_CLAIMS = { role: "web_user", tenant_id: "bench-push", practice_id: 1, sub: "1", permissions: ["clients:create"] };

/** A maker of push bodies: each call, batch new creates of clients with temporary ids of device. */
export function pushBatches(batch) {
  let n = 0;
  return (device) => {
    const ops = [];
    for (let i = 0; i < batch; i++) {
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
  };
}

/** Throws unless a push response applied every operation. */
export function checkPush(text) {
  if (!text.includes('"failed": 0')) throw new Error(text.slice(0, 300));
}

/** A client of POST /api/sync/push on port, with its own keep-alive socket and device's token. */
export async function httpPusher(port, device) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const jwt = await sign({ ...PUSH_CLAIMS, client_id: device });
  return {
    push: (body) =>
      new Promise((resolve, reject) => {
        const req = http.request(
          {
            host: "127.0.0.1",
            port,
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

/** A direct SQL caller of smartsync.sync_push in database db: the context as smartsync.* settings (the extension's own caller). */
export async function sqlPusher(db, device) {
  const c = new pg.Client({ connectionString: adminUrl(db) });
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
