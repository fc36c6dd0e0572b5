/**
 * The smartsync-server command (the built dist/cli.js, as npx runs it):
 * flags and environment variables, refusal of a bad configuration, and a
 * graceful stop on SIGTERM that ends live streams.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, inject, test } from "vitest";
import { parseCommandLine } from "../src/cli.js";
import { call, closeAdmin, openLive, SECRET, tablet, token } from "./helpers.js";

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
