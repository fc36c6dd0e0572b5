// Pull: the first sync lists in pages, each page is applied with its exact cursor in one
// transaction, tombstones delete, local changes stay on top, and a 410 relists while the
// queue keeps its operations.

import { afterEach, describe, expect, it } from 'vitest';
import { HttpError, ProtocolError, type Clock } from '../../src/index.js';
import { makeClient, type TestClient } from './helpers.js';

let client: TestClient;
afterEach(() => client?.sync.close());

async function storedCursor(c: TestClient): Promise<string | undefined> {
  const raw = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = c.indexedDB.open('smartsync_happy-paws');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const value = await new Promise<{ cursor: string } | undefined>((resolve, reject) => {
    const request = raw.transaction('meta').objectStore('meta').get('cursor');
    request.onsuccess = () => resolve(request.result as { cursor: string } | undefined);
    request.onerror = () => reject(request.error);
  });
  raw.close();
  return value?.cursor;
}

describe('first sync', () => {
  it('lists every row in pages until hasMore is false, each page stored with its cursor', async () => {
    client = makeClient({ pullLimit: 2 });
    for (let id = 1; id <= 3; id++) client.server.write('clients', id, { name: `client ${id}` });
    for (let id = 1; id <= 2; id++) client.server.write('pets', id, { name: `pet ${id}`, client_id: id });
    const result = await client.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ pulled: 5, refetched: false });
    expect(client.server.pulls.map((p) => p.cursor?.slice(0, 1) ?? 'none')).toEqual(['none', 'L', 'L']);
    expect(client.server.pulls.every((p) => p.limit === 2 && p.entityTypes?.join(',') === 'clients,pets,appointments')).toBe(true);
    expect((await client.sync.store.list('clients')).map((r) => r.id)).toEqual([1, 2, 3]);
    expect(await client.sync.store.get('pets', 2)).toMatchObject({ version: 1, syncStatus: 'synced', data: { name: 'pet 2', client_id: 2 } });
    expect(await storedCursor(client)).toMatch(/^C:/);
  });

  it('asks for the next page while it applies the current one, never more than one page ahead', async () => {
    client = makeClient({ pullLimit: 2 });
    for (let id = 1; id <= 5; id++) client.server.write('clients', id, { name: `client ${id}` });
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    client.server.beforePull = async () => {
      if (client.server.pulls.length === 2) await gate; // the answer to the second request is held back
      return undefined;
    };
    const sync = client.sync.getSyncEngine().sync();
    // page 1 is applied, with its cursor, while the request for page 2 is still unanswered ...
    for (let i = 0; i < 200 && (await client.sync.store.count('clients')) < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(client.server.pulls.length).toBe(2);
    expect(await client.sync.store.count('clients')).toBe(2);
    expect(await storedCursor(client)).toMatch(/^L:/);
    // ... and no third request goes out before page 2 has arrived
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(client.server.pulls.length).toBe(2);
    open();
    expect(await sync).toMatchObject({ pulled: 5 });
    expect(client.server.pulls.map((p) => p.cursor?.slice(0, 1) ?? 'none')).toEqual(['none', 'L', 'L']);
    expect((await client.sync.store.list('clients')).map((r) => r.id)).toEqual([1, 2, 3, 4, 5]);
  });

  it('cancels the request ahead when a page cannot be applied, and keeps neither that page nor its cursor', async () => {
    client = makeClient({ pullLimit: 2 });
    let ahead: AbortSignal | undefined;
    client.server.beforePull = async (params, signal) => {
      if (params.cursor === undefined) {
        return { success: true, timestamp: 0, hasMore: true, full: true, cursor: 'L:0:1:0', changes: [
          { entityType: 'clients', operation: 'create', id: 1, data: { name: 'Ann' }, version: 1 },
          { entityType: 'clients', operation: 'create', id: { not: 'a key' } as never, data: {}, version: 1 },
        ] };
      }
      ahead = signal;
      await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
      throw signal?.reason;
    };
    const result = await client.sync.getSyncEngine().sync();
    expect(result.error).toMatchObject({ name: 'ProtocolError' });
    expect(client.server.pulls.length).toBe(2);
    expect(ahead?.aborted).toBe(true);
    expect(await client.sync.store.count('clients')).toBe(0);
    expect(await storedCursor(client)).toBeUndefined();
  });

  it('then pulls only the changes after the cursor; a tombstone deletes the row', async () => {
    client = makeClient();
    client.server.write('clients', 1, { name: 'Ann' });
    client.server.write('clients', 2, { name: 'Bob' });
    await client.sync.getSyncEngine().sync();
    client.server.write('clients', 1, { phone: '555' });
    client.server.remove('clients', 2);
    const result = await client.sync.getSyncEngine().sync();
    expect(result.pulled).toBe(2);
    expect(client.server.pulls.at(-1)!.cursor).toMatch(/^C:/);
    expect(await client.sync.store.get('clients', 1)).toMatchObject({ version: 2, data: { name: 'Ann', phone: '555' } });
    expect(await client.sync.store.get('clients', 2)).toBeNull();
  });
});

describe('the cursor and its data', () => {
  it('are stored in one transaction: a page that fails half-way leaves neither its rows nor its cursor', async () => {
    client = makeClient();
    client.server.write('clients', 1, { name: 'Ann' });
    await client.sync.getSyncEngine().sync();
    const before = await storedCursor(client);
    client.server.beforePull = () => ({
      success: true,
      timestamp: 0,
      hasMore: false,
      cursor: 'C:999',
      changes: [
        { entityType: 'clients', operation: 'create', id: 2, data: { name: 'Bob' }, version: 1 },
        { entityType: 'clients', operation: 'update', id: 1, data: { name: 'Ann B.' }, version: 2 },
        { entityType: 'clients', operation: 'update', id: { not: 'a key' } as never, data: {}, version: 1 },
      ],
    });
    const result = await client.sync.getSyncEngine().sync();
    expect(result.error).toMatchObject({ name: 'ProtocolError' });
    expect(await client.sync.store.get('clients', 2)).toBeNull();
    expect(await client.sync.store.get('clients', 1)).toMatchObject({ version: 1, data: { name: 'Ann' } });
    expect(await storedCursor(client)).toBe(before);

    // the next pull starts again from the cursor that matches the data
    client.server.beforePull = null;
    client.server.write('clients', 1, { name: 'Ann C.' });
    await client.sync.getSyncEngine().sync();
    expect(client.server.pulls.at(-1)!.cursor).toBe(before);
    expect(await client.sync.store.get('clients', 1)).toMatchObject({ version: 2, data: { name: 'Ann C.' } });
    expect(ProtocolError).toBeDefined();
  });
});

/** A clock the test moves by hand (timers stay real). */
function manualClock(start = 1_700_000_000_000): Clock & { t: number } {
  const clock = {
    t: start,
    now: () => clock.t,
    setTimeout: (fn: () => void, ms: number) => globalThis.setTimeout(fn, ms),
    clearTimeout: (handle: unknown) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
  };
  return clock;
}

/** One push answered 503: the queued operations wait for their retry (1 s later, with random() = 0.5). */
async function failOnePush(c: TestClient): Promise<void> {
  c.server.beforePush = () => {
    throw new HttpError(503, 'fake://push', null);
  };
  const result = await c.sync.getSyncEngine().sync();
  expect(result.error?.status).toBe(503);
  c.server.beforePush = null;
}

describe('local changes', () => {
  it('stay on top of pulled server data, and keep the base version the server will check', async () => {
    const clock = manualClock();
    client = makeClient({ clock, backoff: { baseDelayMs: 2000 } });
    client.server.write('clients', 1, { name: 'Ann', phone: '111' });
    await client.sync.getSyncEngine().sync();
    await client.sync.store.update('clients', 1, { phone: '222' });
    await failOnePush(client);
    client.server.write('clients', 1, { email: 'ann@office' }, 'desk'); // another device, meanwhile

    const result = await client.sync.getSyncEngine().sync(); // the update is not due yet: pull only
    expect(result).toMatchObject({ synced: 0, pulled: 1 });
    expect(await client.sync.store.get('clients', 1)).toMatchObject({
      syncStatus: 'pending',
      version: 2,
      data: { name: 'Ann', phone: '222', email: 'ann@office' },
    });
    const [op] = await client.sync.syncQueueStorage.getOperations();
    expect(op).toMatchObject({ version: 1, data: { phone: '222' } }); // the server decides whether it conflicts
  });
});

describe('410 must refetch', () => {
  it('clears the synced rows and lists again; queued operations and the rows they change stay', async () => {
    const clock = manualClock();
    client = makeClient({ clock, backoff: { baseDelayMs: 2000 } });
    client.server.write('clients', 1, { name: 'Ann' });
    client.server.write('clients', 2, { name: 'Bob' });
    client.server.write('clients', 3, { name: 'Cy' });
    await client.sync.getSyncEngine().sync();

    // a new client and a change to Bob are queued, and wait for a retry
    const dee = await client.sync.store.create('clients', { name: 'Dee' });
    await client.sync.store.update('clients', 2, { phone: '222' });
    await failOnePush(client);
    // meanwhile the server deleted Cy, renamed Ann and pruned its change log past the device's cursor
    client.server.remove('clients', 3);
    client.server.write('clients', 1, { name: 'Ann Smith' });
    client.server.prune();

    const relist = await client.sync.getSyncEngine().sync();
    expect(relist).toMatchObject({ refetched: true, synced: 0, pending: 2 });
    expect(client.server.pulls.slice(-2).map((p) => (p.cursor === undefined ? 'none' : p.cursor.slice(0, 1)))).toEqual(['C', 'none']);
    const rows = await client.sync.store.list('clients');
    expect(rows.map((r) => [r.data.name, r.syncStatus])).toEqual([
      ['Ann Smith', 'synced'],
      ['Bob', 'pending'],
      ['Dee', 'pending'],
    ]);
    expect(rows[1]!.data.phone).toBe('222');
    expect(await client.sync.store.get('clients', 3)).toBeNull();
    expect(await client.sync.syncQueueStorage.getStats()).toMatchObject({ pending: 2 });

    // the retries come due: both operations go, nothing was lost
    clock.t += 10_000;
    const after = await client.sync.getSyncEngine().sync();
    expect(after).toMatchObject({ synced: 2, pending: 0 });
    expect(client.server.tables.get('clients')!.get(2)!.data).toMatchObject({ phone: '222', version: 2 });
    expect((await client.sync.store.get('clients', dee))?.data.name).toBe('Dee');
  });
});
