/**
 * The options of createSyncHandler(), their defaults and their checks.
 */
import type pg from "pg";
import type { SignalMode, Timers } from "./change-signal.js";
import { realTimers } from "./change-signal.js";
import { ConfigError } from "./errors.js";
import type { JwtOptions } from "./jwt.js";
import { createLogger, type Logger } from "./logger.js";

export interface LiveOptions {
  /** where change signals come from (default "poll"; see change-signal.ts) */
  signal?: SignalMode;
  /**
   * poll: how often the database looks for committed changes while a poll waits
   * (smartsync.poll_check_interval), or, with a smartsync whose poll_changes()
   * cannot wait, how often the server polls; in milliseconds (default 1)
   */
  pollIntervalMs?: number;
  /** heartbeat interval in milliseconds (default 15000) */
  heartbeatMs?: number;
  /** the reconnection delay EventSource clients are told (default 2000 ms) */
  retryMs?: number;
  /** most open streams per process; more are refused with 503 (default 10000) */
  maxStreams?: number;
  /** a client that reads nothing for this long is disconnected (default 60000 ms) */
  stallTimeoutMs?: number;
}

export interface SyncHandlerOptions {
  /**
   * The database, as a connection string for the authenticator role
   * (postgres://authenticator:PASSWORD@host/db), or connection settings, or
   * a pg.Pool of your own (the handler then neither configures nor ends it,
   * and needs `connection` for its signal connection when live streams are on).
   */
  databaseUrl?: string;
  connection?: pg.ClientConfig;
  pool?: pg.Pool;
  /** the pool's largest number of connections (default 10) */
  poolSize?: number;
  /** how long a request waits for a free connection before a 503 (default 5000 ms) */
  connectionTimeoutMs?: number;
  /** how tokens are verified */
  jwt: JwtOptions;
  /** where the endpoints live (default "/api/sync") */
  basePath?: string;
  /** the schema setup_postgrest() made (default "api") */
  apiSchema?: string;
  /** the role of a token without a role claim, as PostgREST's db-anon-role (default "anon") */
  anonRole?: string;
  /** statement_timeout of each request, in milliseconds (default 10000; 0: none) */
  statementTimeoutMs?: number;
  /** largest request body in bytes (default 5 MiB) */
  maxBodyBytes?: number;
  live?: LiveOptions;
  /** serve GET /metrics (default true) */
  metrics?: boolean;
  /** include prom-client's process metrics (default true) */
  processMetrics?: boolean;
  logger?: Logger;
  /** the clock (default Date.now) */
  now?: () => number;
  /** timers (default the global ones) */
  timers?: Timers & {
    setInterval(fn: () => void, ms: number): unknown;
    clearInterval(handle: unknown): void;
  };
  /** request ids (default crypto.randomUUID) */
  randomId?: () => string;
}

export interface ResolvedOptions {
  basePath: string;
  apiSchema: string;
  anonRole: string;
  statementTimeoutMs: number;
  maxBodyBytes: number;
  poolSize: number;
  connectionTimeoutMs: number;
  signal: SignalMode;
  pollIntervalMs: number;
  heartbeatMs: number;
  retryMs: number;
  maxStreams: number;
  stallTimeoutMs: number;
  metrics: boolean;
  processMetrics: boolean;
  logger: Logger;
  now: () => number;
  timers: Required<NonNullable<SyncHandlerOptions["timers"]>>;
  randomId: () => string;
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

function positive(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < min) throw new ConfigError(`${name} must be a number of at least ${min}`);
  return v;
}

/** Fills in defaults and checks the options (ConfigError on a bad one). */
export function resolveOptions(options: SyncHandlerOptions): ResolvedOptions {
  let basePath = options.basePath ?? "/api/sync";
  if (basePath !== "" && !basePath.startsWith("/")) throw new ConfigError(`basePath must start with "/": ${basePath}`);
  basePath = basePath.replace(/\/+$/, "");
  const apiSchema = options.apiSchema ?? "api";
  if (!IDENT.test(apiSchema)) throw new ConfigError(`invalid api schema name ${JSON.stringify(apiSchema)}`);
  const anonRole = options.anonRole ?? "anon";
  const signal = options.live?.signal ?? "poll";
  if (!["poll", "notify", "none"].includes(signal)) {
    throw new ConfigError(`live signal must be poll, notify or none, not ${JSON.stringify(signal)}`);
  }
  const timers = options.timers ?? {
    ...realTimers,
    setInterval: (fn: () => void, ms: number) => setInterval(fn, ms),
    clearInterval: (h: unknown) => clearInterval(h as ReturnType<typeof setInterval>),
  };
  return {
    basePath,
    apiSchema,
    anonRole,
    statementTimeoutMs: positive("statementTimeoutMs", options.statementTimeoutMs, 10_000, 0),
    maxBodyBytes: positive("maxBodyBytes", options.maxBodyBytes, 5 * 1024 * 1024),
    poolSize: positive("poolSize", options.poolSize, 10),
    connectionTimeoutMs: positive("connectionTimeoutMs", options.connectionTimeoutMs, 5000),
    signal,
    pollIntervalMs: positive("pollIntervalMs", options.live?.pollIntervalMs, 1),
    heartbeatMs: positive("heartbeatMs", options.live?.heartbeatMs, 15_000),
    retryMs: positive("retryMs", options.live?.retryMs, 2000, 0),
    maxStreams: positive("maxStreams", options.live?.maxStreams, 10_000, 0),
    stallTimeoutMs: positive("stallTimeoutMs", options.live?.stallTimeoutMs, 60_000),
    metrics: options.metrics ?? true,
    processMetrics: options.processMetrics ?? true,
    logger: options.logger ?? createLogger(),
    now: options.now ?? Date.now,
    timers,
    randomId: options.randomId ?? (() => crypto.randomUUID()),
  };
}
