/**
 * The live streams of one server process, by tenant, and the fan-out of
 * change signals to them. A signal names a tenant and the practices its
 * changes belong to (null: every practice); each stream of the tenant whose
 * practice is among them (or that sees every practice) gets a `changed`
 * event: a poke, after which the client pulls with its cursor. The pull stays
 * the only source of data, so a poke adds no gap and no duplicate, and a lost
 * or extra poke costs latency or one empty pull, never data.
 *
 * Event ids are "<epoch>-<sequence>": the epoch names this process's hub (its
 * start time and a random part, so that two processes started in the same
 * millisecond, such as the workers of `--workers`, never share one), the
 * sequence grows with every signal. A client reconnecting with Last-Event-ID
 * missed nothing if the id is from this hub, no signal for its tenant came
 * after it, and the signal watched its tenant all along (a poll watches a
 * tenant while it has streams and for a while after); otherwise it is poked
 * at once.
 */
import { formatEvent, type SseStream } from "./sse-stream.js";

const encoder = new TextEncoder();

/** What the database said changed. */
export interface ChangeSignal {
  tenant: string;
  /** the practices of the changed rows; null when they reach every practice */
  practices: string[] | null;
}

/** A subscribed stream. */
export interface LiveSubscriber {
  tenant: string;
  /** the JWT's practice; null sees every practice */
  practice: string | null;
  stream: SseStream;
}

export interface LiveHubOptions {
  now: () => number;
  /**
   * Which tenants the signal covers: "all" (NOTIFY: every tenant's commits),
   * "watched" (a poll: the tenants of open streams, and for lingerMs those whose
   * last stream left), "none" (no signal). It decides what a Last-Event-ID proves.
   */
  coverage: "all" | "watched" | "none";
  /** how long a tenant stays watched after its last stream leaves (default 60000 ms) */
  lingerMs?: number;
  /** called with the number of events sent by one fan-out */
  onEvents?: (count: number) => void;
  /** the random part of the epoch, in [0-9a-z] (default 8 random hex digits) */
  randomPart?: () => string;
}

export class LiveHub {
  readonly epoch: string;
  #seq = 0;
  readonly #byTenant = new Map<string, Set<LiveSubscriber>>();
  /** the sequence of the last signal per tenant (for Last-Event-ID) */
  readonly #lastSeq = new Map<string, number>();
  /** tenants still watched after their last stream left: when it left */
  readonly #lingering = new Map<string, number>();
  /** tenants whose watch lapsed: the sequence at that moment */
  readonly #lapsed = new Map<string, number>();
  #count = 0;
  readonly #options: LiveHubOptions;

  constructor(options: LiveHubOptions) {
    this.#options = options;
    const random = options.randomPart?.() ?? crypto.randomUUID().slice(0, 8);
    this.epoch = `${options.now().toString(36)}${random}`;
  }

  /** Number of subscribed streams. */
  get size(): number {
    return this.#count;
  }

  /** Tenants a poll asks about: those with a stream, and for a while those whose last stream left. */
  tenants(): string[] {
    const now = this.#options.now();
    const linger = this.#options.lingerMs ?? 60_000;
    for (const [tenant, left] of this.#lingering) {
      if (now - left >= linger) {
        this.#lingering.delete(tenant);
        this.#lapsed.set(tenant, this.#seq);
      }
    }
    return [...this.#byTenant.keys(), ...this.#lingering.keys()];
  }

  /** The id of the latest event; a stream's first event and Last-Event-ID compare against it. */
  currentId(): string {
    return `${this.epoch}-${this.#seq}`;
  }

  /** Adds a stream; returns the function that removes it. */
  subscribe(sub: LiveSubscriber): () => void {
    let set = this.#byTenant.get(sub.tenant);
    if (set === undefined) {
      set = new Set();
      this.#byTenant.set(sub.tenant, set);
    }
    set.add(sub);
    this.#lingering.delete(sub.tenant);
    this.#count++;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const s = this.#byTenant.get(sub.tenant);
      if (s?.delete(sub) === true) {
        this.#count--;
        if (s.size === 0) {
          this.#byTenant.delete(sub.tenant);
          this.#lingering.set(sub.tenant, this.#options.now());
        }
      }
    };
  }

  /**
   * True when a client that last saw event lastEventId may have missed a
   * signal for its tenant (another hub's id, a malformed one, or a later
   * signal for the tenant).
   */
  missedSince(tenant: string, lastEventId: string | null): boolean {
    if (lastEventId === null || this.#options.coverage === "none") return true;
    const m = /^([0-9a-z]+)-(\d+)$/.exec(lastEventId);
    if (m === null || m[1] !== this.epoch) return true;
    const seen = Number(m[2]);
    if (this.#options.coverage === "watched") {
      this.tenants(); // lapse what lingered too long
      const lapsed = this.#lapsed.get(tenant);
      if (lapsed !== undefined && lapsed >= seen) return true;
    }
    return (this.#lastSeq.get(tenant) ?? 0) > seen;
  }

  /** A `changed` event with the next id, encoded once for all its streams. */
  #event(reason: string, practices: string[] | null): Uint8Array {
    this.#seq++;
    return encoder.encode(
      formatEvent({ id: this.currentId(), event: "changed", data: JSON.stringify({ reason, practices }) }),
    );
  }

  /** Pokes one stream (at connect, or when it asked with a stale cursor). */
  poke(sub: LiveSubscriber, reason: string): void {
    sub.stream.send(this.#event(reason, null));
    this.#options.onEvents?.(1);
  }

  /** Fans a change signal out to the streams of its tenant and practices. */
  change(signal: ChangeSignal): void {
    const set = this.#byTenant.get(signal.tenant);
    const text = this.#event("change", signal.practices);
    this.#lastSeq.set(signal.tenant, this.#seq);
    if (set === undefined) return;
    const wanted = signal.practices === null ? null : new Set(signal.practices);
    let sent = 0;
    for (const sub of set) {
      if (wanted !== null && sub.practice !== null && !wanted.has(sub.practice)) continue;
      sub.stream.send(text);
      sent++;
    }
    if (sent > 0) this.#options.onEvents?.(sent);
  }

  /** Pokes every stream: the signal may have missed changes (its connection was lost). */
  resync(): void {
    const text = this.#event("resync", null);
    let sent = 0;
    for (const [tenant, set] of this.#byTenant) {
      this.#lastSeq.set(tenant, this.#seq);
      for (const sub of set) {
        sub.stream.send(text);
        sent++;
      }
    }
    if (sent > 0) this.#options.onEvents?.(sent);
  }

  /** Sends a heartbeat to every stream that keeps up. */
  heartbeat(): void {
    const text = encoder.encode(formatEvent({ event: "heartbeat", data: JSON.stringify({ time: this.#options.now() }) }));
    for (const set of this.#byTenant.values()) for (const sub of set) sub.stream.sendIfReady(text);
  }

  /** Ends every stream (shutdown). */
  closeAll(): void {
    for (const set of [...this.#byTenant.values()]) for (const sub of [...set]) sub.stream.close();
  }
}
