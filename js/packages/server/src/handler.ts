/**
 * createSyncHandler(): the spec's /api/sync endpoints as one Fetch API
 * handler, `(request: Request) => Promise<Response>`, for Next.js route
 * handlers, Hono, Bun, or node:http through node-adapter.ts.
 *
 * Every endpoint but /health and /metrics needs a JWT, verified here (jose);
 * each runs as PostgREST runs a request (database.ts) through the api schema
 * setup_postgrest() made, logged in as authenticator. Errors thrown anywhere
 * become responses in one place, with PostgREST's body {code, message,
 * details, hint}. close() drains: new requests get 503, running ones finish,
 * live streams end, the database connections close.
 */
import pg from "pg";
import { JSON_HEADERS, jsonAnswer, SSE_HEADERS, SYNC_CORE, type Answer, type SyncCore } from "./answer.js";
import {
  changedRoute,
  conflictStatsRoute,
  conflictsRoute,
  pullRoute,
  pushRoute,
  resolveRoute,
  type ApiRouteContext,
} from "./api-routes.js";
import { ChangeSignalSource } from "./change-signal.js";
import type { RequestIdentity } from "./database.js";
import { ConfigError, HttpError, ServerErrorCode } from "./errors.js";
import { bearerToken, createTokenVerifier, missingToken } from "./jwt.js";
import { LiveHub } from "./live-hub.js";
import { liveRoute } from "./live-route.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { resolveOptions, type SyncHandlerOptions } from "./options.js";
import { unavailableError } from "./pg-errors.js";
import { queryParams, readStream, type SyncRequest } from "./request-input.js";
import { SSE_STREAM } from "./sse-stream.js";

/** The handler, with what it owns. */
export interface SyncHandler {
  (request: Request): Promise<Response>;
  /** resolves once the change signal's connection has been tried (live streams only) */
  readonly ready: Promise<void>;
  /** the metrics registry GET /metrics serves */
  readonly metrics: Metrics;
  /** the number of open live streams */
  readonly streams: number;
  /** Drains and closes: new requests 503, running ones finish (up to timeoutMs), streams end. */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

interface Route {
  /** the route's template, for logs and metrics */
  name: string;
  method: "GET" | "POST";
  auth: boolean;
  readOnly: boolean;
  match: (path: string) => string[] | null;
}

const exact =
  (p: string) =>
  (path: string): string[] | null =>
    path === p ? [] : null;

const ROUTES: Route[] = [
  { name: "/push", method: "POST", auth: true, readOnly: false, match: exact("/push") },
  { name: "/pull", method: "GET", auth: true, readOnly: true, match: exact("/pull") },
  { name: "/changed", method: "GET", auth: true, readOnly: true, match: exact("/changed") },
  { name: "/conflicts", method: "GET", auth: true, readOnly: true, match: exact("/conflicts") },
  { name: "/conflicts/stats", method: "GET", auth: true, readOnly: true, match: exact("/conflicts/stats") },
  {
    name: "/conflicts/:id/resolve",
    method: "POST",
    auth: true,
    readOnly: false,
    match: (path) => {
      const m = /^\/conflicts\/([^/]+)\/resolve$/.exec(path);
      return m === null ? null : [decodeURIComponent(m[1] as string)];
    },
  },
  { name: "/live", method: "GET", auth: true, readOnly: true, match: exact("/live") },
  { name: "/health", method: "GET", auth: false, readOnly: true, match: exact("/health") },
  { name: "/metrics", method: "GET", auth: false, readOnly: true, match: exact("/metrics") },
];

/** The answer of an error (PostgREST's body). */
function errorAnswer(err: HttpError): Answer {
  return jsonAnswer(JSON.stringify(err.body), err.status, err.headers);
}

/** The request headers the database sees: lower-cased names, without credentials. */
function dbHeaders(request: SyncRequest): Record<string, string> {
  const out: Record<string, string> = {};
  request.forEachHeader((value, name) => {
    if (name !== "authorization" && name !== "cookie") out[name] = value;
  });
  return out;
}

/** A Fetch API Request as the endpoints read it. */
function fromRequest(request: Request): SyncRequest {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    url = new URL("http://invalid/");
  }
  return {
    method: request.method,
    url,
    header: (name) => request.headers.get(name),
    forEachHeader: (fn) => request.headers.forEach(fn),
    readBytes: (maxBytes) => readStream(request.body, maxBytes),
    signal: request.signal,
  };
}

/** An answer as a Fetch API Response (a stream's also carries its SseStream, for node-adapter.ts). */
function toResponse(answer: Answer, requestId: string): Response {
  if (answer.stream !== undefined) {
    const response = new Response(answer.stream.readable, {
      status: answer.status,
      headers: { ...SSE_HEADERS, ...answer.headers, "x-request-id": requestId },
    });
    return Object.assign(response, { [SSE_STREAM]: answer.stream });
  }
  return new Response(answer.body, {
    status: answer.status,
    headers: { ...JSON_HEADERS, ...answer.headers, "x-request-id": requestId },
  });
}

/** Connection settings from the options (for the pool and the signal connection). */
function connectionOf(options: SyncHandlerOptions): pg.ClientConfig | undefined {
  if (options.connection !== undefined) return options.connection;
  if (options.databaseUrl !== undefined) return { connectionString: options.databaseUrl };
  return undefined;
}

/** Creates the handler. Throws ConfigError for options it cannot work with. */
export function createSyncHandler(options: SyncHandlerOptions): SyncHandler {
  const o = resolveOptions(options);
  const verify = createTokenVerifier(options.jwt, o.now);
  const connection = connectionOf(options);
  const ownPool = options.pool === undefined;
  if (ownPool && connection === undefined) throw new ConfigError("give databaseUrl, connection or pool");
  const pool =
    options.pool ??
    new pg.Pool({
      ...connection,
      max: o.poolSize,
      connectionTimeoutMillis: o.connectionTimeoutMs,
      idleTimeoutMillis: 30_000,
      application_name: "smartsync-server",
      // no pipeline mode: a request's BEGIN, context, call and COMMIT leave as one
      // batch with one Sync (database.ts), which pipeline mode does not take
    });
  if (ownPool) {
    // an idle connection that breaks is dropped by the pool; say so, do not crash
    pool.on("error", (err) => o.logger.warn("idle database connection failed", { error: err.message }));
  }
  const metrics = createMetrics(() => pool, {
    defaultMetrics: o.processMetrics,
    ...(ownPool ? { maxPool: o.poolSize } : {}),
  });
  const hub = new LiveHub({
    now: o.now,
    coverage: o.signal === "notify" ? "all" : o.signal === "poll" ? "watched" : "none",
    onEvents: (n) => metrics.events.inc(n),
  });

  let signal: ChangeSignalSource | undefined;
  if (o.signal !== "none") {
    if (connection === undefined) {
      throw new ConfigError("live streams need connection settings (databaseUrl or connection) for their signal connection");
    }
    signal = new ChangeSignalSource({
      mode: o.signal,
      connection: { ...connection, application_name: "smartsync-server signal" },
      pollIntervalMs: o.pollIntervalMs,
      tenants: () => hub.tenants(),
      onChange: (s) => {
        metrics.signals.inc({ source: o.signal });
        hub.change(s);
      },
      onResync: () => hub.resync(),
      onError: () => metrics.signalErrors.inc({ source: o.signal }),
      logger: o.logger,
      timers: o.timers,
      now: o.now,
    });
  }
  const ready = signal?.start() ?? Promise.resolve();
  const heartbeat = o.timers.setInterval(() => hub.heartbeat(), o.heartbeatMs);
  (heartbeat as { unref?: () => void }).unref?.();

  let closing = false;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  async function route(request: SyncRequest): Promise<{ answer: Answer; route: string }> {
    const url = request.url;
    if (!url.pathname.startsWith(o.basePath)) {
      throw new HttpError(404, { code: ServerErrorCode.notFound, message: `no endpoint ${url.pathname}` });
    }
    const path = url.pathname.slice(o.basePath.length) || "/";
    let found: { route: Route; params: string[] } | undefined;
    let other: Route | undefined;
    for (const r of ROUTES) {
      const params = r.match(path);
      if (params === null) continue;
      if (r.method === request.method || (r.method === "GET" && request.method === "HEAD")) {
        found = { route: r, params };
        break;
      }
      other = r;
    }
    if (found === undefined) {
      if (other !== undefined) {
        throw new HttpError(
          405,
          { code: ServerErrorCode.methodNotAllowed, message: `${request.method} is not allowed on ${other.name}` },
          { headers: { allow: other.method === "GET" ? "GET, HEAD" : other.method } },
        );
      }
      throw new HttpError(404, { code: ServerErrorCode.notFound, message: `no endpoint ${path}` });
    }
    const r = found.route;
    if (closing && r.name !== "/metrics") {
      throw new HttpError(
        503,
        { code: ServerErrorCode.unavailable, message: "the server is shutting down" },
        { headers: { "Retry-After": "1", connection: "close" } },
      );
    }
    if (r.name === "/health") return { answer: await health(url), route: r.name };
    if (r.name === "/metrics") {
      if (!o.metrics) throw new HttpError(404, { code: ServerErrorCode.notFound, message: "metrics are off" });
      queryParams(url, []);
      // not JSON: its own content type replaces JSON_HEADERS' one
      return {
        answer: jsonAnswer(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType }),
        route: r.name,
      };
    }

    const token = bearerToken(request, r.name === "/live");
    if (token === undefined) throw missingToken();
    const claims = await verify(token);
    const role = typeof claims.role === "string" && claims.role !== "" ? claims.role : o.anonRole;
    const identity: RequestIdentity = {
      role,
      claims,
      method: request.method === "HEAD" ? "GET" : request.method,
      path: url.pathname,
      headers: dbHeaders(request),
    };
    const ctx: ApiRouteContext = {
      request,
      url,
      identity,
      pool,
      apiSchema: o.apiSchema,
      statementTimeoutMs: o.statementTimeoutMs,
      maxBodyBytes: o.maxBodyBytes,
    };
    let answer: Answer;
    switch (r.name) {
      case "/push":
        answer = await pushRoute(ctx);
        break;
      case "/pull":
        answer = await pullRoute(ctx);
        break;
      case "/changed":
        answer = await changedRoute(ctx);
        break;
      case "/conflicts":
        answer = await conflictsRoute(ctx);
        break;
      case "/conflicts/stats":
        answer = await conflictStatsRoute(ctx);
        break;
      case "/conflicts/:id/resolve":
        answer = await resolveRoute(ctx, found.params[0] as string);
        break;
      case "/live":
        answer = await liveRoute({
          ...ctx,
          hub,
          retryMs: o.retryMs,
          maxStreams: o.maxStreams,
          stallTimeoutMs: o.stallTimeoutMs,
          now: o.now,
          onStreamCount: (d) => metrics.streams.inc(d),
        });
        break;
      default:
        throw new HttpError(404, { code: ServerErrorCode.notFound, message: `no endpoint ${path}` });
    }
    return { answer, route: r.name };
  }

  /** GET /health: the server is up and reaches the database. */
  async function health(url: URL): Promise<Answer> {
    queryParams(url, []);
    try {
      await pool.query("SELECT 1");
    } catch (err) {
      throw unavailableError(err);
    }
    return jsonAnswer(JSON.stringify({ status: "ok", database: "ok", signal: o.signal, streams: hub.size }));
  }

  /** One request, from either carrier: routed, answered (delivered, if the carrier can), counted and logged. */
  const core: SyncCore = async (request, deliver) => {
    const started = o.now();
    const requestId = request.header("x-request-id") ?? o.randomId();
    let routeName = "unknown";
    let answer: Answer;
    let code: string | undefined;
    inFlight++;
    try {
      const r = await route(request);
      answer = r.answer;
      routeName = r.route;
    } catch (err) {
      const httpErr =
        err instanceof HttpError
          ? err
          : new HttpError(500, { code: "XX000", message: "internal server error" }, { cause: err });
      if (!(err instanceof HttpError)) {
        o.logger.error("unexpected error", { requestId, error: (err as Error)?.message ?? String(err) });
      }
      code = httpErr.body.code;
      answer = errorAnswer(httpErr);
      const template = ROUTES.find((r) => r.match(request.url.pathname.slice(o.basePath.length) || "/") !== null);
      if (template !== undefined) routeName = template.name;
    } finally {
      inFlight--;
      if (inFlight === 0) drained?.();
    }
    const seconds = (o.now() - started) / 1000;
    deliver?.(answer, requestId);
    const method = request.method;
    metrics.requests.inc({ route: routeName, method, status: String(answer.status) });
    metrics.duration.observe({ route: routeName, method }, seconds);
    o.logger.info("request", {
      requestId,
      method,
      route: routeName,
      status: answer.status,
      durationMs: Math.round(seconds * 1000 * 10) / 10,
      code,
    });
    return { answer, requestId };
  };

  const handler = async (request: Request): Promise<Response> => {
    const { answer, requestId } = await core(fromRequest(request));
    return toResponse(answer, requestId);
  };

  const closeFn = async (closeOptions: { timeoutMs?: number } = {}): Promise<void> => {
    if (closing) return;
    closing = true;
    o.timers.clearInterval(heartbeat);
    hub.closeAll();
    if (inFlight > 0) {
      await new Promise<void>((resolve) => {
        drained = resolve;
        const t = o.timers.setTimeout(resolve, closeOptions.timeoutMs ?? 10_000);
        (t as { unref?: () => void }).unref?.();
      });
    }
    await signal?.stop();
    if (ownPool) await pool.end();
    o.logger.info("closed", { streams: hub.size });
  };

  const result = Object.assign(handler, { ready, metrics, close: closeFn, [SYNC_CORE]: core });
  Object.defineProperty(result, "streams", { get: () => hub.size, enumerable: true });
  return result as unknown as SyncHandler;
}
