// The sync queue: what queueOperation stores, in which order operations leave, temporary
// ids, base versions, folding, and the typed errors of bad input (nothing queued).

import { afterEach, describe, expect, it } from 'vitest';
import { NetworkError, ValidationError, createTempId, isTempId } from '../../src/index.js';
import { selectBatch } from '../../src/batch.js';
import { makeClient, type TestClient } from './helpers.js';

let client: TestClient;
afterEach(() => client?.sync.close());

const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('queueOperation', () => {
  it('stores a create with a temporary id (temp_ + UUIDv7), readable locally at once', async () => {
    client = makeClient();
    const { store, syncQueueStorage } = client.sync;
    const id = await store.create('clients', { name: 'Ann Smith' });
    expect(typeof id).toBe('string');
    expect(isTempId(id)).toBe(true);
    expect(String(id).slice('temp_'.length)).toMatch(UUIDV7);
    expect(await store.get('clients', id)).toEqual({ entityType: 'clients', id, data: { name: 'Ann Smith' }, version: null, syncStatus: 'pending' });
    const [op] = await syncQueueStorage.getOperations();
    expect(op).toMatchObject({ operation: 'create', entityType: 'clients', entityId: id, data: { name: 'Ann Smith' }, status: 'pending', attempts: 0, sent: false });
    expect(op!.id).toMatch(UUIDV7);
    expect(op).toMatchObject({ tenantId: 'happy-paws', practiceId: 1, userId: 42, priority: 'normal', maxRetries: 3 });
    expect(await syncQueueStorage.getStats()).toEqual({ pending: 1, inFlight: 0, failed: 0, conflicts: 0 });
  });

  it("takes the spec's queueOperation argument as written", async () => {
    client = makeClient();
    const tempId = createTempId();
    const op = await client.sync.syncQueueStorage.queueOperation({
      operation: 'create',
      entityType: 'appointments',
      entityId: tempId,
      data: { title: 'Annual checkup' },
      tenantId: 'happy-paws',
      practiceId: 1,
      userId: 42,
      priority: 'normal',
      maxRetries: 3,
      version: 1,
      requiredPermissions: ['appointments:create'],
    });
    expect(op).toMatchObject({ entityId: tempId, version: 1, requiredPermissions: ['appointments:create'] });
    expect((await client.sync.store.get('appointments', tempId))?.data).toEqual({ title: 'Annual checkup' });
  });

  it('folds an update of a row whose create was never sent into the create', async () => {
    client = makeClient();
    const { store, syncQueueStorage } = client.sync;
    const id = await store.create('pets', { name: 'Rex', species: 'dog' });
    await store.update('pets', id, { name: 'Rex II', breed: 'beagle' });
    const ops = await syncQueueStorage.getOperations();
    expect(ops).toHaveLength(1);
    expect(ops[0]).toMatchObject({ operation: 'create', data: { name: 'Rex II', species: 'dog', breed: 'beagle' } });
    expect((await store.get('pets', id))?.data).toEqual({ name: 'Rex II', species: 'dog', breed: 'beagle' });
  });

  it('drops an unsent create and the row when the row is deleted: the server never hears of it', async () => {
    client = makeClient();
    const { store, syncQueueStorage } = client.sync;
    const id = await store.create('pets', { name: 'Rex' });
    await store.delete('pets', id);
    expect(await syncQueueStorage.getOperations()).toEqual([]);
    expect(await store.get('pets', id)).toBeNull();
  });

  it('carries the base version the device last saw on updates and deletes, and folds consecutive updates', async () => {
    client = makeClient();
    client.server.write('clients', 7, { name: 'Ann' });
    client.server.write('clients', 7, { phone: '111' }); // version 2 on the server
    await client.sync.getSyncEngine().sync(); // the device sees version 2
    const { store, syncQueueStorage } = client.sync;
    expect((await store.get('clients', 7))?.version).toBe(2);
    await store.update('clients', 7, { phone: '222' });
    await store.update('clients', 7, { email: 'ann@example.com' });
    let ops = await syncQueueStorage.getOperations();
    expect(ops).toHaveLength(1);
    expect(ops[0]).toMatchObject({ operation: 'update', entityId: 7, version: 2, data: { phone: '222', email: 'ann@example.com' } });
    await store.delete('clients', 7);
    ops = await syncQueueStorage.getOperations();
    expect(ops).toHaveLength(1);
    expect(ops[0]).toMatchObject({ operation: 'delete', entityId: 7, version: 2 });
    expect(ops[0]!.data).toBeUndefined();
  });

  it('does not fold into an operation that was sent: a new one waits for its answer', async () => {
    client = makeClient();
    const { store, syncQueueStorage } = client.sync;
    const id = await store.create('clients', { name: 'Ann' });
    const [create] = await syncQueueStorage.getOperations();
    // the create leaves in a push whose answer is lost
    client.server.beforePush = () => {
      throw new NetworkError('fake://push', new Error('connection reset'));
    };
    const result = await client.sync.getSyncEngine().sync();
    expect(result.error).toBeDefined();
    const [sent] = await syncQueueStorage.getOperations();
    expect(sent).toMatchObject({ id: create!.id, sent: true, status: 'pending' });
    await store.update('clients', id, { phone: '555' });
    const ops = await syncQueueStorage.getOperations();
    expect(ops).toHaveLength(2);
    expect(ops[1]).toMatchObject({ operation: 'update', entityId: id, version: 1, data: { phone: '555' } });
  });
});

describe('queue order', () => {
  it('is priority, then creation; an entity keeps its own order whatever the priorities', async () => {
    client = makeClient();
    const { store, syncQueueStorage } = client.sync;
    client.server.write('clients', 1, { name: 'A' });
    client.server.write('clients', 2, { name: 'B' });
    await client.sync.getSyncEngine().sync();
    await store.update('clients', 1, { name: 'low' }, { priority: 'low' });
    await store.create('clients', { name: 'normal' });
    await store.update('clients', 2, { name: 'critical' }, { priority: 'critical' });
    await store.create('clients', { name: 'high' }, { priority: 'high' });
    const ops = await syncQueueStorage.getOperations();
    expect(ops.map((op) => op.data?.name)).toEqual(['critical', 'high', 'normal', 'low']);

    const batch = selectBatch(ops, { now: Date.now(), size: 50, held: new Set() });
    expect(batch.map((op) => op.data?.name)).toEqual(['critical', 'high', 'normal', 'low']);

    // a later high-priority change of client 1 does not overtake its earlier low one (two pushes)
    const [low] = ops.filter((op) => op.data?.name === 'low');
    const sentLow = { ...low!, sent: true };
    const later = { ...low!, id: `${low!.id}z`, rank: 0, priority: 'critical' as const, data: { name: 'after' } };
    const order = selectBatch([sentLow, later], { now: Date.now(), size: 50, held: new Set() });
    expect(order.map((op) => op.data?.name)).toEqual(['low']);
  });

  it('sends a create another operation refers to in the same batch or an earlier one', async () => {
    client = makeClient();
    const { store, syncQueueStorage } = client.sync;
    const clientId = await store.create('clients', { name: 'Ann' }, { priority: 'low' });
    await store.create('pets', { name: 'Rex', client_id: clientId }, { priority: 'critical' });
    const ops = await syncQueueStorage.getOperations();
    const one = selectBatch(ops, { now: Date.now(), size: 1, held: new Set() });
    expect(one.map((op) => op.entityType)).toEqual(['clients']); // the pet waits for its client
    const two = selectBatch(ops, { now: Date.now(), size: 2, held: new Set() });
    expect(two.map((op) => op.entityType)).toEqual(['clients', 'pets']);
  });
});

describe('bad input throws a ValidationError and queues nothing', () => {
  const cases: [string, unknown, string][] = [
    ['an unknown entity type', { operation: 'create', entityType: 'invoices', data: { amount: 1 } }, 'not-configured-entity-type'],
    ['a create without data', { operation: 'create', entityType: 'clients' }, 'missing-data'],
    ['data that is not an object', { operation: 'create', entityType: 'clients', data: [1, 2] }, 'invalid-data'],
    ['an update without an id', { operation: 'update', entityType: 'clients', data: { name: 'x' } }, 'missing-entity-id'],
    ['an update with empty data', { operation: 'update', entityType: 'clients', entityId: 1, data: {}, version: 1 }, 'missing-data'],
    ['a delete without an id', { operation: 'delete', entityType: 'clients' }, 'missing-entity-id'],
    ['an unknown operation', { operation: 'upsert', entityType: 'clients', data: {} }, 'invalid-operation'],
    ['an unknown priority', { operation: 'create', entityType: 'clients', data: { a: 1 }, priority: 'urgent' }, 'invalid-priority'],
    ['a negative version', { operation: 'update', entityType: 'clients', entityId: 1, data: { a: 1 }, version: -1 }, 'invalid-version'],
    ['another tenant', { operation: 'create', entityType: 'clients', data: { a: 1 }, tenantId: 'other' }, 'context-mismatch'],
    ['another practice', { operation: 'create', entityType: 'clients', data: { a: 1 }, practiceId: 2 }, 'context-mismatch'],
    ['an update of a row the device does not have, without version', { operation: 'update', entityType: 'clients', entityId: 99, data: { a: 1 } }, 'unknown-entity'],
    ['permissions that are not strings', { operation: 'create', entityType: 'clients', data: { a: 1 }, requiredPermissions: [1] }, 'invalid-permissions'],
  ];
  for (const [what, input, code] of cases) {
    it(what, async () => {
      client = makeClient();
      const error = await client.sync.syncQueueStorage.queueOperation(input as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).code).toBe(code);
      expect(await client.sync.syncQueueStorage.getOperations()).toEqual([]);
      expect(await client.sync.store.count('clients')).toBe(0);
    });
  }

  it('reads of an unknown entity type throw too', async () => {
    client = makeClient();
    await expect(client.sync.store.get('invoices', 1)).rejects.toBeInstanceOf(ValidationError);
    await expect(client.sync.store.list('invoices')).rejects.toBeInstanceOf(ValidationError);
  });
});
