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

export class SseStream {
  readonly readable: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #pending: Uint8Array | undefined;
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
          // the client has read: send what waited
          this.#fullSince = undefined;
          if (this.#pending !== undefined) {
            const chunk = this.#pending;
            this.#pending = undefined;
            this.#enqueue(chunk);
          }
        },
        cancel: () => {
          this.#finish();
        },
      },
      { highWaterMark: options.highWaterMark, size: (chunk) => chunk.byteLength },
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  #enqueue(chunk: Uint8Array): void {
    try {
      this.#controller.enqueue(chunk);
    } catch {
      this.#finish();
    }
  }

  #ready(): boolean {
    return (this.#controller.desiredSize ?? 0) > 0;
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

  /** Ends the stream (the client's EventSource reconnects). */
  close(): void {
    if (this.#closed) return;
    try {
      this.#controller.close();
    } catch {
      // already errored or cancelled
    }
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = undefined;
    this.#options.onClose();
  }
}
