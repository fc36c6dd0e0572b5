// The spec's module-level API, called exactly as the spec shows it.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { IDBFactory } from 'fake-indexeddb';
import {
  NotConfiguredError,
  ValidationError,
  configureSmartSync,
  conflictStorage,
  getSmartSync,
  getSyncEngine,
  initializeNetworkMonitoring,
  localStore,
  resolveConflict,
  syncQueueStorage,
} from '../../src/index.js';
import { FakeServer } from './fake-server.js';

afterEach(() => getSmartSync()?.close());

describe('the spec API', () => {
  it('throws NotConfiguredError before configureSmartSync', async () => {
    vi.resetModules();
    const fresh = await import('../../src/index.js');
    expect(() => fresh.getSyncEngine()).toThrow(fresh.NotConfiguredError);
    expect(() => fresh.syncQueueStorage.getStats()).toThrow(/call configureSmartSync/);
    expect(NotConfiguredError.name).toBe('NotConfiguredError');
  });

  it("works as the spec's snippets are written", async () => {
    const server = new FakeServer(['clients', 'pets', 'appointments']);
    server.write('appointments', 1, { title: 'Annual checkup', notes: null });
    const context = { tenantId: 'happy-paws', practiceId: 1, userId: 42 };
    configureSmartSync({
      transport: server.transport('tablet-1'),
      ...context,
      deviceId: 'tablet-1',
      entityTypes: ['clients', 'pets', 'appointments'],
      batchSize: 50,
      maxRetries: 3,
      indexedDB: new IDBFactory(),
      locks: null,
      broadcastChannel: null,
    });
    initializeNetworkMonitoring({ syncOnReconnect: true, autoSyncEnabled: false });
    await getSyncEngine().sync();

    const tempId = 'temp_12345';
    const appointmentData = { title: 'Test Appointment', petId: 1, date: new Date('2026-12-01T09:00:00Z').toISOString(), duration: 30 };
    await syncQueueStorage.queueOperation({
      operation: 'create', // or 'update', 'delete'
      entityType: 'appointments',
      entityId: tempId,
      data: appointmentData,
      tenantId: context.tenantId,
      practiceId: context.practiceId,
      userId: context.userId,
      priority: 'normal',
      maxRetries: 3,
      version: 1,
      requiredPermissions: ['appointments:create'],
    });
    const stats = await syncQueueStorage.getStats();
    expect(`Pending operations: ${stats.pending}`).toBe('Pending operations: 1');

    await getSyncEngine().sync();
    const result = await getSyncEngine().getLastResult();
    expect(`Synced: ${result!.synced}, Failed: ${result!.failed}`).toBe('Synced: 1, Failed: 0');
    expect(getSyncEngine().isSyncing()).toBe(false);
    expect((await localStore.get('appointments', tempId))?.id).toBe(server.idMap.get(tempId));

    // conflict testing
    await localStore.update('appointments', 1, { notes: 'from the tablet' });
    server.write('appointments', 1, { title: 'Moved' });
    await getSyncEngine().sync();
    const conflicts = await conflictStorage.getUnresolvedConflicts();
    expect(`Conflicts: ${conflicts.length}`).toBe('Conflicts: 1');
    const conflict = conflicts[0]!;
    await resolveConflict(conflict.id, {
      strategy: 'merge',
      appliedAt: Date.now(),
    });
    expect(await conflictStorage.getUnresolvedConflicts()).toEqual([]);
    await expect(syncQueueStorage.queueOperation({ operation: 'create', entityType: 'vaccines', data: {} })).rejects.toBeInstanceOf(ValidationError);
  });
});
