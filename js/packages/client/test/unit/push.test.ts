// Push: batches with stable operation ids, temporary ids replaced everywhere, conflicts
// saved, permanent and transient failures, the backoff schedule.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { HttpError, NetworkError, type PushRequest } from '../../src/index.js';
import { makeClient, settle, type TestClient } from './helpers.js';

let client: TestClient;
afterEach(() => {
  client?.sync.close();
  vi.useRealTimers();
});

describe('batches', () => {
  it('sends batchSize operations per push, each operation id once, and applies every one', async () => {
    client = makeClient({ batchSize: 50 });
    for (let i = 0; i < 120; i++) await client.sync.store.create('clients', { name: `client ${i}` });
    const result = await client.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ synced: 120, failed: 0, conflicts: 0, pending: 0 });
    expect(client.server.pushes.map((p) => p.operations.length)).toEqual([50, 50, 20]);
    const ids = client.server.pushes.flatMap((p) => p.operations.map((op) => op.id));
    expect(new Set(ids).size).toBe(120);
    expect(client.server.pushes[0]).toMatchObject({ clientId: 'tablet-1' });
    expect(client.server.tables.get('clients')!.size).toBe(120);
    expect(await client.sync.syncQueueStorage.getStats()).toEqual({ pending: 0, inFlight: 0, failed: 0, conflicts: 0 });
  });

  it('replays a batch whose answer was lost with the same operation ids: the server applies it once', async () => {
    client = makeClient();
    await client.sync.store.create('clients', { name: 'Ann' });
    let lost = true;
    client.server.beforePush = async (request) => {
      if (!lost) return undefined;
      lost = false;
      await client.server.push(request, 'tablet-1'); // applied on the server...
      throw new NetworkError('fake://push', new Error('connection reset')); // ...but the answer never arrives
    };
    const first = await client.sync.getSyncEngine().sync();
    expect(first.error?.name).toBe('NetworkError');
    expect(await client.sync.syncQueueStorage.getStats()).toMatchObject({ pending: 1 });
    const second = await client.sync.getSyncEngine().sync();
    expect(second).toMatchObject({ synced: 1, pending: 0 });
    const [a, b] = client.server.pushes.filter((p) => p.operations.length > 0);
    expect(b!.operations[0]!.id).toBe(a!.operations[0]!.id);
    expect(client.server.tables.get('clients')!.size).toBe(1);
    const [row] = await client.sync.store.list('clients');
    expect(row).toMatchObject({ id: 1, syncStatus: 'synced', version: 1 });
  });

  it('halves the batch after 413 (the server takes fewer) and loses nothing', async () => {
    client = makeClient({ batchSize: 50 });
    client.server.maxBatch = 20;
    for (let i = 0; i < 45; i++) await client.sync.store.create('clients', { name: `c${i}` });
    const result = await client.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ synced: 45, failed: 0, pending: 0 });
    expect(client.server.pushes.map((p) => p.operations.length)).toEqual([45, 22, 11, 11, 11, 11, 1]);
    expect(client.server.tables.get('clients')!.size).toBe(45);
  });
});

describe('temporary ids', () => {
  it('are replaced by the real id in the row, in rows and indexes that refer to them, in queued operations and in the id map', async () => {
    client = makeClient({ batchSize: 1 });
    const { store } = client.sync;
    const ann = await store.create('clients', { name: 'Ann' });
    const rex = await store.create('pets', { name: 'Rex', client_id: ann });
    expect((await store.list('pets', { client_id: ann })).map((row) => row.id)).toEqual([rex]);

    // watch the second push: the pet's create must already carry the client's real id
    const requests: PushRequest[] = [];
    client.server.beforePush = (request) => {
      requests.push(structuredClone(request));
      return undefined;
    };
    const result = await client.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ synced: 2, failed: 0 });
    const realAnn = client.server.idMap.get(ann as string)!;
    const realRex = client.server.idMap.get(rex as string)!;
    expect(requests[0]!.operations[0]).toMatchObject({ entityType: 'clients', entityId: ann });
    expect(requests[1]!.operations[0]).toMatchObject({ entityType: 'pets', entityId: rex, data: { name: 'Rex', client_id: realAnn } });

    // the first sync's pull lists the rows as the server has them
    expect(await store.get('pets', realRex)).toEqual({ entityType: 'pets', id: realRex, data: { id: realRex, name: 'Rex', client_id: realAnn, version: 1 }, version: 1, syncStatus: 'synced' });
    expect((await store.list('pets', { client_id: realAnn })).map((row) => row.id)).toEqual([realRex]);
    expect(await store.list('pets', { client_id: ann })).toEqual([]);
    // a screen that still holds the temporary id finds the row
    expect((await store.get('clients', ann))?.id).toBe(realAnn);
  });

  it('rewrites queued operations that name the temporary id after their create is answered', async () => {
    client = makeClient();
    const { store, syncQueueStorage } = client.sync;
    const ann = await store.create('clients', { name: 'Ann' });
    // the create goes, the answer is lost: the update of the same row cannot fold into it any more
    client.server.beforePush = () => {
      throw new NetworkError('fake://push', new Error('down'));
    };
    await client.sync.getSyncEngine().sync();
    await store.update('clients', ann, { phone: '555' });
    await store.create('pets', { name: 'Rex', client_id: ann });
    client.server.beforePush = null;

    // first push: the create (the update waits for it), and the pet with it
    const pushed: PushRequest[] = [];
    client.server.beforePush = (request) => {
      pushed.push(structuredClone(request));
      return undefined;
    };
    const result = await client.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ synced: 3, failed: 0, conflicts: 0 });
    const realAnn = client.server.idMap.get(ann as string)!;
    expect(pushed.map((p) => p.operations.map((op) => `${op.operation} ${op.entityType}`))).toEqual([['create clients', 'create pets'], ['update clients']]);
    expect(pushed[1]!.operations[0]).toMatchObject({ entityId: realAnn, version: 1, data: { phone: '555' } });
    expect(client.server.tables.get('clients')!.get(realAnn)!.data).toMatchObject({ name: 'Ann', phone: '555', version: 2 });
    expect(await store.get('clients', realAnn)).toMatchObject({ version: 2, syncStatus: 'synced', data: { name: 'Ann', phone: '555' } });
    expect(await syncQueueStorage.getOperations()).toEqual([]);
  });
});

describe('outcomes', () => {
  it('an update queued while the previous one is in flight carries the version that one produced', async () => {
    client = makeClient();
    client.server.write('clients', 5, { name: 'Ann' });
    await client.sync.getSyncEngine().sync();
    await client.sync.store.update('clients', 5, { phone: '1' });
    let once = false;
    client.server.beforePush = async () => {
      if (once) return undefined;
      once = true;
      await client.sync.store.update('clients', 5, { phone: '2' }); // made while the push is on the wire
      return undefined;
    };
    const result = await client.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ synced: 2, conflicts: 0 });
    expect(client.server.pushes.map((p) => p.operations[0]?.version)).toEqual([1, 2]);
    expect(client.server.tables.get('clients')!.get(5)!.data).toMatchObject({ phone: '2', version: 3 });
  });

  it('saves a conflict with local and server data side by side; later changes of that row wait for its resolution', async () => {
    client = makeClient();
    client.server.write('clients', 5, { name: 'Ann', phone: '111' });
    await client.sync.getSyncEngine().sync();
    client.server.write('clients', 5, { phone: '222' }); // the back office, meanwhile
    await client.sync.store.update('clients', 5, { phone: '333' });
    const result = await client.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ synced: 0, conflicts: 1 });
    const [conflict] = await client.sync.conflictStorage.getUnresolvedConflicts();
    expect(conflict).toMatchObject({
      entityType: 'clients',
      entityId: 5,
      operation: 'update',
      localData: { phone: '333' },
      serverData: { id: 5, name: 'Ann', phone: '222', version: 2 },
      conflictType: 'version',
      baseVersion: 1,
      serverVersion: 2,
      status: 'unresolved',
    });
    expect(await client.sync.store.get('clients', 5)).toMatchObject({ syncStatus: 'conflict', data: { phone: '333' } });
    expect(await client.sync.syncQueueStorage.getStats()).toEqual({ pending: 0, inFlight: 0, failed: 0, conflicts: 1 });

    await client.sync.store.update('clients', 5, { email: 'ann@example.com' });
    const held = await client.sync.getSyncEngine().sync();
    expect(held.synced).toBe(0);
    expect(client.server.pushes.at(-1)!.operations).toHaveLength(1); // only the first push carried anything

    const resolved = await client.sync.resolveConflict(conflict!.id, { strategy: 'client-wins' });
    expect(resolved).toMatchObject({ status: 'resolved', version: 3 });
    const after = await client.sync.getSyncEngine().sync();
    expect(after).toMatchObject({ synced: 1, conflicts: 0 });
    expect(client.server.pushes.at(-1)!.operations[0]).toMatchObject({ entityId: 5, version: 3, data: { email: 'ann@example.com' } });
    expect(client.server.tables.get('clients')!.get(5)!.data).toMatchObject({ phone: '333', email: 'ann@example.com', version: 4 });
  });

  it('a permanent failure is marked failed and never retried', async () => {
    client = makeClient();
    await client.sync.store.create('clients', { name: 'ok' });
    await client.sync.store.create('clients', { name: 'bad' });
    client.server.beforePush = (request) => ({
      success: false,
      results: request.operations.map((op) =>
        op.data?.name === 'bad'
          ? { operationId: op.id, success: false, error: 'column "nope" does not exist', code: 'SS422', retryable: false }
          : { operationId: op.id, success: true, entityId: 1, realId: 1, tempId: op.entityId as string, version: 1 },
      ),
    });
    const result = await client.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ synced: 1, failed: 1, pending: 0 });
    expect(await client.sync.syncQueueStorage.getStats()).toMatchObject({ pending: 0, failed: 1 });
    const [failed] = await client.sync.syncQueueStorage.getOperations();
    expect(failed).toMatchObject({ status: 'failed', attempts: 1, lastError: { code: 'SS422', retryable: false } });
    const pushes = client.server.pushes.length;
    await client.sync.getSyncEngine().sync();
    expect(client.server.pushes.length).toBe(pushes); // nothing sent again
    const rows = await client.sync.store.list('clients', { name: 'bad' });
    expect(rows[0]?.syncStatus).toBe('failed');
  });

  it('a request refused as a whole (400) is retried one operation at a time, so only the bad one fails', async () => {
    client = makeClient();
    for (const name of ['a', 'b', 'c']) await client.sync.store.create('clients', { name });
    client.server.beforePush = (request) => {
      if (request.operations.some((op) => op.data?.name === 'b')) throw new HttpError(400, 'fake://push', { code: 'SS406', message: 'bad field' });
      return undefined;
    };
    const result = await client.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ synced: 2, failed: 1 });
    expect(client.server.pushes.map((p) => p.operations.length)).toEqual([3, 1, 1, 1]);
  });

  it('a refused token (401) counts nothing against the operations and stops the sync', async () => {
    client = makeClient();
    await client.sync.store.create('clients', { name: 'a' });
    client.server.beforePush = () => {
      throw new HttpError(401, 'fake://push', { code: 'SS201', message: 'no tenant' });
    };
    const result = await client.sync.getSyncEngine().sync();
    expect(result.error).toMatchObject({ name: 'HttpError', status: 401, code: 'SS201' });
    const [op] = await client.sync.syncQueueStorage.getOperations();
    expect(op).toMatchObject({ status: 'pending', attempts: 0 });
    expect(client.server.pulls).toHaveLength(0);
  });
});

describe('answers a client has to read carefully', () => {
  it('an update answered without the row, its version moved by more than this write: the next pull lists everything again', async () => {
    client = makeClient();
    client.server.write('clients', 5, { name: 'Ann', phone: '111' });
    await client.sync.getSyncEngine().sync();
    // on the server, meanwhile: a change of another field, and one that already holds the device's value
    client.server.write('clients', 5, { notes: 'VIP' }, 'desk');
    client.server.write('clients', 5, { phone: '222' }, 'desk');
    await client.sync.store.update('clients', 5, { phone: '222' });
    client.server.beforePush = (request) => {
      const op = request.operations[0]!;
      const row = client.server.write('clients', 5, {}, 'tablet-1'); // nothing to change: a new version all the same
      return { success: true, results: [{ operationId: op.id, success: true, operation: 'update', entityType: 'clients', entityId: 5, version: row.version }] };
    };
    const result = await client.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ synced: 1, refetched: true });
    expect(client.server.pulls.at(-1)!.cursor).toBeUndefined(); // a listing
    expect(await client.sync.store.get('clients', 5)).toMatchObject({ version: 4, syncStatus: 'synced', data: { name: 'Ann', phone: '222', notes: 'VIP' } });
    client.server.beforePush = null;
    await client.sync.getSyncEngine().sync();
    expect(client.server.pulls.at(-1)!.cursor).toMatch(/^C:/); // and back to the cursor
  });

  it('a replayed answer older than what a pull brought does not take the row back', async () => {
    client = makeClient();
    client.server.write('clients', 5, { name: 'Ann' });
    client.server.write('clients', 5, { name: 'Ann B.' });
    client.server.write('clients', 5, { name: 'Ann C.' });
    await client.sync.getSyncEngine().sync(); // version 3
    await client.sync.store.update('clients', 5, { phone: '1' });
    client.server.beforePush = (request) => ({
      success: true,
      results: [{ operationId: request.operations[0]!.id, success: true, replayed: true, entityType: 'clients', entityId: 5, version: 2 }],
    });
    await client.sync.getSyncEngine().sync();
    expect(await client.sync.store.get('clients', 5)).toMatchObject({ version: 3, syncStatus: 'synced' });
  });
});

describe('transient failures', () => {
  it('are retried with exponential backoff and full jitter, at most maxRetries times, then failed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const start = Date.now();
    client = makeClient({ maxRetries: 3, backoff: { baseDelayMs: 1000, maxDelayMs: 60_000 }, engine: { autoSyncDelayMs: 200, live: 'off' } });
    const at: number[] = [];
    client.server.beforePush = () => {
      at.push(Date.now() - start);
      throw new HttpError(503, 'fake://push', { code: 'XX000', message: 'busy' });
    };
    client.sync.initializeNetworkMonitoring({ syncOnReconnect: true, autoSyncEnabled: true });
    await client.sync.store.create('clients', { name: 'Ann' });
    // let IndexedDB finish (it runs on setImmediate, which stays real), then jump to the next timer
    while (Date.now() - start < 20_000) {
      await settle(200);
      await vi.advanceTimersToNextTimerAsync();
    }
    // random() = 0.5: the n-th retry waits 0.5 * 1000 * 2^(n-1) ms
    expect(at).toEqual([200, 700, 1700, 3700]);
    const [op] = await client.sync.syncQueueStorage.getOperations();
    expect(op).toMatchObject({ status: 'failed', attempts: 4, lastError: { status: 503, retryable: true } });
    expect(await client.sync.syncQueueStorage.getStats()).toEqual({ pending: 0, inFlight: 0, failed: 1, conflicts: 0 });
  });
});
