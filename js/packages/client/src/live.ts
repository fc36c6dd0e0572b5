// Live changes: what tells the engine to pull. With @smartsync/server, the /live stream
// (server-sent events, read with fetch so the token goes in a header): every event and
// every (re)connection asks for a sync, and a broken stream reconnects with backoff. Behind
// PostgREST, a poll of sync_changed(cursor) every few seconds while online and visible:
// true asks for a sync; a server without sync_changed (404) is pulled every poll instead.
// The pull stays the only source of data, so this adds no gap and no duplicate.

import { backoffDelay, type BackoffOptions } from './backoff.js';
import { sleep, type Clock, type TimerHandle } from './clock.js';
import type { Database } from './database.js';
import { HttpError, NetworkError } from './errors.js';
import type { NetworkMonitor } from './network-monitor.js';
import { readCursor, scopeOf, type PullContext } from './pull.js';
import type { VisibilitySignal } from './signals.js';
import type { ChangedParams, LiveParams, Transport } from './transport.js';

export interface LiveChangesDeps {
  db: Database;
  transport: Transport;
  clock: Clock;
  random: () => number;
  backoff: BackoffOptions;
  monitor: NetworkMonitor;
  visibility: VisibilitySignal;
  pull: Pick<PullContext, 'filterEntityTypes' | 'entityTypes' | 'practiceId'>;
  /** `sse` (transport.live), `poll` (transport.changed), `auto` (sse when the transport has it), or `off`. */
  mode: 'auto' | 'sse' | 'poll' | 'off';
  pollIntervalMs: number;
  requestSync(): void;
  isSyncing(): boolean;
}

export class LiveChanges {
  private controller: AbortController | null = null;
  private pollTimer: TimerHandle | null = null;
  private changedSupported = true;

  constructor(private readonly deps: LiveChangesDeps) {}

  /** Starts listening (idempotent). */
  start(): void {
    const { mode, transport } = this.deps;
    if (mode === 'off' || this.controller) return;
    if ((mode === 'sse' || mode === 'auto') && transport.live) {
      this.controller = new AbortController();
      void this.stream(this.controller.signal);
    } else if (mode === 'poll' || mode === 'auto') {
      this.controller = new AbortController();
      this.schedulePoll();
    }
  }

  /** Stops listening: closes the stream, cancels the poll. */
  stop(): void {
    this.controller?.abort();
    this.controller = null;
    if (this.pollTimer !== null) this.deps.clock.clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  /** The SSE stream: every event asks for a sync; reconnects with backoff. */
  private async stream(signal: AbortSignal): Promise<void> {
    const { transport, clock, monitor } = this.deps;
    let failures = 0;
    while (!signal.aborted && transport.live) {
      try {
        const cursor = await readCursor(this.deps.db, scopeOf(this.deps.pull));
        const params: LiveParams = {};
        if (cursor !== undefined) params.cursor = cursor;
        if (this.deps.pull.filterEntityTypes) params.entityTypes = [...this.deps.pull.entityTypes];
        await transport.live(
          params,
          {
            onOpen: () => {
              failures = 0;
              this.deps.requestSync();
            },
            onChange: () => this.deps.requestSync(),
          },
          signal,
        );
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof NetworkError) monitor.report(false);
        failures += 1;
      }
      if (signal.aborted) return;
      try {
        await sleep(clock, backoffDelay(Math.max(1, failures), this.deps.random, this.deps.backoff), signal);
      } catch {
        return;
      }
    }
  }

  private schedulePoll(): void {
    if (!this.controller || this.controller.signal.aborted) return;
    this.pollTimer = this.deps.clock.setTimeout(() => {
      this.pollTimer = null;
      void this.poll().finally(() => this.schedulePoll());
    }, this.deps.pollIntervalMs);
  }

  /** One poll: sync when the server says something changed (or cannot say). */
  private async poll(): Promise<void> {
    const { transport, monitor, visibility } = this.deps;
    if (!monitor.getState().isOnline || !visibility.isVisible() || this.deps.isSyncing()) return;
    const cursor = await readCursor(this.deps.db, scopeOf(this.deps.pull));
    if (cursor === undefined || !transport.changed || !this.changedSupported) {
      this.deps.requestSync();
      return;
    }
    try {
      const params: ChangedParams = { cursor };
      if (this.deps.pull.filterEntityTypes) params.entityTypes = [...this.deps.pull.entityTypes];
      if (await transport.changed(params, this.controller?.signal)) this.deps.requestSync();
    } catch (error) {
      if (error instanceof HttpError && (error.status === 404 || error.code === 'PGRST202')) {
        this.changedSupported = false; // a server without sync_changed: pull instead
        this.deps.requestSync();
      } else if (error instanceof NetworkError) {
        monitor.report(false);
      } else if (error instanceof HttpError && error.status >= 400 && error.status < 500) {
        this.deps.requestSync(); // e.g. a cursor the server refuses: the pull sorts it out
      }
    }
  }
}
