/**
 * The smartsync-server command (the built dist/cli.js, as npx runs it):
 * flags and environment variables, refusal of a bad configuration, and a
 * graceful stop on SIGTERM that ends live streams.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, inject, test } from "vitest";
import { parseCommandLine } from "../src/cli.js";
import { admin, call, closeAdmin, openLive, SECRET, tablet, token } from "./helpers.js";

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));

/** The authenticator's connection string (a socket directory goes into ?host=). */
function databaseUrl(): string {
  const c = inject("db").authenticator;
  const user = `${encodeURIComponent(String(c.user))}:${encodeURIComponent(String(c.password))}`;
  const host = String(c.host ?? "localhost");
  if (host.startsWith("/")) {
    return `postgresql://${user}@/${c.database}?host=${encodeURIComponent(host)}&port=${c.port ?? 5432}`;
  }
  return `postgresql://${user}@${host}:${c.port ?? 5432}/${c.database}`;
}

afterAll(async () => {
  await closeAdmin();
});

describe("arguments", () => {
  test("flags win over environment variables; DATABASE_URL is a fallback", () => {
    const r = parseCommandLine(["--port", "4000", "--signal", "notify"], {
      DATABASE_URL: "postgres://authenticator@db/clinic",
      SMARTSYNC_JWT_SECRET: SECRET,
      PORT: "5000",
      SMARTSYNC_BASE_PATH: "/sync",
      SMARTSYNC_POLL_INTERVAL: "25",
    });
    expect(r.help).toBe(false);
    if (r.help) return;
    expect(r.port).toBe(4000);
    expect(r.options).toMatchObject({
      databaseUrl: "postgres://authenticator@db/clinic",
      jwt: { secret: SECRET },
      basePath: "/sync",
      live: { signal: "notify", pollIntervalMs: 25 },
    });
  });

  test("--jwt-public-key reads the file", () => {
    const r = parseCommandLine(["--database-url", "postgres://x@y/z", "--jwt-public-key", "/keys/pub.pem"], {}, (p) => `PEM of ${p}`);
    expect(!r.help && r.options.jwt.publicKey).toBe("PEM of /keys/pub.pem");
  });

  test("--help; a missing database URL, an unknown flag, a bad number: exit 2 with the usage", () => {
    const help = spawnSync("node", [CLI, "--help"], { encoding: "utf8" });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("Usage: smartsync-server --database-url URL");
    for (const [args, message] of [
      [["--jwt-secret", SECRET], "--database-url (or SMARTSYNC_DATABASE_URL) is required"],
      [["--database-url", "postgres://x@y/z", "--jwt-secret", SECRET, "--colour", "blue"], "Unknown option '--colour'"],
      [["--database-url", "postgres://x@y/z", "--jwt-secret", SECRET, "--port", "eighty"], "--port must be a whole number"],
      [["--database-url", "postgres://x@y/z", "--jwt-secret", "short"], "at least 32 characters"],
    ] as const) {
      const r = spawnSync("node", [CLI, ...args], { encoding: "utf8", env: { PATH: process.env.PATH } });
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr).toContain("Usage:");
    }
  });
});

describe("running", () => {
  test("configured by environment variables; SIGTERM ends streams and exits 0", async () => {
    const child: ChildProcess = spawn("node", [CLI], {
      env: {
        PATH: process.env.PATH,
        SMARTSYNC_DATABASE_URL: databaseUrl(),
        SMARTSYNC_JWT_SECRET: SECRET,
        PORT: "0",
        SMARTSYNC_HOST: "127.0.0.1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const logs: Array<Record<string, unknown>> = [];
    let out = "";
    const listening = new Promise<number>((resolve, reject) => {
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        let nl: number;
        while ((nl = out.indexOf("\n")) >= 0) {
          const line = out.slice(0, nl);
          out = out.slice(nl + 1);
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === "listening") resolve(entry.port as number);
        }
      });
      child.once("exit", (code) => reject(new Error(`exited with ${code}`)));
    });
    const port = await listening;
    const base = `http://127.0.0.1:${port}/api/sync`;
    try {
      expect((await call(`${base}/health`, undefined)).body).toMatchObject({ status: "ok", signal: "poll" });
      const jwt = await token(tablet);
      expect((await call(`${base}/pull?limit=1`, jwt)).status).toBe(200);
      const live = await openLive(`${base}/live`, jwt);
      await live.next();
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      await live.ended();
      expect(await exited).toBe(0);
      const msgs = logs.map((l) => l.msg);
      expect(msgs).toEqual(expect.arrayContaining(["listening", "request", "signal", "shutting down", "closed"]));
      expect(JSON.stringify(logs)).not.toContain(jwt);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("--workers", () => {
  test("--workers and SMARTSYNC_WORKERS: a number of at least 1, or auto (one per core)", () => {
    const env = { DATABASE_URL: "postgres://x@y/z", SMARTSYNC_JWT_SECRET: SECRET };
    const workers = (argv: string[], e: Record<string, string> = env) => {
      const r = parseCommandLine(argv, e);
      return r.help ? undefined : r.workers;
    };
    expect(workers([])).toBe(1);
    expect(workers(["--workers", "3"])).toBe(3);
    expect(workers([], { ...env, SMARTSYNC_WORKERS: "2" })).toBe(2);
    expect(workers(["--workers", "auto"])).toBe(availableParallelism());
    expect(() => workers(["--workers", "0"])).toThrow("--workers must be at least 1");
    expect(() => workers(["--workers", "many"])).toThrow("--workers must be a whole number");
  });

  test("a configuration the workers refuse at start: exit 2 with its message, as without workers", () => {
    const r = spawnSync("node", [CLI, "--database-url", "postgres://x@y/z", "--jwt-secret", "short", "--workers", "2"], {
      encoding: "utf8",
      env: { PATH: process.env.PATH },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("at least 32 characters");
    expect(r.stdout).toContain("a worker ended; stopping the others");
  });

  /** Starts the command with --workers 2; resolves when both workers listen. */
  async function startWorkers(): Promise<{ child: ChildProcess; logs: Array<Record<string, unknown>>; port: number; pids: number[] }> {
    const child = spawn("node", [CLI, "--workers", "2", "--signal", "poll"], {
      env: { PATH: process.env.PATH, SMARTSYNC_DATABASE_URL: databaseUrl(), SMARTSYNC_JWT_SECRET: SECRET, PORT: "0", SMARTSYNC_HOST: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const logs: Array<Record<string, unknown>> = [];
    let out = "";
    const started = await new Promise<{ port: number; pids: number[] }>((resolve, reject) => {
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        let nl: number;
        while ((nl = out.indexOf("\n")) >= 0) {
          const entry = JSON.parse(out.slice(0, nl)) as Record<string, unknown>;
          out = out.slice(nl + 1);
          logs.push(entry);
          if (entry.msg === "workers listening") resolve({ port: entry.port as number, pids: String(entry.pids).split(",").map(Number) });
        }
      });
      child.once("exit", (code) => reject(new Error(`exited with ${code}`)));
    });
    return { child, logs, ...started };
  }

  /** Waits (up to 5 s) until the logs hold what wanted() looks for (a worker writes its lines every 50 ms). */
  async function logged(logs: Array<Record<string, unknown>>, wanted: (logs: Array<Record<string, unknown>>) => boolean): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!wanted(logs) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  test("two servers share the port: streams of both hear a change, /metrics adds them up, SIGTERM ends both and exits 0", async () => {
    const { child, logs, port, pids } = await startWorkers();
    const base = `http://127.0.0.1:${port}/api/sync`;
    const streams: Awaited<ReturnType<typeof openLive>>[] = [];
    try {
      expect(pids).toHaveLength(2);
      // each worker writes its lines every 50 ms: the primary's may come first
      const listening = (l: Array<Record<string, unknown>>) => l.filter((e) => e.msg === "listening").map((e) => e.worker).sort();
      await logged(logs, (l) => listening(l).length === 2);
      expect(listening(logs)).toEqual([1, 2]);
      const jwt = await token(tablet);
      const cursor = (await call(`${base}/pull`, jwt)).body.cursor as string;
      for (let i = 0; i < 4; i++) {
        const live = await openLive(`${base}/live?cursor=${encodeURIComponent(cursor)}`, jwt);
        streams.push(live);
        expect((await live.next()).event).toBe("ready");
      }
      // the connections were handed out to both workers
      const liveLogs = (l: Array<Record<string, unknown>>) => l.filter((e) => e.msg === "request" && e.route === "/live");
      await logged(logs, (l) => liveLogs(l).length === 4);
      expect(new Set(liveLogs(logs).map((e) => e.worker))).toEqual(new Set([1, 2]));

      // each worker's own signal connection sees the commit and pokes its streams
      await admin().query("INSERT INTO tenant_happy_paws.clients (practice_id, name) VALUES (1, 'Two Workers')");
      for (const live of streams) {
        const e = await live.next();
        expect(e.event).toBe("changed");
        expect(JSON.parse(e.data)).toMatchObject({ reason: "change" });
      }

      // whichever worker answers, /metrics counts the streams and requests of both
      for (let i = 0; i < 2; i++) {
        const metrics = await fetch(`${base}/metrics`).then((r) => r.text());
        expect(metrics).toMatch(/^smartsync_live_streams 4$/m);
        expect(metrics).toMatch(/^smartsync_http_requests_total\{route="\/live",method="GET",status="200"\} 4$/m);
      }

      const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
      child.kill("SIGTERM");
      for (const live of streams) await live.ended();
      expect(await exited).toBe(0);
      expect(logs.filter((l) => l.msg === "shutting down").map((l) => l.worker).sort()).toEqual([1, 2]);
      expect(pids.filter(alive)).toEqual([]);
      expect(JSON.stringify(logs)).not.toContain(jwt);
    } finally {
      for (const live of streams) await live.close().catch(() => undefined);
      child.kill("SIGKILL");
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
    }
  });

  test("a worker that ends on its own stops the other, and the command exits 1", async () => {
    const { child, logs, pids } = await startWorkers();
    try {
      const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
      process.kill(pids[0] as number, "SIGKILL");
      expect(await exited).toBe(1);
      expect(pids.filter(alive)).toEqual([]);
      expect(logs.map((l) => l.msg)).toContain("a worker ended; stopping the others");
    } finally {
      child.kill("SIGKILL");
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
    }
  });
});
