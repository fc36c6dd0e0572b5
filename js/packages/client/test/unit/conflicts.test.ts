// Conflicts: resolveConflict with the spec's strategies, online and offline, and its
// typed errors.

import { afterEach, describe, expect, it } from 'vitest';
import { HttpError, NetworkError, ValidationError } from '../../src/index.js';
import { makeClient, type TestClient } from './helpers.js';

let client: TestClient;
afterEach(() => client?.sync.close());

/** A device whose update of client 5 conflicts with a change made on the server. */
async function withConflict(): Promise<number> {
  client = makeClient();
  client.server.write('clients', 5, { name: 'Ann', phone: '111', email: 'ann@example.com' });
  await client.sync.getSyncEngine().sync();
  client.server.write('clients', 5, { email: 'ann@office.example' });
  await client.sync.store.update('clients', 5, { phone: '333' });
  await client.sync.getSyncEngine().sync();
  const [conflict] = await client.sync.conflictStorage.getUnresolvedConflicts();
  return conflict!.id;
}

describe('resolveConflict', () => {
  it("with merge (the spec's call): the server resolves, the device stores its row and the conflict is closed", async () => {
    const id = await withConflict();
    const result = await client.sync.resolveConflict(id, { strategy: 'merge', appliedAt: Date.now() });
    expect(result).toMatchObject({ conflictId: id, status: 'resolved', strategy: 'merge', version: 3 });
    expect(client.server.tables.get('clients')!.get(5)!.data).toMatchObject({ phone: '333', email: 'ann@office.example' });
    expect(await client.sync.store.get('clients', 5)).toMatchObject({ syncStatus: 'synced', version: 3, data: { phone: '333', email: 'ann@office.example' } });
    expect(await client.sync.conflictStorage.getUnresolvedConflicts()).toEqual([]);
    expect((await client.sync.conflictStorage.getConflict(id))?.status).toBe('resolved');
    expect(await client.sync.syncQueueStorage.getStats()).toMatchObject({ conflicts: 0 });
  });

  it('with server-wins: the device takes the server row', async () => {
    const id = await withConflict();
    await client.sync.resolveConflict(id, { strategy: 'server-wins' });
    expect(await client.sync.store.get('clients', 5)).toMatchObject({ syncStatus: 'synced', version: 2, data: { phone: '111', email: 'ann@office.example' } });
  });

  it('with manual: writes resolvedData', async () => {
    const id = await withConflict();
    await client.sync.resolveConflict(id, { strategy: 'manual', resolvedData: { phone: '444' } });
    expect(client.server.tables.get('clients')!.get(5)!.data.phone).toBe('444');
    expect((await client.sync.store.get('clients', 5))?.data.phone).toBe('444');
  });

  it('offline: keeps the resolution, shows its likely outcome, and the next sync sends it', async () => {
    const id = await withConflict();
    const transport = client.transport;
    const resolve = transport.resolveConflict;
    transport.resolveConflict = async () => {
      throw new NetworkError('fake://resolve', new Error('offline'));
    };
    const queued = await client.sync.resolveConflict(id, { strategy: 'client-wins' });
    expect(queued).toMatchObject({ status: 'queued', data: { phone: '333', email: 'ann@office.example' } });
    expect((await client.sync.conflictStorage.getConflict(id))?.status).toBe('resolving');
    transport.resolveConflict = resolve;
    await client.sync.getSyncEngine().sync();
    expect((await client.sync.conflictStorage.getConflict(id))?.status).toBe('resolved');
    expect(client.server.tables.get('clients')!.get(5)!.data.phone).toBe('333');
  });

  it('a conflict resolved elsewhere (SS602) is closed here and the error reported', async () => {
    const id = await withConflict();
    await client.server.resolve(id, { strategy: 'server-wins' }, 'other-device');
    const error = await client.sync.resolveConflict(id, { strategy: 'merge' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).code).toBe('SS602');
    expect(await client.sync.conflictStorage.getUnresolvedConflicts()).toEqual([]);
  });

  it('refuses bad input with a ValidationError before any request', async () => {
    const id = await withConflict();
    const calls = client.transport.calls.length;
    await expect(client.sync.resolveConflict(id, { strategy: 'newest-wins' as never })).rejects.toMatchObject({ code: 'invalid-strategy' });
    await expect(client.sync.resolveConflict(id, { strategy: 'manual' })).rejects.toMatchObject({ code: 'invalid-resolved-data' });
    await expect(client.sync.resolveConflict(id, { strategy: 'merge', resolvedData: { a: 1 } })).rejects.toBeInstanceOf(ValidationError);
    await expect(client.sync.resolveConflict(-1, { strategy: 'merge' })).rejects.toBeInstanceOf(ValidationError);
    expect(client.transport.calls.length).toBe(calls);
  });
});
