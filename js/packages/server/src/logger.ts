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
  /** where a line goes (default: stdout, buffered: see bufferedStdout) */
  write?: (line: string) => void;
  /** the clock (default Date.now) */
  now?: () => number;
}

/**
 * Lines to stdout, gathered for up to 50 ms (or 64 KiB) and written together:
 * a busy server would otherwise spend a write on every request's line. What is
 * gathered is written at once when the process exits; a closed stdout (the
 * reader went away) does not bring the server down.
 */
export function bufferedStdout(): (line: string) => void {
  let pending: string[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    size = 0;
    process.stdout.write(text);
  };
  if (process.stdout.listenerCount("error") === 0) process.stdout.on("error", () => undefined);
  process.once("exit", flush);
  return (line: string) => {
    pending.push(line);
    size += line.length;
    if (size >= 64 * 1024) flush();
    else if (timer === undefined) {
      timer = setTimeout(flush, 50);
      timer.unref();
    }
  };
}

/** A JSON-lines logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? "info"];
  const out = options.write ?? (min >= ORDER.silent ? () => undefined : bufferedStdout());
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
