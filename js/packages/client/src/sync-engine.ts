// The sync engine (the spec's getSyncEngine()): one sync = resolutions kept while offline,
// then push (push.ts), then pull (pull.ts). Never two at once: in a tab, a second sync()
// joins the one running; across tabs, the Web Lock decides and the other tabs wait for its
// end and take its result (tab-coordinator.ts).
//
// Automatic syncing (after start(), and only while the network monitor says online):
// shortly after local changes, on reconnect when operations are pending, when a retry comes
// due, and when the server says something changed: the /live stream of @smartsync/server,
// or, behind PostgREST, a poll of sync_changed every few seconds while online and visible.

import { backoffDelay, type BackoffOptions } from './backoff.js';
import type { Clock, TimerHandle } from './clock.js';
import type { ConflictStore } from './conflict-store.js';
import { Database, META, QUEUE } from './database.js';
import { Emitter } from './emitter.js';
import { HttpError, NetworkError, isAbort } from './errors.js';
import type { NetworkMonitor } from './network-monitor.js';
import type { NetworkState } from './network-state.js';
import { pullAll, type PullContext } from './pull.js';
import { pushAll, type PushContext } from './push.js';
import type { VisibilitySignal } from './signals.js';
import type { SyncQueue } from './sync-queue.js';
import type { TabCoordinator } from './tab-coordinator.js';
import type { Transport } from './transport.js';
import { LiveChanges } from './live.js';
import type { QueuedOperation } from './types.js';

/** Where the last sync's result is kept (meta store), for the tabs that waited for it. */
const LAST_RESULT_KEY = 'lastResult';

/** The spec's getLastResult(), plus what else a sync learned. */
export interface SyncResult {
  /** Operations the server applied. */
  synced: number;
  /** Operations that failed for good. */
  failed: number;
  /** New conflicts saved to the conflict store. */
  conflicts: number;
  /** Changes pulled and applied. */
  pulled: number;
  startedAt: number;
  durationMs: number;
  /** Conflicts the server resolved at once by policy. */
  resolved: number;
  /** Operations waiting for a retry. */
  retrying: number;
  /** Operations still queued after the sync. */
  pending: number;
  /** The device listed everything again: the server asked (410), or a push answer showed changes no pull would send. */
  refetched: boolean;
  /** Why the sync stopped early: no network, a refused token, the server in trouble. */
  error?: { name: string; message: string; status?: number; code?: string };
  /** The sync ran in another tab; this is its result. */
  otherTab?: boolean;
}

/** What the engine shows a UI. */
export interface SyncEngineState {
  syncing: boolean;
  lastResult: SyncResult | null;
}

/** What start() switches on (the spec's initializeNetworkMonitoring options). */
export interface AutoSyncOptions {
  /** Sync when the network comes back and operations are pending (default true). */
  syncOnReconnect?: boolean;
  /** Sync after local changes, when retries come due, and when the server announces changes (default true). */
  autoSyncEnabled?: boolean;
}

export interface SyncEngineOptions {
  /** Delay between a local change and the automatic sync it triggers (default 200 ms: changes made together go together). */
  autoSyncDelayMs?: number;
  /** `sse` (transport.live), `poll` (transport.changed every pollIntervalMs), `auto` (sse when the transport has it), or `off`. */
  live?: 'auto' | 'sse' | 'poll' | 'off';
  /** Poll period behind PostgREST (default 5000 ms). */
  pollIntervalMs?: number;
}

export interface SyncEngineDeps {
  db: Database;
  transport: Transport;
  clock: Clock;
  random: () => number;
  backoff: BackoffOptions;
  queue: SyncQueue;
  conflicts: ConflictStore;
  monitor: NetworkMonitor;
  coordinator: TabCoordinator;
  visibility: VisibilitySignal;
  push: Omit<PushContext, 'signal'>;
  pull: Omit<PullContext, 'signal'>;
  options: SyncEngineOptions;
}

export class SyncEngine {
  private running: Promise<SyncResult> | null = null;
  private otherTabSyncing = false;
  private lastResult: SyncResult | null = null;
  private state: SyncEngineState = { syncing: false, lastResult: null };
  private readonly emitter = new Emitter<SyncEngineState>();
  private readonly closing = new AbortController();
  private auto: Required<AutoSyncOptions> | null = null;
  private timer: TimerHandle | null = null;
  private timerDue = Infinity;
  private failures = 0;
  private readonly live: LiveChanges;
  private readonly unsubscribers: (() => void)[] = [];
  private readonly autoUnsubscribers: (() => void)[] = [];

  constructor(private readonly deps: SyncEngineDeps) {
    this.live = new LiveChanges({
      db: deps.db,
      transport: deps.transport,
      clock: deps.clock,
      random: deps.random,
      backoff: deps.backoff,
      monitor: deps.monitor,
      visibility: deps.visibility,
      pull: deps.pull,
      mode: deps.options.live ?? 'auto',
      pollIntervalMs: deps.options.pollIntervalMs ?? 5000,
      requestSync: () => this.schedule(0),
      isSyncing: () => this.running !== null,
    });
    this.unsubscribers.push(
      deps.coordinator.onMessage((message) => {
        if (message.type === 'sync-start') this.setOtherTab(true);
        else if (message.type === 'sync-end') {
          this.lastResult = { ...(message.result as SyncResult), otherTab: true };
          this.setOtherTab(false);
        }
      }),
    );
  }

  /** Runs a sync now, or joins the one under way (in this tab or another). */
  sync(): Promise<SyncResult> {
    if (this.closing.signal.aborted) return Promise.reject(this.closing.signal.reason ?? new Error('closed'));
    if (this.running) return this.running;
    const run = this.runExclusive().finally(() => {
      this.running = null;
      this.publish();
    });
    this.running = run;
    this.publish();
    return run;
  }

  /**
   * The spec's getLastResult(): the last sync's result (this tab's, another tab's, or the one
   * stored before a reload). Before any sync: zeros, with `startedAt` 0.
   */
  getLastResult(): SyncResult {
    return this.lastResult ?? NO_SYNC_YET;
  }

  /** Reads the last result stored in IndexedDB (after a reload); called once by createSmartSync. */
  async loadLastResult(): Promise<void> {
    const stored = (await this.deps.db.transaction([META], 'readonly', (tx) => tx.objectStore(META).get(LAST_RESULT_KEY))) as { result: SyncResult } | undefined;
    if (stored && this.lastResult === null) {
      this.lastResult = stored.result;
      this.publish();
    }
  }

  /** The spec's isSyncing(): a sync runs, in this tab or another. */
  isSyncing(): boolean {
    return this.running !== null || this.otherTabSyncing;
  }

  /** The engine's state for a UI; the same object until it changes. */
  getState(): SyncEngineState {
    return this.state;
  }

  subscribe(listener: (state: SyncEngineState) => void): () => void {
    return this.emitter.subscribe(listener);
  }

  /** Switches automatic syncing on. Idempotent; a second call changes the options. */
  start(options: AutoSyncOptions = {}): void {
    const first = this.auto === null;
    this.auto = { syncOnReconnect: options.syncOnReconnect ?? true, autoSyncEnabled: options.autoSyncEnabled ?? true };
    if (!first) return;
    const { monitor, visibility } = this.deps;
    let previous = monitor.getState();
    this.autoUnsubscribers.push(
      monitor.subscribe((state) => {
        const reconnected = previous.isOffline && state.isOnline;
        const disconnected = previous.isOnline && state.isOffline;
        previous = state;
        if (reconnected) void this.onReconnect();
        if (disconnected) this.live.stop();
      }),
      visibility.subscribe((visible) => {
        if (visible && this.auto?.autoSyncEnabled && monitor.getState().isOnline) this.schedule(0);
      }),
    );
    monitor.start();
    if (this.auto.autoSyncEnabled) {
      this.live.start();
      void this.schedulePending();
    }
  }

  /** Switches automatic syncing off (a running sync finishes). */
  stop(): void {
    this.auto = null;
    this.clearTimer();
    this.live.stop();
    for (const unsubscribe of this.autoUnsubscribers.splice(0)) unsubscribe();
    this.deps.monitor.stop();
  }

  /** Stops everything for good; a running sync is aborted. */
  close(): void {
    this.stop();
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    this.closing.abort(new DOMException('smartsync instance closed', 'AbortError'));
  }

  /** A local change was queued. */
  onQueued(): void {
    if (this.auto?.autoSyncEnabled && this.deps.monitor.getState().isOnline) this.schedule(this.deps.options.autoSyncDelayMs ?? 200);
  }

  /** Queued operations became sendable (a conflict resolved, failed ones retried). */
  onReleased(): void {
    this.onQueued();
  }

  private async onReconnect(): Promise<void> {
    if (!this.auto) return;
    if (this.auto.autoSyncEnabled) this.live.start();
    if (!this.auto.syncOnReconnect) return;
    const stats = await this.deps.queue.getStats();
    if (stats.pending > 0 || stats.inFlight > 0) this.schedule(0);
  }

  private async runExclusive(): Promise<SyncResult> {
    const { coordinator } = this.deps;
    // the startup recovery holds the lock a moment: this tab's own, not another tab's sync
    await this.deps.queue.ready();
    const startedAt = this.deps.clock.now();
    const outcome = await coordinator.runExclusive(async () => {
      coordinator.post({ type: 'sync-start' });
      const result = await this.runSync(startedAt);
      // stored before the lock is released: a tab waiting for it reads it there
      await this.deps.db.transaction([META], 'readwrite', (tx) => tx.objectStore(META).put({ key: LAST_RESULT_KEY, result }));
      coordinator.post({ type: 'sync-end', result });
      return result;
    });
    if (outcome.ran) {
      this.lastResult = outcome.value;
      await this.followUp(outcome.value);
      return outcome.value;
    }
    // another tab syncs the same database: wait for it and take its result
    this.setOtherTab(true);
    await coordinator.waitForRelease();
    const stored = (await this.deps.db.transaction([META], 'readonly', (tx) => tx.objectStore(META).get(LAST_RESULT_KEY))) as { result: SyncResult } | undefined;
    this.setOtherTab(false);
    const theirs = stored && stored.result.startedAt + stored.result.durationMs >= startedAt ? { ...stored.result, otherTab: true } : null;
    if (theirs) {
      this.lastResult = theirs;
      this.publish();
    }
    // what this tab queued while the other one pushed may have missed that push
    await this.schedulePending();
    return theirs ?? { ...emptyResult(startedAt, this.deps.clock.now() - startedAt), otherTab: true };
  }

  private async runSync(startedAt: number): Promise<SyncResult> {
    const { clock, monitor } = this.deps;
    const signal = this.closing.signal;
    const result = emptyResult(startedAt, 0);
    let reached = false;
    try {
      await this.deps.conflicts.sendQueued(signal);
      const push = await pushAll({ ...this.deps.push, signal });
      result.synced = push.synced;
      result.failed = push.failed;
      result.conflicts = push.conflicts;
      result.resolved = push.resolved;
      result.retrying = push.retrying;
      if (push.batches > 0 && !(push.error instanceof NetworkError)) reached = true;
      if (push.error) throw push.error;
      const pull = await pullAll({ ...this.deps.pull, signal });
      result.pulled = pull.pulled;
      result.refetched = pull.refetched;
      reached = true;
    } catch (error) {
      if (isAbort(error, signal)) throw error;
      result.error = describe(error);
      if (error instanceof NetworkError) monitor.report(false);
      else if (error instanceof HttpError) reached = true;
    }
    if (reached) monitor.report(true);
    result.pending = await this.countPending();
    result.durationMs = clock.now() - startedAt;
    return result;
  }

  /** After a sync: retry timers, backoff after trouble. */
  private async followUp(result: SyncResult): Promise<void> {
    if (!this.auto?.autoSyncEnabled) return;
    const status = result.error?.status;
    const transient = result.error !== undefined && (result.error.name === 'NetworkError' || (status !== undefined && (status >= 500 || status === 408 || status === 429)));
    if (transient) {
      this.failures += 1;
      if (this.deps.monitor.getState().isOnline) this.schedule(backoffDelay(this.failures, this.deps.random, this.deps.backoff));
      return;
    }
    this.failures = 0;
    await this.schedulePending();
  }

  /** Schedules a sync for the earliest queued operation that will be due. */
  private async schedulePending(): Promise<void> {
    if (!this.auto?.autoSyncEnabled) return;
    const ops = await this.deps.db.transaction([QUEUE], 'readonly', (tx) => tx.objectStore(QUEUE).getAll() as Promise<QueuedOperation[]>);
    let due = Infinity;
    for (const op of ops) {
      if (op.status === 'pending') due = Math.min(due, op.nextAttemptAt ?? 0);
      // left in flight by a push a reload cut off: the startup recovery (or the push) puts it back
      else if (op.status === 'in-flight') due = 0;
    }
    if (due === Infinity) return;
    this.schedule(Math.max(0, due - this.deps.clock.now()));
  }

  /** One timer: the earliest requested sync wins. */
  private schedule(delayMs: number): void {
    if (this.closing.signal.aborted) return;
    const due = this.deps.clock.now() + delayMs;
    if (this.timer !== null && this.timerDue <= due) return;
    this.clearTimer();
    this.timerDue = due;
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = null;
      this.timerDue = Infinity;
      if (!this.auto) return;
      // offline: nothing would get through (a push would only mark its batch in flight and
      // put it back); the reconnect starts the next sync (onReconnect)
      if (this.deps.monitor.getState().isOffline) return;
      if (this.running) {
        // a sync is under way: sync again after it, so nothing requested meanwhile is missed
        void this.running.then(() => this.schedule(0), () => undefined);
        return;
      }
      void this.sync().catch(() => undefined);
    }, Math.max(0, delayMs));
  }

  private clearTimer(): void {
    if (this.timer !== null) this.deps.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
  }

  private async countPending(): Promise<number> {
    const stats = await this.deps.queue.getStats();
    return stats.pending + stats.inFlight;
  }

  private setOtherTab(syncing: boolean): void {
    this.otherTabSyncing = syncing;
    this.publish();
  }

  private publish(): void {
    const syncing = this.isSyncing();
    if (syncing === this.state.syncing && this.lastResult === this.state.lastResult) return;
    this.state = { syncing, lastResult: this.lastResult };
    this.emitter.emit(this.state);
  }
}

const NO_SYNC_YET: SyncResult = Object.freeze({ synced: 0, failed: 0, conflicts: 0, pulled: 0, startedAt: 0, durationMs: 0, resolved: 0, retrying: 0, pending: 0, refetched: false });

function emptyResult(startedAt: number, durationMs: number): SyncResult {
  return { synced: 0, failed: 0, conflicts: 0, pulled: 0, startedAt, durationMs, resolved: 0, retrying: 0, pending: 0, refetched: false };
}

function describe(error: unknown): NonNullable<SyncResult['error']> {
  const out: NonNullable<SyncResult['error']> = {
    name: error instanceof Error ? error.name : 'Error',
    message: error instanceof Error ? error.message : String(error),
  };
  if (error instanceof HttpError) {
    out.status = error.status;
    if (error.code !== undefined) out.code = error.code;
  }
  return out;
}

export type { NetworkState };
