/**
 * The live streams of one server process, by tenant, and the fan-out of
 * change signals to them. A signal names a tenant and the practices its
 * changes belong to (null: every practice); each stream of the tenant whose
 * practice is among them (or that sees every practice) gets a `changed`
 * event: a poke, after which the client pulls with its cursor. The pull stays
 * the only source of data, so a poke adds no gap and no duplicate, and a lost
 * or extra poke costs latency or one empty pull, never data.
 *
 * Event ids are "<epoch>-<sequence>": the epoch names this process's hub, the
 * sequence grows with every signal. A client reconnecting with Last-Event-ID
 * missed nothing if the id is from this hub and no signal for its tenant came
 * after it; otherwise it is poked at once.
 */
import { formatEvent, type SseStream } from "./sse-stream.js";

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
  /** called with the number of events sent by one fan-out */
  onEvents?: (count: number) => void;
}

export class LiveHub {
  readonly epoch: string;
  #seq = 0;
  readonly #byTenant = new Map<string, Set<LiveSubscriber>>();
  /** the sequence of the last signal per tenant (for Last-Event-ID) */
  readonly #lastSeq = new Map<string, number>();
  #count = 0;
  readonly #options: LiveHubOptions;

  constructor(options: LiveHubOptions) {
    this.#options = options;
    this.epoch = options.now().toString(36);
  }

  /** Number of subscribed streams. */
  get size(): number {
    return this.#count;
  }

  /** Tenants with at least one stream (what a poll asks about). */
  tenants(): string[] {
    return [...this.#byTenant.keys()];
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
    this.#count++;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const s = this.#byTenant.get(sub.tenant);
      if (s?.delete(sub) === true) {
        this.#count--;
        if (s.size === 0) this.#byTenant.delete(sub.tenant);
      }
    };
  }

  /**
   * True when a client that last saw event lastEventId may have missed a
   * signal for its tenant (another hub's id, a malformed one, or a later
   * signal for the tenant).
   */
  missedSince(tenant: string, lastEventId: string | null): boolean {
    if (lastEventId === null) return true;
    const m = /^([0-9a-z]+)-(\d+)$/.exec(lastEventId);
    if (m === null || m[1] !== this.epoch) return true;
    const seen = Number(m[2]);
    return (this.#lastSeq.get(tenant) ?? 0) > seen;
  }

  /** Formats a `changed` event with the next id. */
  #event(reason: string, practices: string[] | null): string {
    this.#seq++;
    return formatEvent({
      id: this.currentId(),
      event: "changed",
      data: JSON.stringify({ reason, practices }),
    });
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
    const text = formatEvent({ event: "heartbeat", data: JSON.stringify({ time: this.#options.now() }) });
    for (const set of this.#byTenant.values()) for (const sub of set) sub.stream.sendIfReady(text);
  }

  /** Ends every stream (shutdown). */
  closeAll(): void {
    for (const set of [...this.#byTenant.values()]) for (const sub of [...set]) sub.stream.close();
  }
}
