// The network monitor (the spec's network-monitor): drives network-state.ts from
// navigator.onLine and its events, a heartbeat to the server's health endpoint with a
// timeout (since onLine lies), navigator.connection, and what sync requests report.
// Its state is the spec's {status, isOnline, isOffline, isSlow, timeSinceOnline}; its
// snapshot object stays the same until something in it changes.
import { Emitter } from './emitter.js';
import { DEFAULT_THRESHOLDS, initialNetworkState, reduceNetwork } from './network-state.js';
export class NetworkMonitor {
    deps;
    state;
    emitter = new Emitter();
    thresholds;
    unsubscribers = [];
    heartbeatTimer = null;
    tickTimer = null;
    probing = null;
    running = false;
    constructor(deps) {
        this.deps = deps;
        const options = deps.options ?? {};
        this.thresholds = {
            slowRttMs: options.slowRttMs ?? DEFAULT_THRESHOLDS.slowRttMs,
            failuresBeforeOffline: options.failuresBeforeOffline ?? DEFAULT_THRESHOLDS.failuresBeforeOffline,
        };
        this.state = initialNetworkState(deps.online.isOnline(), deps.clock.now());
    }
    /** The current state (the same object until it changes). */
    getState() {
        return this.state;
    }
    /** Calls listener with every new state; returns the unsubscribe function. */
    subscribe(listener) {
        const unsubscribe = this.emitter.subscribe(listener);
        this.scheduleTick();
        return unsubscribe;
    }
    get isRunning() {
        return this.running;
    }
    /** Starts listening and the heartbeat (probes at once). Idempotent. */
    start() {
        if (this.running)
            return;
        this.running = true;
        const { online, connection } = this.deps;
        this.unsubscribers.push(online.subscribe((isOnline) => {
            this.dispatch({ type: isOnline ? 'browser-online' : 'browser-offline' });
            if (isOnline)
                void this.checkNow();
            else
                this.scheduleHeartbeat();
        }), connection.subscribe((info) => this.dispatch({ type: 'connection', effectiveType: info?.effectiveType, rtt: info?.rtt })));
        const info = connection.get();
        if (info)
            this.dispatch({ type: 'connection', effectiveType: info.effectiveType, rtt: info.rtt });
        if (online.isOnline() !== this.state.browserOnline)
            this.dispatch({ type: online.isOnline() ? 'browser-online' : 'browser-offline' });
        if (online.isOnline())
            void this.checkNow();
    }
    /** Stops listening and every timer. */
    stop() {
        this.running = false;
        for (const unsubscribe of this.unsubscribers.splice(0))
            unsubscribe();
        this.clearTimer('heartbeatTimer');
        this.clearTimer('tickTimer');
    }
    /** One heartbeat now (or joins the one under way); resolves with the state after it. */
    checkNow() {
        if (this.probing)
            return this.probing;
        this.clearTimer('heartbeatTimer');
        const probe = this.probe().finally(() => {
            this.probing = null;
            this.scheduleHeartbeat();
        });
        this.probing = probe;
        return probe;
    }
    /** What a sync request learned: it got an answer (with its round trip), or no answer at all. */
    report(reached, rttMs) {
        if (reached) {
            if (!this.state.reachable || rttMs !== undefined)
                this.dispatch({ type: 'heartbeat-ok', rttMs: rttMs ?? this.state.rttMs ?? 0 });
        }
        else {
            this.dispatch({ type: 'heartbeat-failed' });
            if (this.running && this.state.browserOnline && !this.probing)
                void this.checkNow();
        }
    }
    async probe() {
        if (!this.deps.online.isOnline()) {
            if (this.state.browserOnline)
                this.dispatch({ type: 'browser-offline' });
            return this.state;
        }
        const { clock } = this.deps;
        const timeoutMs = this.deps.options?.heartbeatTimeoutMs ?? 5000;
        const controller = new AbortController();
        const started = clock.now();
        let timer = null;
        const timeout = new Promise((resolve) => {
            timer = clock.setTimeout(() => resolve('timeout'), timeoutMs);
        });
        let ok;
        try {
            const outcome = await Promise.race([this.deps.health(controller.signal).then(() => 'ok'), timeout]);
            ok = outcome === 'ok';
        }
        catch {
            ok = false;
        }
        finally {
            if (timer !== null)
                clock.clearTimeout(timer);
            controller.abort();
        }
        this.dispatch(ok ? { type: 'heartbeat-ok', rttMs: clock.now() - started } : { type: 'heartbeat-failed' });
        return this.state;
    }
    dispatch(event) {
        const next = reduceNetwork(this.state, event, this.deps.clock.now(), this.thresholds);
        if (sameState(next, this.state))
            return;
        this.state = next;
        this.emitter.emit(next);
        this.scheduleTick();
    }
    scheduleHeartbeat() {
        this.clearTimer('heartbeatTimer');
        if (!this.running || !this.deps.online.isOnline())
            return;
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
    scheduleTick() {
        if (this.tickTimer !== null || !this.state.isOffline || this.emitter.size === 0 || !this.running)
            return;
        this.tickTimer = this.deps.clock.setTimeout(() => {
            this.tickTimer = null;
            this.dispatch({ type: 'tick' });
            this.scheduleTick();
        }, this.deps.options?.tickMs ?? 1000);
    }
    clearTimer(name) {
        const timer = this[name];
        if (timer !== null)
            this.deps.clock.clearTimeout(timer);
        this[name] = null;
    }
}
function sameState(a, b) {
    return (a.status === b.status &&
        a.timeSinceOnline === b.timeSinceOnline &&
        a.rttMs === b.rttMs &&
        a.browserOnline === b.browserOnline &&
        a.reachable === b.reachable &&
        a.consecutiveFailures === b.consecutiveFailures &&
        a.connectionSlow === b.connectionSlow);
}
