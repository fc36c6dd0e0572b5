// The sync engine: one sync at a time in a tab and across tabs (Web Locks +
// BroadcastChannel), a push cut off by a reload, several instances side by side, and live
// changes (SSE, polling).

import { afterEach, describe, expect, it, vi } from 'vitest';
import { IDBFactory } from 'fake-indexeddb';
import { HttpError, createSmartSync, httpTransport, manualOnlineSignal, type LockManagerLike, type SmartSync, type StoreChange, type SyncResult, type Transport } from '../../src/index.js';
import { FakeServer } from './fake-server.js';
import { TYPES, makeClient, settle } from './helpers.js';

const open: { close(): void }[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.close();
  vi.useRealTimers();
});

/** The Web Locks API's exclusive/shared locks and ifAvailable, for one origin. */
function lockManager(): LockManagerLike {
  const held = new Map<string, { mode: 'exclusive' | 'shared'; count: number }>();
  const waiting: (() => void)[] = [];
  const wake = (): void => {
    for (const resume of waiting.splice(0)) resume();
  };
  const free = (name: string, mode: 'exclusive' | 'shared'): boolean => {
    const lock = held.get(name);
    return !lock || (mode === 'shared' && lock.mode === 'shared');
  };
  return {
    async request(name, options, callback) {
      const mode = options.mode ?? 'exclusive';
      if (!free(name, mode)) {
        if (options.ifAvailable) return callback(null);
        while (!free(name, mode)) await new Promise<void>((resolve) => waiting.push(resolve));
      }
      const lock = held.get(name);
      if (lock) lock.count += 1;
      else held.set(name, { mode, count: 1 });
      try {
        return await callback({ name, mode });
      } finally {
        const current = held.get(name)!;
        current.count -= 1;
        if (current.count === 0) held.delete(name);
        wake();
      }
    },
  };
}

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('one sync at a time', () => {
  it('in a tab: a second sync() joins the one running', async () => {
    const client = makeClient();
    open.push(client.sync);
    await client.sync.store.create('clients', { name: 'Ann' });
    const hold = gate();
    client.server.beforePush = async () => {
      await hold.promise;
      return undefined;
    };
    const engine = client.sync.getSyncEngine();
    const first = engine.sync();
    const second = engine.sync();
    expect(second).toBe(first);
    expect(engine.isSyncing()).toBe(true);
    hold.open();
    const [a, b] = await Promise.all([first, second]);
    expect(a).toBe(b);
    expect(engine.isSyncing()).toBe(false);
    expect(client.server.pushes).toHaveLength(1);
    expect(engine.getLastResult()).toBe(a);
  });

  it('across tabs: the Web Lock lets one tab sync; the other waits, shows it syncing, takes its result and refreshes', async () => {
    const server = new FakeServer(TYPES);
    const indexedDB = new IDBFactory(); // one origin: both tabs open the same database
    const locks = lockManager();
    const tab = (): SmartSync => {
      const sync = createSmartSync({
        transport: server.transport('tablet-1'),
        tenantId: 'happy-paws',
        deviceId: 'tablet-1',
        entityTypes: TYPES,
        indexedDB,
        locks,
        random: () => 0.5,
        online: { isOnline: () => true, subscribe: () => () => undefined },
      });
      open.push(sync);
      return sync;
    };
    const a = tab();
    const b = tab();
    await a.store.create('clients', { name: 'Ann' });
    const changesSeenByB: StoreChange[] = [];
    b.store.subscribe('clients', (change) => changesSeenByB.push(change));

    const hold = gate();
    server.beforePush = async () => {
      await hold.promise;
      return undefined;
    };
    const running = a.getSyncEngine().sync();
    for (let i = 0; i < 100 && !b.getSyncEngine().isSyncing(); i++) await settle(5);
    expect(b.getSyncEngine().isSyncing()).toBe(true); // B has not asked: tab A told it
    const waiting = b.getSyncEngine().sync(); // waits for tab A's lock
    hold.open();
    const [resultA, resultB] = (await Promise.all([running, waiting])) as [SyncResult, SyncResult];
    expect(resultA).toMatchObject({ synced: 1 });
    expect(resultB).toMatchObject({ synced: 1, otherTab: true });
    expect(server.pushes).toHaveLength(1);
    expect(b.getSyncEngine().isSyncing()).toBe(false);
    expect(changesSeenByB.some((change) => change.source === 'other-tab')).toBe(true);
    expect((await b.store.list('clients')).map((row) => row.id)).toEqual([1]); // B reads what A wrote
  });
});

describe('a page that reloads in the middle of a push', () => {
  /** A transport whose push reaches the server (which applies it) but whose answer never comes: the page is gone. */
  function answerLost(base: Transport, reached: () => void): Transport {
    return {
      ...base,
      push: async (request) => {
        await base.push(request);
        reached();
        return new Promise<never>(() => undefined);
      },
    };
  }

  it('leaves no operation in flight: the next page finds them pending, and its sync sends them again, applied once', async () => {
    const server = new FakeServer(TYPES);
    const indexedDB = new IDBFactory(); // what survives the reload
    const reached = gate();
    const before = makeClient({ server, indexedDB, transport: answerLost(server.transport('tablet-1'), reached.open) });
    open.push(before.sync);
    await before.sync.store.create('clients', { name: 'Ann' });
    await before.sync.store.create('clients', { name: 'Bob' });
    void before.sync.getSyncEngine().sync();
    await reached.promise;
    expect(await before.sync.syncQueueStorage.getStats()).toEqual({ pending: 0, inFlight: 2, failed: 0, conflicts: 0 });

    const after = makeClient({ server, indexedDB }); // the reloaded page
    open.push(after.sync);
    expect(await after.sync.syncQueueStorage.getStats()).toEqual({ pending: 2, inFlight: 0, failed: 0, conflicts: 0 });
    expect(await after.sync.getSyncEngine().sync()).toMatchObject({ synced: 2, failed: 0, pending: 0 });
    expect(server.pushes).toHaveLength(2);
    expect(server.pushes[1]!.operations.map((op) => op.id)).toEqual(server.pushes[0]!.operations.map((op) => op.id)); // the same operations
    expect([...server.tables.get('clients')!.values()].map((row) => row.data.name)).toEqual(['Ann', 'Bob']); // applied once: the ledger answered the replay
    expect((await after.sync.store.list('clients')).map((row) => [row.id, row.syncStatus])).toEqual([
      [1, 'synced'],
      [2, 'synced'],
    ]);
  });

  it('reloaded offline, it keeps them pending (no automatic sync is tried offline) and sends them once the network is back', async () => {
    const server = new FakeServer(TYPES);
    const indexedDB = new IDBFactory();
    const reached = gate();
    const before = makeClient({ server, indexedDB, transport: answerLost(server.transport('tablet-1'), reached.open) });
    open.push(before.sync);
    await before.sync.store.create('clients', { name: 'Ann' });
    void before.sync.getSyncEngine().sync();
    await reached.promise;

    const online = manualOnlineSignal(false);
    const after = makeClient({ server, indexedDB, online, engine: { live: 'off', autoSyncDelayMs: 0 } });
    open.push(after.sync);
    after.sync.initializeNetworkMonitoring({ syncOnReconnect: true, autoSyncEnabled: true });
    await settle(50);
    expect(after.transport.calls).toEqual([]); // offline: not even a try
    expect(await after.sync.syncQueueStorage.getStats()).toEqual({ pending: 1, inFlight: 0, failed: 0, conflicts: 0 });
    expect(after.sync.getSyncEngine().isSyncing()).toBe(false);

    online.set(true);
    for (let i = 0; i < 100 && (await after.sync.syncQueueStorage.getStats()).pending > 0; i++) await settle(5);
    expect(await after.sync.syncQueueStorage.getStats()).toEqual({ pending: 0, inFlight: 0, failed: 0, conflicts: 0 });
    expect(after.transport.calls.filter((call) => call === 'push')).toEqual(['push']);
    expect(server.tables.get('clients')!.size).toBe(1);
  });

  it("a tab opened while another tab pushes leaves that push's operations in flight", async () => {
    const server = new FakeServer(TYPES);
    const indexedDB = new IDBFactory();
    const locks = lockManager();
    const tab = (): SmartSync => {
      const sync = createSmartSync({
        transport: server.transport('tablet-1'),
        tenantId: 'happy-paws',
        deviceId: 'tablet-1',
        entityTypes: TYPES,
        indexedDB,
        locks,
        random: () => 0.5,
        online: { isOnline: () => true, subscribe: () => () => undefined },
      });
      open.push(sync);
      return sync;
    };
    const a = tab();
    await a.store.create('clients', { name: 'Ann' });
    const reached = gate();
    const hold = gate();
    server.beforePush = async () => {
      reached.open();
      await hold.promise;
      return undefined;
    };
    const running = a.getSyncEngine().sync();
    await reached.promise;
    const b = tab(); // opened while tab A holds the sync lock
    expect(await b.syncQueueStorage.getStats()).toEqual({ pending: 0, inFlight: 1, failed: 0, conflicts: 0 });
    hold.open();
    expect(await running).toMatchObject({ synced: 1 });
    expect(await b.syncQueueStorage.getStats()).toEqual({ pending: 0, inFlight: 0, failed: 0, conflicts: 0 });
    expect(server.pushes).toHaveLength(1);
  });
});

describe('several instances', () => {
  it('keep their own databases, queues and cursors', async () => {
    const server = new FakeServer(TYPES);
    const one = makeClient({ server, deviceId: 'tablet-1' });
    const two = makeClient({ server, deviceId: 'phone-2' });
    open.push(one.sync, two.sync);
    await one.sync.store.create('clients', { name: 'from the tablet' });
    await two.sync.store.create('pets', { name: 'from the phone', client_id: 99 });
    expect(await one.sync.syncQueueStorage.getStats()).toMatchObject({ pending: 1 });
    expect(await one.sync.store.count('pets')).toBe(0);
    await one.sync.getSyncEngine().sync();
    expect(await two.sync.syncQueueStorage.getStats()).toMatchObject({ pending: 1 });
    await two.sync.getSyncEngine().sync();
    await one.sync.getSyncEngine().sync();
    expect((await one.sync.store.list('pets')).map((r) => r.data.name)).toEqual(['from the phone']);
    expect((await two.sync.store.list('clients')).map((r) => r.data.name)).toEqual(['from the tablet']);
    expect(server.pushes.map((p) => p.clientId)).toEqual(['tablet-1', 'phone-2']);
  });
});

describe('live changes', () => {
  it('with @smartsync/server: each event of the /live stream triggers a sync', async () => {
    const server = new FakeServer(TYPES);
    const encoder = new TextEncoder();
    let push!: (text: string) => void;
    const requested: string[] = [];
    const fetch = async (url: string, init?: RequestInit): Promise<Response> => {
      requested.push(`${init?.method} ${url} ${(init?.headers as Record<string, string>).Authorization ?? ''}`);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          push = (text) => controller.enqueue(encoder.encode(text));
          init?.signal?.addEventListener('abort', () => controller.close());
        },
      });
      return new Response(stream, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
    };
    const live = httpTransport({ baseUrl: 'http://server/api/sync', getToken: () => 'jwt-1', fetch });
    const client = makeClient({ server, engine: { live: 'sse' } });
    open.push(client.sync);
    // the fake server answers push and pull; the stream comes from httpTransport over a fetch that streams
    Object.assign(client.transport, { live: live.live });
    client.sync.initializeNetworkMonitoring({ autoSyncEnabled: true });
    for (let i = 0; i < 40 && server.pulls.length < 1; i++) await settle(10);
    expect(requested).toEqual(['GET http://server/api/sync/live?entityTypes=clients%2Cpets%2Cappointments Bearer jwt-1']);
    const afterOpen = server.pulls.length;
    expect(afterOpen).toBe(1); // on open: catch up

    server.write('clients', 1, { name: 'made on the server' });
    push('retry: 3000\nevent: ready\nid: 1-0\ndata: {}\n\n');
    push('event: heartbeat\ndata: {"time":1}\n\n');
    push(': a comment\n\n');
    await settle(100);
    expect(server.pulls.length).toBe(afterOpen); // none of those asks for a pull
    push('event: changed\nid: 1-1\ndata: {"reason":"notify","practices":["1"]}\n\n');
    for (let i = 0; i < 40 && (await client.sync.store.count('clients')) === 0; i++) await settle(10);
    expect((await client.sync.store.get('clients', 1))?.data.name).toBe('made on the server');
    expect(server.pulls.length).toBe(afterOpen + 1); // ready, heartbeat and the comment did nothing; changed one pull
  });

  it('behind PostgREST: polls sync_changed while online and visible, and pulls when it says true', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const client = makeClient({ engine: { live: 'poll', pollIntervalMs: 5000 } });
    open.push(client.sync);
    await client.sync.getSyncEngine().sync(); // a cursor to ask about
    let changed = false;
    const asked: number[] = [];
    const start = Date.now();
    Object.assign(client.transport, {
      changed: async ({ cursor, entityTypes }: { cursor: string; entityTypes?: string[] }) => {
        expect(cursor).toMatch(/^C:/);
        expect(entityTypes).toEqual(['clients', 'pets', 'appointments']); // the pull's scope
        asked.push(Date.now() - start);
        return changed;
      },
    });
    const advance = async (ms: number): Promise<void> => {
      for (let t = 0; t < ms; t += 1000) {
        await vi.advanceTimersByTimeAsync(1000);
        await settle(50);
      }
    };
    client.sync.initializeNetworkMonitoring({ autoSyncEnabled: true });
    await settle(50);
    const pullsBefore = client.server.pulls.length;
    await advance(10_000);
    expect(asked).toEqual([5000, 10_000]);
    expect(client.server.pulls.length).toBe(pullsBefore); // nothing new: no pull

    client.server.write('clients', 1, { name: 'new' });
    changed = true;
    await advance(6000);
    expect(await client.sync.store.count('clients')).toBe(1);

    // hidden: no polls
    changed = false;
    client.visibility.set(false);
    const askedBefore = asked.length;
    await advance(20_000);
    expect(asked.length).toBe(askedBefore);
    vi.useRealTimers();
  });

  it('behind a PostgREST without sync_changed (404): pulls every poll instead', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const client = makeClient({ engine: { live: 'poll', pollIntervalMs: 5000 } });
    open.push(client.sync);
    await client.sync.getSyncEngine().sync();
    Object.assign(client.transport, {
      changed: async () => {
        throw new HttpError(404, 'fake://rpc/sync_changed', { code: 'PGRST202', message: 'Could not find the function api.sync_changed' });
      },
    });
    client.sync.initializeNetworkMonitoring({ autoSyncEnabled: true });
    await settle(50);
    const before = client.server.pulls.length;
    for (let t = 0; t < 16_000; t += 1000) {
      await vi.advanceTimersByTimeAsync(1000);
      await settle(50);
    }
    expect(client.server.pulls.length).toBe(before + 3); // polls at 5, 10 and 15 s
    vi.useRealTimers();
  });
});
