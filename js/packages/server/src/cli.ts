#!/usr/bin/env node
/**
 * smartsync-server: the handler on node:http.
 *
 *   smartsync-server --database-url postgres://authenticator:PASSWORD@localhost/clinic \
 *                    --jwt-secret "$JWT_SECRET" [--port 3000] [--base-path /api/sync]
 *
 * Every flag has an environment variable (flags win). SIGTERM and SIGINT
 * drain: the server stops accepting, running requests finish, live streams
 * end (clients reconnect elsewhere), then the process exits. With --workers N
 * (N > 1) the command is N such servers sharing the port (cluster.ts).
 */
import { readFileSync, realpathSync } from "node:fs";
import { availableParallelism } from "node:os";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { isWorker, joinCluster, runPrimary, workerId, workerLogger } from "./cluster.js";
import { ConfigError } from "./errors.js";
import { createSyncHandler, type SyncHandler } from "./handler.js";
import { createLogger, type LogLevel, type Logger } from "./logger.js";
import { serve, type NodeServer } from "./node-adapter.js";
import type { SyncHandlerOptions } from "./options.js";

/** flag -> [environment variable, description] */
const FLAGS = {
  "database-url": ["SMARTSYNC_DATABASE_URL", "connection string of the authenticator role (also DATABASE_URL)"],
  "jwt-secret": ["SMARTSYNC_JWT_SECRET", "HS256 secret, at least 32 characters (PostgREST's jwt-secret)"],
  "jwt-public-key": ["SMARTSYNC_JWT_PUBLIC_KEY", "file with the public key (PEM, or a JWK as JSON) for RS/PS/ES/EdDSA tokens"],
  "jwks-url": ["SMARTSYNC_JWKS_URL", "JWKS endpoint with the token issuer's public keys"],
  "jwt-audience": ["SMARTSYNC_JWT_AUDIENCE", "accept only tokens whose aud includes this"],
  "jwt-issuer": ["SMARTSYNC_JWT_ISSUER", "accept only tokens whose iss is this"],
  port: ["PORT", "port to listen on (default 3000)"],
  host: ["SMARTSYNC_HOST", "address to listen on (default 0.0.0.0)"],
  "base-path": ["SMARTSYNC_BASE_PATH", "path of the endpoints (default /api/sync)"],
  "api-schema": ["SMARTSYNC_API_SCHEMA", "schema setup_postgrest() made (default api)"],
  "pool-size": ["SMARTSYNC_POOL_SIZE", "database connections for requests (default 10)"],
  "statement-timeout": ["SMARTSYNC_STATEMENT_TIMEOUT", "statement_timeout of a request in ms (default 10000)"],
  "max-body-bytes": ["SMARTSYNC_MAX_BODY_BYTES", "largest request body (default 5242880)"],
  signal: ["SMARTSYNC_SIGNAL", "change signal for live streams: poll (default), notify or none"],
  "poll-interval": ["SMARTSYNC_POLL_INTERVAL", "ms between the database's looks for changes while a poll waits (default 1)"],
  heartbeat: ["SMARTSYNC_HEARTBEAT", "ms between live heartbeats (default 15000)"],
  "max-streams": ["SMARTSYNC_MAX_STREAMS", "most live streams (default 10000)"],
  "shutdown-timeout": ["SMARTSYNC_SHUTDOWN_TIMEOUT", "ms a shutdown waits for running requests (default 10000)"],
  "log-level": ["SMARTSYNC_LOG_LEVEL", "debug, info (default), warn, error or silent"],
  workers: ["SMARTSYNC_WORKERS", "server processes sharing the port, each with its own pool and signal: a number, or auto (one per core); default 1"],
} as const;

type Flag = keyof typeof FLAGS;

export function usage(): string {
  const lines = Object.entries(FLAGS).map(
    ([flag, [env, what]]) => `  --${flag.padEnd(18)} ${what}\n  ${"".padEnd(20)} (env ${env})`,
  );
  return (
    "Usage: smartsync-server --database-url URL (--jwt-secret S | --jwt-public-key FILE | --jwks-url URL) [options]\n\n" +
    "Serves smartsync's sync endpoints (push, pull, changed, conflicts, live, health, metrics) over HTTP.\n\n" +
    `${lines.join("\n")}\n  --help               this text\n`
  );
}

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new ConfigError(`--${name} must be a whole number, not ${JSON.stringify(value)}`);
  return Number(value);
}

/** The handler options and listen address from arguments and environment. */
export function parseCommandLine(
  argv: string[],
  env: Record<string, string | undefined>,
  readFile: (path: string) => string = (p) => readFileSync(p, "utf8"),
): {
  help: true;
} | {
  help: false;
  options: SyncHandlerOptions;
  port: number;
  host: string;
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  workers: number;
} {
  const parsed = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: "string" as const }])),
      help: { type: "boolean" },
    },
    allowPositionals: false,
    strict: true,
  });
  if (parsed.values.help === true) return { help: true };
  const get = (flag: Flag): string | undefined => {
    const v = (parsed.values as Record<string, string | boolean | undefined>)[flag];
    if (typeof v === "string") return v;
    const e = env[FLAGS[flag][0]];
    if (e !== undefined && e !== "") return e;
    if (flag === "database-url" && env.DATABASE_URL !== undefined && env.DATABASE_URL !== "") return env.DATABASE_URL;
    return undefined;
  };
  const databaseUrl = get("database-url");
  if (databaseUrl === undefined) throw new ConfigError("--database-url (or SMARTSYNC_DATABASE_URL) is required");
  const keyFile = get("jwt-public-key");
  let publicKey: string | undefined;
  if (keyFile !== undefined) {
    try {
      publicKey = readFile(keyFile);
    } catch (err) {
      throw new ConfigError(`cannot read --jwt-public-key ${keyFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  const level = (get("log-level") ?? "info") as LogLevel;
  if (!["debug", "info", "warn", "error", "silent"].includes(level)) throw new ConfigError(`invalid --log-level ${level}`);
  const signal = get("signal");
  const jwt: SyncHandlerOptions["jwt"] = {};
  const secret = get("jwt-secret");
  if (secret !== undefined) jwt.secret = secret;
  if (publicKey !== undefined) jwt.publicKey = publicKey;
  const jwks = get("jwks-url");
  if (jwks !== undefined) jwt.jwksUrl = jwks;
  const aud = get("jwt-audience");
  if (aud !== undefined) jwt.audience = aud;
  const iss = get("jwt-issuer");
  if (iss !== undefined) jwt.issuer = iss;

  const options: SyncHandlerOptions = { databaseUrl, jwt };
  const set = <K extends keyof SyncHandlerOptions>(k: K, v: SyncHandlerOptions[K] | undefined) => {
    if (v !== undefined) options[k] = v;
  };
  set("basePath", get("base-path"));
  set("apiSchema", get("api-schema"));
  set("poolSize", integer("pool-size", get("pool-size")));
  set("statementTimeoutMs", integer("statement-timeout", get("statement-timeout")));
  set("maxBodyBytes", integer("max-body-bytes", get("max-body-bytes")));
  const live: NonNullable<SyncHandlerOptions["live"]> = {};
  if (signal !== undefined) live.signal = signal as NonNullable<typeof live.signal>;
  const poll = integer("poll-interval", get("poll-interval"));
  if (poll !== undefined) live.pollIntervalMs = poll;
  const hb = integer("heartbeat", get("heartbeat"));
  if (hb !== undefined) live.heartbeatMs = hb;
  const ms = integer("max-streams", get("max-streams"));
  if (ms !== undefined) live.maxStreams = ms;
  options.live = live;
  const w = get("workers");
  const workers = w === "auto" ? availableParallelism() : (integer("workers", w) ?? 1);
  if (workers < 1) throw new ConfigError("--workers must be at least 1 (or auto)");
  return {
    help: false,
    options,
    port: integer("port", get("port")) ?? 3000,
    host: get("host") ?? "0.0.0.0",
    shutdownTimeoutMs: integer("shutdown-timeout", get("shutdown-timeout")) ?? 10_000,
    logLevel: level,
    workers,
  };
}

export interface RunningServer {
  handler: SyncHandler;
  server: NodeServer;
  logger: Logger;
  /** Drains and stops. */
  stop(): Promise<void>;
}

/** Starts the server from command-line arguments and environment. */
export async function main(
  argv: string[] = process.argv.slice(2),
  env: Record<string, string | undefined> = process.env,
): Promise<RunningServer | undefined> {
  const cmd = parseCommandLine(argv, env);
  if (cmd.help) {
    process.stdout.write(usage());
    return undefined;
  }
  const worker = isWorker();
  const logger = worker ? workerLogger(createLogger({ level: cmd.logLevel }), workerId()) : createLogger({ level: cmd.logLevel });
  const handler = createSyncHandler({ ...cmd.options, logger });
  const server = await serve(handler, { port: cmd.port, host: cmd.host });
  logger.info("listening", {
    port: server.port,
    host: cmd.host,
    basePath: cmd.options.basePath ?? "/api/sync",
    signal: cmd.options.live?.signal ?? "poll",
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      logger.info("shutting down", { streams: handler.streams });
      const closed = server.close();
      await handler.close({ timeoutMs: cmd.shutdownTimeoutMs });
      server.server.closeAllConnections();
      await closed;
    })();
    return stopping;
  };
  if (worker) joinCluster(handler.metrics.registry);
  return { handler, server, logger, stop };
}

/* the command itself (not when imported by tests) */
/** True when this file is the program being run (also through npx's symlink). */
function isMain(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

/** The command: one server, or with --workers N > 1 the primary of N (cluster.ts); resolves with an exit code, or undefined while it runs. */
async function command(): Promise<number | undefined> {
  if (!isWorker()) {
    const cmd = parseCommandLine(process.argv.slice(2), process.env);
    if (!cmd.help && cmd.workers > 1) {
      const logger = createLogger({ level: cmd.logLevel });
      return runPrimary({ workers: cmd.workers, logger, killAfterMs: cmd.shutdownTimeoutMs + 5000 });
    }
  }
  const running = await main();
  if (running === undefined) return undefined; // --help
  const onSignal = (sig: string) => {
    running.logger.info("signal", { signal: sig });
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  // a worker gets a terminal's SIGINT and the primary's SIGTERM both: the second is not fatal
  const on = isWorker() ? process.on.bind(process) : process.once.bind(process);
  on("SIGTERM", () => onSignal("SIGTERM"));
  on("SIGINT", () => onSignal("SIGINT"));
  return undefined;
}

if (isMain()) {
  command().then(
    (code) => {
      if (code !== undefined) process.exit(code);
    },
    (err: unknown) => {
      if (err instanceof ConfigError || (err as Error)?.name === "TypeError") {
        process.stderr.write(`smartsync-server: ${(err as Error).message}\n\n${usage()}`);
        process.exit(2);
      }
      process.stderr.write(`smartsync-server: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
