/**
 * smartsync-server --workers N: N server processes sharing one port
 * (node:cluster). Each worker is a whole server: its own request pool, live
 * hub and change-signal connection; the primary only hands connections out
 * (round robin), forwards SIGTERM and SIGINT, and answers the workers' GET
 * /metrics with the metrics of all of them added up (prom-client's
 * AggregatorRegistry). A fan-out then runs in every worker at once, each over
 * its own share of the streams, on as many cores.
 *
 * The primary ends when its workers have ended: with 0 when each ended with 0
 * after a SIGTERM or SIGINT; a worker that ends on its own (it crashed, or
 * could not listen) makes the primary stop the others and end with 1 (2 when
 * it refused the configuration at start), so that whatever supervises the
 * command restarts it whole.
 */
import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";
import type { Logger, LogFields } from "./logger.js";

const METRICS_REQ = "smartsync:metricsReq";
const METRICS_RES = "smartsync:metricsRes";

interface MetricsRequest {
  type: typeof METRICS_REQ;
  id: number;
}

interface MetricsResponse {
  type: typeof METRICS_RES;
  id: number;
  text?: string;
  error?: string;
}

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** how long a worker may take to stop before it is killed (its own shutdown timeout, plus a margin) */
  killAfterMs: number;
}

/**
 * Runs the primary: forks the workers (this same command, with the same
 * arguments) and supervises them. Resolves with the exit code once every
 * worker has ended.
 */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  const { logger } = options;
  const aggregator = new AggregatorRegistry();
  const workers = new Set<Worker>();
  let listening = 0;
  let stopping = false;
  let code = 0;
  let killTimer: ReturnType<typeof setTimeout> | undefined;

  return new Promise((resolve) => {
    const stop = (exitCode: number) => {
      code = Math.max(code, exitCode);
      if (stopping) return;
      stopping = true;
      for (const w of workers) w.process.kill("SIGTERM");
      killTimer = setTimeout(() => {
        for (const w of workers) w.process.kill("SIGKILL");
      }, options.killAfterMs);
      killTimer.unref();
    };
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info("signal", { signal, workers: workers.size });
      stop(0);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);

    cluster.on("listening", (_worker, address) => {
      listening++;
      if (listening === options.workers) {
        const pids = [...workers].map((w) => w.process.pid).join(",");
        logger.info("workers listening", { workers: options.workers, port: address.port, pids });
      }
    });
    cluster.on("exit", (worker, exitCode, signal) => {
      workers.delete(worker);
      const fields: LogFields = { worker: worker.id, pid: worker.process.pid, code: exitCode, signal };
      if (!stopping) {
        logger.error("a worker ended; stopping the others", fields);
        // a worker that refused the configuration (exit 2, its message on stderr) before all listened
        stop(exitCode === 2 && listening < options.workers ? 2 : 1);
      } else if (exitCode !== 0) {
        code = Math.max(code, 1);
        logger.warn("a worker ended with an error", fields);
      }
      if (workers.size === 0) {
        if (killTimer !== undefined) clearTimeout(killTimer);
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
        resolve(code);
      }
    });
    // a worker's GET /metrics: the metrics of every worker, added up
    cluster.on("message", (worker, message: MetricsRequest) => {
      if (message?.type !== METRICS_REQ) return;
      aggregator.clusterMetrics().then(
        (text) => send(worker, { type: METRICS_RES, id: message.id, text }),
        (err: Error) => send(worker, { type: METRICS_RES, id: message.id, error: err.message }),
      );
    });
    for (let i = 0; i < options.workers; i++) workers.add(cluster.fork());
  });
}

function send(worker: Worker, message: MetricsResponse): void {
  if (worker.isConnected()) worker.send(message);
}

/** True in a worker process of runPrimary(). */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/** The id of this worker (1, 2, ...), for its log lines. */
export function workerId(): number {
  return cluster.worker?.id ?? 0;
}

/** A logger whose lines name the worker. */
export function workerLogger(logger: Logger, id: number): Logger {
  const add = (fields?: LogFields): LogFields => ({ worker: id, ...fields });
  return {
    debug: (msg, fields) => logger.debug(msg, add(fields)),
    info: (msg, fields) => logger.info(msg, add(fields)),
    warn: (msg, fields) => logger.warn(msg, add(fields)),
    error: (msg, fields) => logger.error(msg, add(fields)),
  };
}

/**
 * In a worker: offers the handler's registry to the primary's aggregation,
 * and makes the handler's GET /metrics answer with every worker's metrics
 * (asked of the primary, which asks each worker for its registry's values).
 * A worker whose primary goes away (killed) ends at once: node:cluster's rule.
 */
export function joinCluster(registry: Registry): void {
  // constructing one installs prom-client's answer to the primary's requests
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  process.on("message", (message: MetricsResponse) => {
    if (message?.type !== METRICS_RES) return;
    const w = waiting.get(message.id);
    if (w === undefined) return;
    waiting.delete(message.id);
    if (message.text !== undefined) w.resolve(message.text);
    else w.reject(new Error(`metrics of the workers: ${message.error ?? "no answer"}`));
  });
  // the handler calls registry.metrics() for GET /metrics; the primary reads each worker's
  // registry with getMetricsAsJSON(), so this does not ask itself again
  registry.metrics = () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error("metrics of the workers: the primary did not answer within 5 s"));
      }, 5000);
      waiting.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      process.send?.({ type: METRICS_REQ, id } satisfies MetricsRequest);
    });
}
