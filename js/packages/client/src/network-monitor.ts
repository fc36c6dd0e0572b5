// The network monitor (the spec's network-monitor): drives network-state.ts from
// navigator.onLine and its events, a heartbeat to the server's health endpoint with a
// timeout (since onLine lies), navigator.connection, and what sync requests report.
// Its state is the spec's {status, isOnline, isOffline, isSlow, timeSinceOnline}; its
// snapshot object stays the same until something in it changes.

import type { Clock, TimerHandle } from './clock.js';
import { Emitter } from './emitter.js';
import { DEFAULT_THRESHOLDS, initialNetworkState, reduceNetwork, type NetworkEvent, type NetworkState, type NetworkThresholds } from './network-state.js';
import type { ConnectionSignal, OnlineSignal } from './signals.js';

export interface NetworkMonitorOptions {
  /** Heartbeat period while online (default 30000 ms). */
  heartbeatIntervalMs?: number;
  /** Heartbeat period after a heartbeat failed, while the browser says online (default 5000 ms). */
  offlineProbeIntervalMs?: number;
  /** A heartbeat without an answer after this long has failed (default 5000 ms). */
  heartbeatTimeoutMs?: number;
  /** A smoothed round trip above this is slow (default 1500 ms). */
  slowRttMs?: number;
  /** Failed heartbeats in a row before offline (default 2). */
  failuresBeforeOffline?: number;
  /** While offline and watched, timeSinceOnline is refreshed this often (default 1000 ms). */
  tickMs?: number;
}

export interface NetworkMonitorDeps {
  /** One cheap request to the server; resolves when it answered. */
  health(signal: AbortSignal): Promise<void>;
  clock: Clock;
  online: OnlineSignal;
  connection: ConnectionSignal;
  options?: NetworkMonitorOptions | undefined;
}

export class NetworkMonitor {
  private state: NetworkState;
  private readonly emitter = new Emitter<NetworkState>();
  private readonly thresholds: NetworkThresholds;
  private readonly unsubscribers: (() => void)[] = [];
  private heartbeatTimer: TimerHandle | null = null;
  private tickTimer: TimerHandle | null = null;
  private probing: Promise<NetworkState> | null = null;
  private running = false;

  constructor(private readonly deps: NetworkMonitorDeps) {
    const options = deps.options ?? {};
    this.thresholds = {
      slowRttMs: options.slowRttMs ?? DEFAULT_THRESHOLDS.slowRttMs,
      failuresBeforeOffline: options.failuresBeforeOffline ?? DEFAULT_THRESHOLDS.failuresBeforeOffline,
    };
    this.state = initialNetworkState(deps.online.isOnline(), deps.clock.now());
  }

  /** The current state (the same object until it changes). */
  getState(): NetworkState {
    return this.state;
  }

  /** Calls listener with every new state; returns the unsubscribe function. */
  subscribe(listener: (state: NetworkState) => void): () => void {
    const unsubscribe = this.emitter.subscribe(listener);
    this.scheduleTick();
    return unsubscribe;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Starts listening and the heartbeat (probes at once). Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const { online, connection } = this.deps;
    this.unsubscribers.push(
      online.subscribe((isOnline) => {
        this.dispatch({ type: isOnline ? 'browser-online' : 'browser-offline' });
        if (isOnline) void this.checkNow();
        else this.scheduleHeartbeat();
      }),
      connection.subscribe((info) => this.dispatch({ type: 'connection', effectiveType: info?.effectiveType, rtt: info?.rtt })),
    );
    const info = connection.get();
    if (info) this.dispatch({ type: 'connection', effectiveType: info.effectiveType, rtt: info.rtt });
    if (online.isOnline() !== this.state.browserOnline) this.dispatch({ type: online.isOnline() ? 'browser-online' : 'browser-offline' });
    if (online.isOnline()) void this.checkNow();
  }

  /** Stops listening and every timer. */
  stop(): void {
    this.running = false;
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    this.clearTimer('heartbeatTimer');
    this.clearTimer('tickTimer');
  }

  /** One heartbeat now (or joins the one under way); resolves with the state after it. */
  checkNow(): Promise<NetworkState> {
    if (this.probing) return this.probing;
    this.clearTimer('heartbeatTimer');
    const probe = this.probe().finally(() => {
      this.probing = null;
      this.scheduleHeartbeat();
    });
    this.probing = probe;
    return probe;
  }

  /** What a sync request learned: it got an answer (with its round trip), or no answer at all. */
  report(reached: boolean, rttMs?: number): void {
    if (reached) {
      if (!this.state.reachable || rttMs !== undefined) this.dispatch({ type: 'heartbeat-ok', rttMs: rttMs ?? this.state.rttMs ?? 0 });
    } else {
      this.dispatch({ type: 'heartbeat-failed' });
      if (this.running && this.state.browserOnline && !this.probing) void this.checkNow();
    }
  }

  private async probe(): Promise<NetworkState> {
    if (!this.deps.online.isOnline()) {
      if (this.state.browserOnline) this.dispatch({ type: 'browser-offline' });
      return this.state;
    }
    const { clock } = this.deps;
    const timeoutMs = this.deps.options?.heartbeatTimeoutMs ?? 5000;
    const controller = new AbortController();
    const started = clock.now();
    let timer: TimerHandle | null = null;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = clock.setTimeout(() => resolve('timeout'), timeoutMs);
    });
    let ok: boolean;
    try {
      const outcome = await Promise.race([this.deps.health(controller.signal).then(() => 'ok' as const), timeout]);
      ok = outcome === 'ok';
    } catch {
      ok = false;
    } finally {
      if (timer !== null) clock.clearTimeout(timer);
      controller.abort();
    }
    this.dispatch(ok ? { type: 'heartbeat-ok', rttMs: clock.now() - started } : { type: 'heartbeat-failed' });
    return this.state;
  }

  private dispatch(event: NetworkEvent): void {
    const next = reduceNetwork(this.state, event, this.deps.clock.now(), this.thresholds);
    if (sameState(next, this.state)) return;
    this.state = next;
    this.emitter.emit(next);
    this.scheduleTick();
  }

  private scheduleHeartbeat(): void {
    this.clearTimer('heartbeatTimer');
    if (!this.running || !this.deps.online.isOnline()) return;
    const options = this.deps.options ?? {};
    // after a failed heartbeat, look again soon: one failure is not yet offline
    const healthy = this.state.reachable && this.state.consecutiveFailures === 0;
    const delay = healthy ? (options.heartbeatIntervalMs ?? 30_000) : (options.offlineProbeIntervalMs ?? 5000);
    this.heartbeatTimer = this.deps.clock.setTimeout(() => {
      this.heartbeatTimer = null;
      void this.checkNow();
    }, delay);
  }

  /** While offline and watched, refresh timeSinceOnline. */
  private scheduleTick(): void {
    if (this.tickTimer !== null || !this.state.isOffline || this.emitter.size === 0 || !this.running) return;
    this.tickTimer = this.deps.clock.setTimeout(() => {
      this.tickTimer = null;
      this.dispatch({ type: 'tick' });
      this.scheduleTick();
    }, this.deps.options?.tickMs ?? 1000);
  }

  private clearTimer(name: 'heartbeatTimer' | 'tickTimer'): void {
    const timer = this[name];
    if (timer !== null) this.deps.clock.clearTimeout(timer);
    this[name] = null;
  }
}

function sameState(a: NetworkState, b: NetworkState): boolean {
  return (
    a.status === b.status &&
    a.timeSinceOnline === b.timeSinceOnline &&
    a.rttMs === b.rttMs &&
    a.browserOnline === b.browserOnline &&
    a.reachable === b.reachable &&
    a.consecutiveFailures === b.consecutiveFailures &&
    a.connectionSlow === b.connectionSlow
  );
}
