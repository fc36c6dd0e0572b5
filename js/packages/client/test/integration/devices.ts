// Devices for the integration tests: a client instance on its own fake-indexeddb, with a
// device token, and a network a test switches off and on (fetch fails while "offline",
// as a browser's does).

import { IDBFactory } from 'fake-indexeddb';
import type pg from 'pg';
import { createSmartSync, manualOnlineSignal, type SmartSync, type Transport } from '../../src/index.js';
import { SCHEMA, serverRows, typed } from './database.js';

export interface Device {
  name: string;
  sync: SmartSync;
  online: ReturnType<typeof manualOnlineSignal>;
  /** fetch calls made while offline (they failed). */
  refused: number;
}

export const ENTITY_TYPES = ['clients', 'practitioners', 'pets', 'appointments'];

/** A device with a transport made by makeTransport(fetch) (postgrestTransport or httpTransport). */
export function device(name: string, makeTransport: (fetch: typeof globalThis.fetch) => Transport, extra: { batchSize?: number } = {}): Device {
  const online = manualOnlineSignal(true);
  const state: Device = { name, sync: null as unknown as SmartSync, online, refused: 0 };
  const fetch: typeof globalThis.fetch = (input, init) => {
    if (!online.isOnline()) {
      state.refused += 1;
      return Promise.reject(new TypeError('fetch failed', { cause: new Error('net::ERR_INTERNET_DISCONNECTED') }));
    }
    return globalThis.fetch(input, init);
  };
  state.sync = createSmartSync({
    transport: makeTransport(fetch),
    tenantId: 'happy-paws',
    practiceId: 1,
    deviceId: name,
    entityTypes: ENTITY_TYPES,
    indexedDB: new IDBFactory(),
    locks: null,
    broadcastChannel: null,
    online,
    ...extra,
  });
  return state;
}

/**
 * Compares a device's local store with the server, row for row: the same ids per entity
 * type, the same version, and every column equal once the device's row is read in the
 * table's types (its own creates hold what it wrote; pulled rows hold the server's).
 */
export async function expectConverged(admin: pg.Pool, d: Device, types = ['clients', 'pets', 'appointments']): Promise<{ rows: number }> {
  let rows = 0;
  for (const table of types) {
    const server = await serverRows(admin, table);
    const local = await d.sync.store.list(table);
    const localIds = local.map((row) => String(row.id)).sort();
    const serverIds = [...server.keys()].sort();
    if (JSON.stringify(localIds) !== JSON.stringify(serverIds)) {
      throw new Error(`${d.name} ${table}: ids ${JSON.stringify(localIds)}, server ${JSON.stringify(serverIds)}`);
    }
    for (const row of local) {
      if (row.syncStatus !== 'synced') throw new Error(`${d.name} ${table} ${row.id}: ${row.syncStatus}`);
      const mine = await typed(admin, table, { ...row.data, id: row.id, version: row.version });
      const theirs = server.get(String(row.id))!;
      if (JSON.stringify(sortKeys(mine)) !== JSON.stringify(sortKeys(theirs))) {
        throw new Error(`${d.name} ${table} ${row.id}:\n device ${JSON.stringify(sortKeys(mine))}\n server ${JSON.stringify(sortKeys(theirs))}`);
      }
      rows += 1;
    }
  }
  return { rows };
}

function sortKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export { SCHEMA };
