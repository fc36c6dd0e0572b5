// Storage: one database per tenant, the verified connection (the schema grows with the
// configuration), and typed errors for a blocked upgrade and a full disk.

import { afterEach, describe, expect, it } from 'vitest';
import { IDBFactory } from 'fake-indexeddb';
import { StorageBlockedError, StorageQuotaError, createSmartSync, type SmartSync } from '../../src/index.js';
import { toStorageError } from '../../src/database.js';
import { FakeServer } from './fake-server.js';

const open: SmartSync[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

function client(indexedDB: IDBFactory, entityTypes: string[], tenantId = 'happy-paws'): SmartSync {
  const sync = createSmartSync({
    transport: new FakeServer(['clients', 'pets', 'invoices']).transport('tablet-1'),
    tenantId,
    deviceId: 'tablet-1',
    entityTypes,
    indexedDB,
    locks: null,
    broadcastChannel: null,
  });
  open.push(sync);
  return sync;
}

function names(indexedDB: IDBFactory, name: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(name);
    request.onsuccess = () => {
      const stores = [...request.result.objectStoreNames];
      request.result.close();
      resolve(stores);
    };
    request.onerror = () => reject(request.error);
  });
}

describe('the database', () => {
  it('is one per tenant, with a store per entity type and one for its listed rows in chunks', async () => {
    const indexedDB = new IDBFactory();
    await client(indexedDB, ['clients', 'pets']).store.create('clients', { name: 'Ann' });
    await client(indexedDB, ['clients'], 'other-clinic').store.count('clients');
    expect((await indexedDB.databases()).map((d) => d.name).sort()).toEqual(['smartsync_happy-paws', 'smartsync_other-clinic']);
    expect(await names(indexedDB, 'smartsync_happy-paws')).toEqual(['chunks:clients', 'chunks:pets', 'conflicts', 'entity:clients', 'entity:pets', 'idmap', 'meta', 'queue']);
  });

  it('grows when a new entity type is configured, keeping what it holds', async () => {
    const indexedDB = new IDBFactory();
    const first = client(indexedDB, ['clients']);
    const id = await first.store.create('clients', { name: 'Ann' });
    first.close();
    const second = client(indexedDB, ['clients', 'invoices']);
    expect((await second.store.get('clients', id))?.data.name).toBe('Ann');
    expect(await second.store.count('invoices')).toBe(0);
    expect(await names(indexedDB, 'smartsync_happy-paws')).toContain('entity:invoices');
  });

  it('gives up with StorageBlockedError when another tab keeps the old version open and does not close it', async () => {
    const indexedDB = new IDBFactory();
    const first = client(indexedDB, ['clients']);
    await first.store.count('clients');
    first.close();
    // another tab that ignores versionchange
    const stubborn = await new Promise<IDBDatabase>((resolve) => {
      const request = indexedDB.open('smartsync_happy-paws');
      request.onsuccess = () => resolve(request.result);
    });
    const second = client(indexedDB, ['clients', 'invoices']);
    await expect(second.store.count('invoices')).rejects.toBeInstanceOf(StorageBlockedError);
    stubborn.close();
  });

  it('another tab that needs an upgrade gets it: this connection closes and reopens on next use', async () => {
    const indexedDB = new IDBFactory();
    const tabA = client(indexedDB, ['clients']);
    const id = await tabA.store.create('clients', { name: 'Ann' });
    const tabB = client(indexedDB, ['clients', 'invoices']);
    expect(await tabB.store.count('invoices')).toBe(0);
    expect((await tabA.store.get('clients', id))?.data.name).toBe('Ann');
  });

  it('maps a QuotaExceededError to StorageQuotaError', () => {
    const error = toStorageError(new DOMException('The quota has been exceeded.', 'QuotaExceededError'));
    expect(error).toBeInstanceOf(StorageQuotaError);
    expect((error as Error).cause).toBeInstanceOf(DOMException);
  });
});
