// The network monitor: the state machine on its own, then the monitor with fake timers
// (heartbeat, timeout, slow, timeSinceOnline), then auto-sync on reconnect.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { NetworkMonitor, initialNetworkState, manualOnlineSignal, reduceNetwork, systemClock, type ConnectionInfo, type NetworkEvent } from '../../src/index.js';
import { makeClient, settle, type TestClient } from './helpers.js';

afterEach(() => vi.useRealTimers());

describe('the state machine', () => {
  const run = (events: NetworkEvent[], start = 0) => {
    let state = initialNetworkState(true, start);
    let t = start;
    for (const event of events) {
      t += 1000;
      state = reduceNetwork(state, event, t);
    }
    return state;
  };

  it('starts online when the browser says so, with the spec fields', () => {
    expect(initialNetworkState(true, 0)).toMatchObject({ status: 'online', isOnline: true, isOffline: false, isSlow: false, timeSinceOnline: 0 });
    expect(initialNetworkState(false, 0)).toMatchObject({ status: 'offline', isOnline: false, isOffline: true, isSlow: false });
  });

  it('goes offline at once when the browser does', () => {
    expect(run([{ type: 'browser-offline' }])).toMatchObject({ status: 'offline', timeSinceOnline: 0 });
  });

  it("stays offline after the browser's online event until a heartbeat gets through", () => {
    const back = run([{ type: 'browser-offline' }, { type: 'browser-online' }]);
    expect(back.status).toBe('offline');
    expect(back.timeSinceOnline).toBe(1000);
    expect(reduceNetwork(back, { type: 'heartbeat-ok', rttMs: 40 }, 3000)).toMatchObject({ status: 'online', timeSinceOnline: 0, rttMs: 40 });
  });

  it('goes offline after failuresBeforeOffline heartbeats fail in a row, though the browser says online', () => {
    expect(run([{ type: 'heartbeat-failed' }]).status).toBe('online');
    expect(run([{ type: 'heartbeat-failed' }, { type: 'heartbeat-failed' }])).toMatchObject({ status: 'offline', browserOnline: true });
    expect(run([{ type: 'heartbeat-failed' }, { type: 'heartbeat-ok', rttMs: 10 }, { type: 'heartbeat-failed' }]).status).toBe('online');
  });

  it('is slow when the smoothed round trip passes slowRttMs, or the connection is 2g', () => {
    const slow = run([{ type: 'heartbeat-ok', rttMs: 3000 }]);
    expect(slow).toMatchObject({ status: 'slow', isOnline: true, isSlow: true });
    // one fast answer does not undo it at once: the round trip is smoothed
    expect(run([{ type: 'heartbeat-ok', rttMs: 3000 }, { type: 'heartbeat-ok', rttMs: 50 }]).status).toBe('slow');
    expect(run([{ type: 'heartbeat-ok', rttMs: 3000 }, { type: 'heartbeat-ok', rttMs: 50 }, { type: 'heartbeat-ok', rttMs: 50 }, { type: 'heartbeat-ok', rttMs: 50 }]).status).toBe('online');
    expect(run([{ type: 'connection', effectiveType: '2g' }]).status).toBe('slow');
    expect(run([{ type: 'connection', effectiveType: '4g', rtt: 50 }]).status).toBe('online');
  });

  it('counts timeSinceOnline from the moment it went offline', () => {
    const state = run([{ type: 'browser-offline' }, { type: 'tick' }, { type: 'tick' }]);
    expect(state.timeSinceOnline).toBe(2000);
  });
});

describe('the monitor', () => {
  it('probes the health endpoint with a timeout: two silent heartbeats make it offline, an answer brings it back', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let answer: 'ok' | 'hang' = 'ok';
    const probes: number[] = [];
    const start = Date.now();
    const monitor = new NetworkMonitor({
      health: (signal) => {
        probes.push(Date.now() - start);
        if (answer === 'ok') return Promise.resolve();
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
      },
      clock: systemClock,
      online: manualOnlineSignal(true),
      connection: { get: () => null, subscribe: () => () => undefined },
      options: { heartbeatIntervalMs: 30_000, offlineProbeIntervalMs: 5000, heartbeatTimeoutMs: 3000 },
    });
    const statuses: string[] = [];
    monitor.subscribe((state) => statuses.push(state.status));
    monitor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(probes).toEqual([0]);
    expect(monitor.getState().status).toBe('online');

    answer = 'hang';
    await vi.advanceTimersByTimeAsync(30_000); // heartbeat at 30 s hangs, times out at 33 s
    await vi.advanceTimersByTimeAsync(3000);
    expect(monitor.getState()).toMatchObject({ status: 'online', consecutiveFailures: 1 });
    await vi.advanceTimersByTimeAsync(5000 + 3000); // retried sooner (it is not reachable yet), times out again
    expect(monitor.getState()).toMatchObject({ status: 'offline', isOffline: true, browserOnline: true });
    expect(probes).toEqual([0, 30_000, 38_000]);

    await vi.advanceTimersByTimeAsync(4000);
    expect(monitor.getState().timeSinceOnline).toBe(4000); // ticks every second while watched
    answer = 'ok';
    await vi.advanceTimersByTimeAsync(1000 + 3000); // next probe at 46 s answers
    expect(monitor.getState()).toMatchObject({ status: 'online', timeSinceOnline: 0 });
    expect(statuses.filter((s, i) => s !== statuses[i - 1])).toEqual(['online', 'offline', 'online']);
    monitor.stop();
  });

  it('follows navigator.onLine: offline at once, and on the online event probes before saying online', async () => {
    const online = manualOnlineSignal(true);
    let healthy = true;
    const monitor = new NetworkMonitor({
      health: () => (healthy ? Promise.resolve() : Promise.reject(new Error('down'))),
      clock: systemClock,
      online,
      connection: { get: () => null, subscribe: () => () => undefined },
    });
    monitor.start();
    await monitor.checkNow();
    online.set(false);
    expect(monitor.getState().status).toBe('offline');
    healthy = false;
    online.set(true); // the event fires, but the server does not answer
    await monitor.checkNow();
    expect(monitor.getState().status).toBe('offline');
    healthy = true;
    await monitor.checkNow();
    expect(monitor.getState().status).toBe('online');
    monitor.stop();
  });

  it('reads navigator.connection', () => {
    let info: ConnectionInfo | null = { effectiveType: 'slow-2g' };
    const listeners: ((i: ConnectionInfo | null) => void)[] = [];
    const monitor = new NetworkMonitor({
      health: () => Promise.resolve(),
      clock: systemClock,
      online: manualOnlineSignal(true),
      connection: { get: () => info, subscribe: (l) => (listeners.push(l), () => undefined) },
    });
    monitor.start();
    expect(monitor.getState().status).toBe('slow');
    info = { effectiveType: '4g', rtt: 50 };
    for (const listener of listeners) listener(info);
    expect(monitor.getState().status).toBe('online');
    monitor.stop();
  });
});

describe('auto-sync on reconnect', () => {
  let client: TestClient;
  afterEach(() => client?.sync.close());

  it('syncs when the network comes back and operations are pending, and not otherwise', async () => {
    client = makeClient({ engine: { live: 'off', autoSyncDelayMs: 0 } });
    client.sync.initializeNetworkMonitoring({ syncOnReconnect: true, autoSyncEnabled: true });
    await client.sync.networkMonitor.checkNow();
    await settle(50);
    const syncsAfterStart = client.server.pulls.length;

    client.online.set(false);
    client.online.set(true); // back, nothing pending
    await client.sync.networkMonitor.checkNow();
    await settle(100);
    expect(client.server.pulls.length).toBe(syncsAfterStart);

    client.online.set(false);
    await client.sync.store.create('clients', { name: 'made offline' });
    await settle(50);
    expect(client.server.pushes).toHaveLength(0); // offline: nothing sent
    client.online.set(true);
    await client.sync.networkMonitor.checkNow();
    for (let i = 0; i < 20 && client.server.tables.get('clients')!.size === 0; i++) await settle(50);
    expect(client.server.pushes).toHaveLength(1);
    expect(await client.sync.syncQueueStorage.getStats()).toMatchObject({ pending: 0 });
  });
});
