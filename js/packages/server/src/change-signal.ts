/**
 * Where change signals come from: one database connection per server
 * process, outside the request pool, logged in as the same role.
 *
 *   "poll"   (default) smartsync.poll_changes(watermark, tenants with open
 *            streams), again and again: exact (each commit reported once, by
 *            the first poll that sees it) and free for writers. The database
 *            does the waiting: with smartsync.poll_wait set on this connection,
 *            a call that finds nothing new looks again every pollIntervalMs
 *            (smartsync.poll_check_interval; a look that finds no transaction
 *            completed reads no index) and answers at the first change, or
 *            after POLL_WAIT_MS with none; the server calls again at once. So
 *            an idle server costs the database one wake-up per interval and
 *            itself almost nothing, and a change is seen within one interval.
 *            (With a smartsync older than these settings, the server itself
 *            polls every pollIntervalMs, as before.) A tenant that gets its
 *            first stream while a call waits was not asked about: when the
 *            call answers, one more call asks about it from that call's
 *            watermark, so nothing committed meanwhile is missed;
 *   "notify" LISTEN smartsync_changes: the lowest latency, but every writing
 *            transaction pays for a NOTIFY (the database must have
 *            smartsync.notify = on; README, "The change signal");
 *   "none"   no signal: streams get their first poke and heartbeats only.
 *
 * A lost connection is reopened with backoff; then every stream is poked
 * (resync), since signals may have been missed meanwhile.
 */
import pg from "pg";
import type { ChangeSignal } from "./live-hub.js";
import type { Logger } from "./logger.js";

export type SignalMode = "poll" | "notify" | "none";

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface ChangeSignalOptions {
  mode: SignalMode;
  /** connection settings of the signal's own connection */
  connection: pg.ClientConfig;
  pollIntervalMs: number;
  /** tenants with open streams (poll mode asks only about them) */
  tenants: () => string[];
  onChange: (signal: ChangeSignal) => void;
  /** the connection was lost and is back: signals may have been missed */
  onResync: () => void;
  /** a failure of the connection (counted in the metrics) */
  onError?: (err: Error) => void;
  logger: Logger;
  timers?: Timers;
  now?: () => number;
}

export const NOTIFY_CHANNEL = "smartsync_changes";

/** How long one poll_changes() call waits in the database for a change (smartsync.poll_wait). */
export const POLL_WAIT_MS = 500;

const POLL_QUERY = {
  // prepared once per connection
  name: "smartsync_poll_changes",
  text: "SELECT smartsync.poll_changes($1, $2) AS r",
};
const SET_WAIT_QUERY = {
  name: "smartsync_poll_wait",
  // a role's shorter statement_timeout would cancel every wait: this connection's calls get 10 s
  text:
    "SELECT set_config('smartsync.poll_wait', $1, false), set_config('smartsync.poll_check_interval', $2, false), " +
    "set_config('statement_timeout', '10s', false)",
};

interface PollResult {
  watermark: string;
  changes: unknown[];
}

/** Parses a change payload ({"tenant", "practices"}); undefined when malformed. */
export function parseSignal(value: unknown): ChangeSignal | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as { tenant?: unknown; practices?: unknown };
  if (typeof v.tenant !== "string") return undefined;
  if (v.practices === null) return { tenant: v.tenant, practices: null };
  if (Array.isArray(v.practices) && v.practices.every((p) => typeof p === "string")) {
    return { tenant: v.tenant, practices: v.practices as string[] };
  }
  return undefined;
}

export class ChangeSignalSource {
  readonly #options: ChangeSignalOptions;
  readonly #timers: Timers;
  #client: pg.Client | undefined;
  #stopped = false;
  #timer: unknown;
  #backoffMs = 100;
  #watermark: string | null = null;
  #everConnected = false;
  #connectedAt = 0;
  #started: Promise<void> | undefined;
  /** the database waits for changes in poll_changes() (smartsync.poll_wait is set) */
  #dbWaits = false;
  /** the duration of the last poll in milliseconds */
  lastPollMs = 0;

  constructor(options: ChangeSignalOptions) {
    this.#options = options;
    this.#timers = options.timers ?? realTimers;
  }

  get mode(): SignalMode {
    return this.#options.mode;
  }

  /** Opens the connection (retrying in the background on failure); resolves after the first attempt. */
  start(): Promise<void> {
    if (this.#options.mode === "none") return Promise.resolve();
    this.#started ??= this.#connect();
    return this.#started;
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client(this.#options.connection);
    this.#client = client;
    client.on("error", (err) => this.#fail(client, err));
    client.on("end", () => this.#fail(client, new Error("the signal connection ended")));
    try {
      await client.connect();
      if (this.#options.mode === "notify") {
        client.on("notification", (msg) => {
          if (msg.channel !== NOTIFY_CHANNEL || msg.payload === undefined) return;
          let parsed: unknown;
          try {
            parsed = JSON.parse(msg.payload);
          } catch {
            parsed = undefined;
          }
          const signal = parseSignal(parsed);
          if (signal === undefined) {
            this.#options.logger.warn("malformed change signal ignored", { channel: msg.channel });
            return;
          }
          this.#options.onChange(signal);
        });
        await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      } else {
        this.#watermark = null;
        await this.#poll(client);
        this.#dbWaits = await this.#letDatabaseWait(client);
      }
      this.#connectedAt = (this.#options.now ?? Date.now)();
      if (this.#everConnected) this.#options.onResync();
      this.#everConnected = true;
      this.#options.logger.info("change signal connected", { mode: this.#options.mode });
      if (this.#options.mode === "poll") this.#schedulePoll(client);
    } catch (err) {
      this.#fail(client, err as Error);
    }
  }

  /**
   * Sets smartsync.poll_wait on the connection, so that a poll_changes() call
   * that finds nothing waits in the database for a change; false when this
   * smartsync has no such setting (then the server spaces its polls itself).
   */
  async #letDatabaseWait(client: pg.Client): Promise<boolean> {
    const check = Math.min(1000, this.#options.pollIntervalMs);
    try {
      await client.query({ ...SET_WAIT_QUERY, values: [`${POLL_WAIT_MS}ms`, `${check}ms`] });
      return true;
    } catch (err) {
      // a database error (an older smartsync refuses the unknown setting); anything else is the connection's
      if (typeof (err as { code?: unknown }).code !== "string") throw err;
      this.#options.logger.warn("this smartsync's poll_changes() cannot wait; the server polls every interval", {
        error: (err as Error).message,
        pollIntervalMs: this.#options.pollIntervalMs,
      });
      return false;
    }
  }

  async #pollQuery(client: pg.Client, watermark: string | null, tenants: string[]): Promise<PollResult> {
    const res = await client.query<{ r: PollResult }>({ ...POLL_QUERY, values: [watermark, tenants] });
    const r = res.rows[0]?.r;
    if (r === undefined) throw new Error("smartsync.poll_changes() returned nothing");
    return r;
  }

  #report(changes: unknown[]): void {
    for (const c of changes) {
      const signal = parseSignal(c);
      if (signal !== undefined) this.#options.onChange(signal);
    }
  }

  /**
   * One poll: reports the tenants with changes since the watermark, keeps the
   * next one; then asks about the tenants that became watched while it ran.
   */
  async #poll(client: pg.Client): Promise<void> {
    const now = this.#options.now ?? Date.now;
    const started = now();
    const base = this.#watermark;
    const asked = base === null ? [] : this.#options.tenants();
    const r = await this.#pollQuery(client, base, asked);
    this.#watermark = r.watermark;
    this.lastPollMs = now() - started;
    if (base === null) return;
    this.#report(r.changes);
    // a tenant whose first stream came while the call ran was not asked about: ask from the
    // call's base, so that what it committed meanwhile is reported (perhaps twice, never not)
    const seen = new Set(asked);
    const joined = this.#options.tenants().filter((t) => !seen.has(t));
    if (joined.length > 0) {
      let late: PollResult;
      if (this.#dbWaits) {
        // this call answers at once: its base is old, and nothing is to be waited for
        const check = `${Math.min(1000, this.#options.pollIntervalMs)}ms`;
        await client.query({ ...SET_WAIT_QUERY, values: ["0", check] });
        late = await this.#pollQuery(client, base, joined);
        await client.query({ ...SET_WAIT_QUERY, values: [`${POLL_WAIT_MS}ms`, check] });
      } else {
        late = await this.#pollQuery(client, base, joined);
      }
      this.#report(late.changes);
    }
  }

  #schedulePoll(client: pg.Client): void {
    if (this.#stopped || this.#client !== client) return;
    const interval = this.#options.pollIntervalMs;
    // a waiting database answered (a change, or its wait is over): call again at once, but not
    // more often than every interval. Else a poll starts every interval (a change waits half
    // of it on average), and one that takes long (many tenants) is not repeated back to back:
    // the connection rests as long
    const wait = this.#dbWaits
      ? Math.max(0, interval - this.lastPollMs)
      : Math.max(interval - this.lastPollMs, this.lastPollMs);
    const next = () => {
      this.#timer = undefined;
      this.#poll(client).then(
        () => this.#schedulePoll(client),
        (err: Error) => this.#fail(client, err),
      );
    };
    if (wait <= 0) {
      next();
      return;
    }
    this.#timer = this.#timers.setTimeout(next, wait);
  }

  #fail(client: pg.Client, err: Error): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    if (this.#timer !== undefined) {
      this.#timers.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    client.removeAllListeners("notification");
    client.end().catch(() => undefined);
    if (this.#stopped) return;
    this.#options.onError?.(err);
    const code = (err as { code?: string }).code;
    this.#options.logger.error("change signal failed; reconnecting", {
      mode: this.#options.mode,
      error: err.message,
      code,
      hint:
        code === "42501" || code === "42883"
          ? "Run SELECT smartsync.setup_postgrest() (smartsync 0.3.0 or later) as a superuser: it lets authenticator call smartsync.poll_changes()."
          : undefined,
    });
    // a connection that worked for a while starts the backoff over
    if (this.#connectedAt !== 0 && (this.#options.now ?? Date.now)() - this.#connectedAt > 30_000) this.#backoffMs = 100;
    this.#connectedAt = 0;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, 5000);
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      void this.#connect();
    }, delay);
  }

  /** Closes the connection for good. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) {
      this.#timers.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) {
      client.removeAllListeners();
      client.on("error", () => undefined);
      await client.end().catch(() => undefined);
    }
  }
}
