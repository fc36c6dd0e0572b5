/**
 * Where change signals come from: one database connection per server
 * process, outside the request pool, logged in as the same role.
 *
 *   "poll"   (default) every pollIntervalMs, smartsync.poll_changes(watermark,
 *            tenants with open streams): exact (each commit reported once, by
 *            the first poll that sees it) and free for writers;
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

  /** One poll: reports the tenants with changes since the watermark, keeps the next one. */
  async #poll(client: pg.Client): Promise<void> {
    const started = (this.#options.now ?? Date.now)();
    const res = await client.query<{ r: { watermark: string; changes: unknown[] } }>({
      // prepared once per connection: a poll runs 100 times a second
      name: "smartsync_poll_changes",
      text: "SELECT smartsync.poll_changes($1, $2) AS r",
      values: [this.#watermark, this.#watermark === null ? [] : this.#options.tenants()],
    });
    const r = res.rows[0]?.r;
    if (r === undefined) throw new Error("smartsync.poll_changes() returned nothing");
    const first = this.#watermark === null;
    this.#watermark = r.watermark;
    this.lastPollMs = (this.#options.now ?? Date.now)() - started;
    if (first) return;
    for (const c of r.changes) {
      const signal = parseSignal(c);
      if (signal !== undefined) this.#options.onChange(signal);
    }
  }

  #schedulePoll(client: pg.Client): void {
    if (this.#stopped || this.#client !== client) return;
    // a poll starts every pollIntervalMs (a change waits half of it on average), but one that
    // takes long (many tenants) is not repeated back to back: the connection rests as long
    const wait = Math.max(this.#options.pollIntervalMs - this.lastPollMs, this.lastPollMs);
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.#poll(client).then(
        () => this.#schedulePoll(client),
        (err: Error) => this.#fail(client, err),
      );
    }, wait);
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
