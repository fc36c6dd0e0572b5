// Listed rows in chunks: a listing page's usual rows are stored as one IndexedDB record of
// `chunks:<type>` (a browser pays per request), every read sees them as rows, and any write to
// such a row first takes it out of its chunk, so each row is in exactly one place.

import { afterEach, describe, expect, it } from 'vitest';
import { HttpError } from '../../src/index.js';
import { makeClient, type TestClient } from './helpers.js';

let client: TestClient;
afterEach(() => client?.sync.close());

/** What a store of the device's database holds, read without the client: its records. */
async function records(c: TestClient, store: string): Promise<unknown[]> {
  const raw = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = c.indexedDB.open('smartsync_happy-paws');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const values = await new Promise<unknown[]>((resolve, reject) => {
    const request = raw.transaction(store).objectStore(store).getAll();
    request.onsuccess = () => resolve(request.result as unknown[]);
    request.onerror = () => reject(request.error);
  });
  raw.close();
  return values;
}

/** The ids held in the chunks of an entity type. */
async function chunkedIds(c: TestClient, entityType: string): Promise<unknown[]> {
  return ((await records(c, `chunks:${entityType}`)) as { ids: unknown[] }[]).flatMap((chunk) => chunk.ids);
}

describe('a first sync', () => {
  it('stores each listing page as one record per entity type, and every read sees the rows', async () => {
    client = makeClient({ pullLimit: 3 });
    for (let id = 1; id <= 7; id++) client.server.write('clients', id, { name: `client ${id}` });
    for (let id = 1; id <= 4; id++) client.server.write('pets', id, { name: `pet ${id}`, client_id: id % 2 === 0 ? 2 : 1 });
    expect(await client.sync.getSyncEngine().sync()).toMatchObject({ pulled: 11 });

    // 11 rows in pages of 3: 4 pages, so at most 4 records per entity type, and no row stored alone
    expect(await records(client, 'entity:clients')).toEqual([]);
    expect(await records(client, 'entity:pets')).toEqual([]);
    expect((await records(client, 'chunks:clients')).length + (await records(client, 'chunks:pets')).length).toBeLessThanOrEqual(5);
    expect((await chunkedIds(client, 'clients')).sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);

    const store = client.sync.store;
    expect(await store.count('clients')).toBe(7);
    expect((await store.list('clients')).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect((await store.list('clients', undefined, { limit: 2 })).map((r) => r.id)).toEqual([1, 2]);
    expect((await store.list('clients', (row) => Number(row.id) % 2 === 1, { limit: 3 })).map((r) => r.id)).toEqual([1, 3, 5]);
    expect((await store.list('pets', { client_id: 2 })).map((r) => r.id)).toEqual([2, 4]); // an indexed field
    expect((await store.list('clients', { name: 'client 6' })).map((r) => r.id)).toEqual([6]);
    expect(await store.get('clients', 5)).toMatchObject({ id: 5, version: 1, syncStatus: 'synced', data: { name: 'client 5' } });
    expect(await store.get('clients', '5')).toMatchObject({ id: 5 });
    expect(await store.get('clients', 8)).toBeNull();
  });
});

describe('a listed row', () => {
  it('leaves its chunk when it is changed here, and is pushed with the version it was listed with', async () => {
    client = makeClient({ pullLimit: 10 });
    for (let id = 1; id <= 3; id++) client.server.write('clients', id, { name: `client ${id}` });
    await client.sync.getSyncEngine().sync();

    await client.sync.store.update('clients', 2, { phone: '222' });
    expect(await records(client, 'entity:clients')).toMatchObject([{ id: 2, status: 'pending', version: 1, data: { name: 'client 2', phone: '222' } }]);
    expect((await chunkedIds(client, 'clients')).sort()).toEqual([1, 3]);
    expect((await client.sync.store.list('clients')).map((r) => [r.id, r.syncStatus])).toEqual([
      [1, 'synced'],
      [2, 'pending'],
      [3, 'synced'],
    ]);
    expect(await client.sync.store.count('clients')).toBe(3);
    const [op] = await client.sync.syncQueueStorage.getOperations();
    expect(op).toMatchObject({ operation: 'update', entityId: 2, version: 1 });

    expect(await client.sync.getSyncEngine().sync()).toMatchObject({ synced: 1, conflicts: 0 });
    expect(client.server.tables.get('clients')!.get(2)!.data).toMatchObject({ phone: '222', version: 2 });
    expect(await client.sync.store.get('clients', 2)).toMatchObject({ version: 2, syncStatus: 'synced' });

    // a create that names the id of a listed row is refused, as for any row on the device
    await expect(client.sync.store.create('clients', { name: 'again' }, { id: 3 })).rejects.toThrow(/exists already/);
  });

  it('is updated and deleted by the pulls after the listing, and stays one row', async () => {
    client = makeClient({ pullLimit: 10 });
    for (let id = 1; id <= 4; id++) client.server.write('clients', id, { name: `client ${id}` });
    await client.sync.getSyncEngine().sync();

    client.server.write('clients', 3, { phone: '333' }, 'desk');
    client.server.remove('clients', 4);
    client.server.write('clients', 5, { name: 'client 5' }, 'desk');
    expect(await client.sync.getSyncEngine().sync()).toMatchObject({ pulled: 3 });

    expect(await client.sync.store.get('clients', 3)).toMatchObject({ version: 2, data: { name: 'client 3', phone: '333' } });
    expect(await client.sync.store.get('clients', 4)).toBeNull();
    expect((await client.sync.store.list('clients')).map((r) => r.id)).toEqual([1, 2, 3, 5]);
    expect(await client.sync.store.count('clients')).toBe(4);
    expect((await chunkedIds(client, 'clients')).sort()).toEqual([1, 2]);
  });

  it('leaves its chunk with the others a pulled page changes, in one piece', async () => {
    client = makeClient({ pullLimit: 10 });
    for (let id = 1; id <= 30; id++) client.server.write('clients', id, { name: `client ${id}` });
    await client.sync.getSyncEngine().sync();
    expect(await records(client, 'chunks:clients')).toHaveLength(3);

    // every row but 5 changes on the server: pages of 10 changes, each touching one or two chunks
    for (let id = 1; id <= 30; id++) if (id % 6 !== 0) client.server.write('clients', id, { phone: `${id}` }, 'desk');
    expect(await client.sync.getSyncEngine().sync()).toMatchObject({ pulled: 25 });
    expect((await chunkedIds(client, 'clients')).sort((a, b) => Number(a) - Number(b))).toEqual([6, 12, 18, 24, 30]);
    const rows = await client.sync.store.list('clients');
    expect(rows).toHaveLength(30);
    expect(rows.every((r) => (Number(r.id) % 6 === 0 ? r.version === 1 && r.data.phone === undefined : r.version === 2 && r.data.phone === String(r.id)))).toBe(true);
    expect(await client.sync.store.count('clients')).toBe(30);
  });

  it('pushed meanwhile and then listed stays one row: a listing puts in chunks only rows the entity store does not hold', async () => {
    client = makeClient({ pullLimit: 2 });
    for (let id = 1; id <= 4; id++) client.server.write('clients', id, { name: `client ${id}` });
    let failed = false;
    client.server.beforePull = async () => {
      if (client.server.pulls.length === 2 && !failed) {
        failed = true;
        throw new HttpError(503, 'fake://pull', { message: 'try later' });
      }
      return undefined;
    };
    expect((await client.sync.getSyncEngine().sync()).error).toBeDefined(); // the listing stopped after its first page
    expect(await client.sync.store.count('clients')).toBe(2);

    // a pet created here is pushed (real id 1) before the listing, which then reaches the pets, goes on
    await client.sync.store.create('pets', { name: 'Rex' });
    expect(await client.sync.getSyncEngine().sync()).toMatchObject({ synced: 1 });
    expect(client.server.tables.get('pets')!.has(1)).toBe(true);
    expect(await chunkedIds(client, 'pets')).toEqual([]);
    expect(await records(client, 'entity:pets')).toMatchObject([{ id: 1, data: { name: 'Rex' } }]);
    expect(await client.sync.store.count('pets')).toBe(1);
    expect(await client.sync.store.count('clients')).toBe(4);
  });

  it('is replaced by a new listing (410): the chunks are cleared first, nothing is held twice', async () => {
    client = makeClient({ pullLimit: 2 });
    for (let id = 1; id <= 5; id++) client.server.write('clients', id, { name: `client ${id}` });
    await client.sync.getSyncEngine().sync();
    client.server.remove('clients', 5);
    client.server.write('clients', 1, { name: 'Ann' });
    client.server.prune();

    expect(await client.sync.getSyncEngine().sync()).toMatchObject({ refetched: true });
    expect((await chunkedIds(client, 'clients')).sort()).toEqual([1, 2, 3, 4]);
    expect(await records(client, 'entity:clients')).toEqual([]);
    expect((await client.sync.store.list('clients')).map((r) => [r.id, r.data.name])).toEqual([
      [1, 'Ann'],
      [2, 'client 2'],
      [3, 'client 3'],
      [4, 'client 4'],
    ]);
  });

  it('held twice (an older client wrote it to its entity store too) is listed once, as the entity store has it', async () => {
    client = makeClient({ pullLimit: 10 });
    for (let id = 1; id <= 3; id++) client.server.write('clients', id, { name: `client ${id}` });
    await client.sync.getSyncEngine().sync();
    const raw = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = client.indexedDB.open('smartsync_happy-paws');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    await new Promise<void>((resolve, reject) => {
      const tx = raw.transaction('entity:clients', 'readwrite');
      tx.objectStore('entity:clients').put({ id: 2, data: { name: 'client 2, newer' }, version: 2 });
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
    raw.close();
    expect((await client.sync.store.list('clients')).map((r) => [r.id, r.data.name])).toEqual([
      [1, 'client 1'],
      [2, 'client 2, newer'],
      [3, 'client 3'],
    ]);
    expect(await client.sync.store.get('clients', 2)).toMatchObject({ version: 2, data: { name: 'client 2, newer' } });
  });
});
