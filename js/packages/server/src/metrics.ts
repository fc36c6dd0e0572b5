/**
 * Prometheus metrics (prom-client), in a registry of the handler's own: HTTP
 * requests by route and status, latency, open live streams, change signals
 * received and events fanned out, and the database pool. No label carries a
 * tenant, user or any value from a request.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface PoolStats {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<"route" | "method" | "status">;
  readonly duration: Histogram<"route" | "method">;
  readonly streams: Gauge;
  readonly signals: Counter<"source">;
  readonly events: Counter;
  readonly signalErrors: Counter<"source">;
}

/** Creates the metrics; pool() is read at each scrape. */
export function createMetrics(pool: () => PoolStats, options: { defaultMetrics?: boolean; maxPool?: number } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: "smartsync_http_requests_total",
    help: "HTTP requests answered, by route, method and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "smartsync_http_request_duration_seconds",
    help: "Time to answer an HTTP request (to the first byte of a live stream), by route and method",
    labelNames: ["route", "method"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const streams = new Gauge({
    name: "smartsync_live_streams",
    help: "Open live (server-sent events) streams",
    registers: [registry],
  });
  const signals = new Counter({
    name: "smartsync_live_signals_total",
    help: "Change signals received from the database (a NOTIFY, or a tenant reported by a poll)",
    labelNames: ["source"] as const,
    registers: [registry],
  });
  const events = new Counter({
    name: "smartsync_live_events_total",
    help: "Change events fanned out to live streams",
    registers: [registry],
  });
  const signalErrors = new Counter({
    name: "smartsync_live_signal_errors_total",
    help: "Failures of the change-signal connection (each followed by a reconnect and a poke to every stream)",
    labelNames: ["source"] as const,
    registers: [registry],
  });
  new Gauge({
    name: "smartsync_db_pool_connections",
    help: "Database pool connections, by state (total, idle, waiting requests)",
    labelNames: ["state"] as const,
    registers: [registry],
    collect() {
      const s = pool();
      this.set({ state: "total" }, s.totalCount);
      this.set({ state: "idle" }, s.idleCount);
      this.set({ state: "waiting" }, s.waitingCount);
    },
  });
  if (options.maxPool !== undefined) {
    const max = options.maxPool;
    new Gauge({
      name: "smartsync_db_pool_max",
      help: "Largest number of database connections the pool opens",
      registers: [registry],
      collect() {
        this.set(max);
      },
    });
  }
  return { registry, requests, duration, streams, signals, events, signalErrors };
}
