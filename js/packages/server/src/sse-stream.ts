/**
 * One server-sent events stream to one client. Events are pokes ("pull
 * now"), so a stream never needs more than one of them queued: when the
 * client reads slowly (the stream's queue is full), a new poke replaces the
 * one waiting instead of piling up, and heartbeats are skipped. A client that
 * has not read anything for stallTimeoutMs is disconnected (it reconnects and
 * pulls). Everything is released when the client goes away (cancel), the
 * request is aborted, or the server closes the stream.
 */

const encoder = new TextEncoder();

/** One event as SSE text. */
export function formatEvent(event: { id?: string; event?: string; data: string; retry?: number }): string {
  let out = "";
  if (event.retry !== undefined) out += `retry: ${event.retry}\n`;
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  for (const line of event.data.split("\n")) out += `data: ${line}\n`;
  return `${out}\n`;
}

export interface SseStreamOptions {
  /** bytes the stream may hold for a client before it counts as slow */
  highWaterMark: number;
  /** a client that reads nothing for this long is disconnected */
  stallTimeoutMs: number;
  now: () => number;
  /** called once when the stream ends, whatever ended it */
  onClose: () => void;
}

/**
 * Where a stream's bytes go when a server writes them itself (node:http):
 * write() says false when the client's socket buffer is full, and the server
 * calls SseStream.drained() when it has room again.
 */
export interface SseSink {
  write(chunk: Uint8Array): boolean;
  end(): void;
}

/**
 * The SseStream behind a live Response, for node-adapter.ts: it writes the
 * events to the socket directly (SseStream.attach) instead of reading the
 * Response's body, which would cost a promise per event per stream.
 */
export const SSE_STREAM: unique symbol = Symbol.for("smartsync.sseStream");

/**
 * The stream's bytes reach the client in one of two ways, chosen by whoever
 * takes them first: the `readable` body of a Fetch API Response (Next.js, Hono,
 * Bun, ...), read by the host; or a sink that node-adapter.ts attaches, which
 * the events are written to directly. Until then they wait in the stream's own
 * queue (the readable has no queue of its own: it takes events when read), so
 * either way gets every byte.
 */
export class SseStream {
  readonly readable: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  /** events not yet taken by the readable's reader or a sink */
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  /** the newest event that did not fit (the client reads slowly) */
  #pending: Uint8Array | undefined;
  /** a read of the readable waits for an event */
  #wake: (() => void) | undefined;
  #sink: SseSink | undefined;
  /** the sink's last write said the client's buffer is full */
  #sinkFull = false;
  #closed = false;
  /** since when the queue has been full (the client not reading), or undefined */
  #fullSince: number | undefined;
  readonly #options: SseStreamOptions;

  constructor(options: SseStreamOptions) {
    this.#options = options;
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        pull: () => {
          // the client reads: hand over what waits, or wait for the next event
          if (this.#sink !== undefined) return undefined;
          if (this.#queue.length === 0 && this.#pending === undefined) {
            if (this.#closed) return undefined;
            return new Promise<void>((resolve) => {
              this.#wake = resolve;
            });
          }
          this.#handOver();
          return undefined;
        },
        cancel: () => {
          this.#finish();
        },
      },
      // no queue in the readable: it takes events when its reader asks (pull)
      { highWaterMark: 0 },
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Moves the queued events (and the waiting one, which now fits) to the readable's reader. */
  #handOver(): void {
    this.#fullSince = undefined;
    const chunks = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    if (this.#pending !== undefined) {
      chunks.push(this.#pending);
      this.#pending = undefined;
    }
    try {
      for (const c of chunks) this.#controller.enqueue(c);
      if (this.#closed) this.#controller.close();
    } catch {
      this.#finish();
    }
  }

  /**
   * Writes the stream to a sink from now on (node-adapter.ts): what waited is
   * written at once. Returns false when the stream is taken already (its
   * readable is being read) or ended.
   */
  attach(sink: SseSink): boolean {
    if (this.#sink !== undefined || this.readable.locked) return false;
    this.#sink = sink;
    const chunks = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    if (this.#pending !== undefined) chunks.push(this.#pending);
    this.#pending = undefined;
    for (const c of chunks) this.#sinkFull = !sink.write(c) || this.#sinkFull;
    if (this.#closed) sink.end();
    return true;
  }

  /** The sink has room again (the socket drained): send what waited. */
  drained(): void {
    this.#sinkFull = false;
    this.#fullSince = undefined;
    if (this.#pending !== undefined && this.#sink !== undefined && !this.#closed) {
      const chunk = this.#pending;
      this.#pending = undefined;
      this.#sinkFull = !this.#sink.write(chunk);
    }
  }

  #enqueue(chunk: Uint8Array): void {
    if (this.#sink !== undefined) {
      this.#sinkFull = !this.#sink.write(chunk);
      return;
    }
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.byteLength;
    if (this.#wake !== undefined) {
      const wake = this.#wake;
      this.#wake = undefined;
      this.#handOver();
      wake();
    }
  }

  #ready(): boolean {
    if (this.#sink !== undefined) return !this.#sinkFull;
    return this.#queuedBytes < this.#options.highWaterMark;
  }

  /**
   * Sends an event now, or keeps it as the one waiting (replacing an older one).
   * A fan-out encodes an event once and hands every stream the same bytes.
   */
  send(event: string | Uint8Array): void {
    if (this.#closed) return;
    const chunk = typeof event === "string" ? encoder.encode(event) : event;
    if (this.#ready()) {
      this.#enqueue(chunk);
    } else {
      this.#pending = chunk;
      this.#checkStall();
    }
  }

  /** Sends an event only if the client keeps up (a heartbeat). */
  sendIfReady(event: string | Uint8Array): void {
    if (this.#closed) return;
    if (this.#ready()) this.#enqueue(typeof event === "string" ? encoder.encode(event) : event);
    else this.#checkStall();
  }

  #checkStall(): void {
    const now = this.#options.now();
    this.#fullSince ??= now;
    if (now - this.#fullSince >= this.#options.stallTimeoutMs) this.close();
  }

  /** Ends the stream (the client's EventSource reconnects); what is queued is still delivered. */
  close(): void {
    if (this.#closed) return;
    this.#pending = undefined;
    if (this.#sink !== undefined) {
      this.#sink.end();
    } else if (this.#wake !== undefined) {
      // a read waits: end it now
      const wake = this.#wake;
      this.#wake = undefined;
      this.#finish();
      try {
        this.#controller.close();
      } catch {
        // already errored or cancelled
      }
      wake();
      return;
    } else if (this.#queue.length === 0) {
      try {
        this.#controller.close();
      } catch {
        // already errored or cancelled
      }
    }
    // else: the readable closes once its reader has taken the queue (#handOver)
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = undefined;
    this.#options.onClose();
  }
}
