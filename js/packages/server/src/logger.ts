/**
 * Structured logs: one JSON object a line. Callers pass fields, never tokens,
 * request bodies or row values; the request log names the route template
 * (`/conflicts/:id/resolve`), not the URL with its query string.
 */

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface LoggerOptions {
  level?: LogLevel;
  /** where a line goes (default: stdout) */
  write?: (line: string) => void;
  /** the clock (default Date.now) */
  now?: () => number;
}

/** A JSON-lines logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? "info"];
  let write = options.write;
  if (write === undefined) {
    // a closed stdout (the reader went away) must not bring the server down
    if (process.stdout.listenerCount("error") === 0) process.stdout.on("error", () => undefined);
    write = (line: string) => process.stdout.write(line);
  }
  const out = write;
  const now = options.now ?? Date.now;
  const log = (level: Exclude<LogLevel, "silent">, msg: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    const entry: Record<string, unknown> = { time: new Date(now()).toISOString(), level, msg };
    if (fields !== undefined) {
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) entry[k] = v;
    }
    out(`${JSON.stringify(entry)}\n`);
  };
  return {
    debug: (msg, fields) => log("debug", msg, fields),
    info: (msg, fields) => log("info", msg, fields),
    warn: (msg, fields) => log("warn", msg, fields),
    error: (msg, fields) => log("error", msg, fields),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = createLogger({ level: "silent" });
