// Building blocks of the unit tests: a client on a fresh fake-indexeddb, a fake server,
// and the deterministic injections (random, signals) every test drives.

import { IDBFactory } from 'fake-indexeddb';
import { createSmartSync, manualOnlineSignal, manualVisibilitySignal, type SmartSync, type SmartSyncOptions, type Transport } from '../../src/index.js';
import { FakeServer } from './fake-server.js';

export const TYPES = ['clients', 'pets', 'appointments'];

export interface TestClient {
  sync: SmartSync;
  server: FakeServer;
  transport: Transport & { calls: string[] };
  online: ReturnType<typeof manualOnlineSignal>;
  visibility: ReturnType<typeof manualVisibilitySignal>;
  indexedDB: IDBFactory;
}

/** A client of a fake server on its own empty IndexedDB. */
export function makeClient(options: Partial<SmartSyncOptions> & { server?: FakeServer; deviceId?: string } = {}): TestClient {
  const server = options.server ?? new FakeServer(TYPES);
  const deviceId = options.deviceId ?? 'tablet-1';
  const transport = server.transport(deviceId);
  const online = manualOnlineSignal(true);
  const visibility = manualVisibilitySignal(true);
  const indexedDB = (options.indexedDB as IDBFactory | undefined) ?? new IDBFactory();
  const { server: _server, ...rest } = options;
  const sync = createSmartSync({
    transport,
    tenantId: 'happy-paws',
    practiceId: 1,
    userId: 42,
    entityTypes: [{ name: 'clients' }, { name: 'pets', indexes: ['client_id'] }, { name: 'appointments', indexes: ['pet_id'] }],
    random: () => 0.5,
    locks: null,
    broadcastChannel: null,
    online,
    visibility,
    connection: { get: () => null, subscribe: () => () => undefined },
    ...rest,
    deviceId,
    indexedDB,
  });
  return { sync, server, transport, online, visibility, indexedDB };
}

/** Lets pending IndexedDB work and promise chains run (fake-indexeddb schedules with setImmediate). */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
