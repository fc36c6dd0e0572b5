// The spec's module-level API, called exactly as the spec shows it.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { IDBFactory } from 'fake-indexeddb';
import {
  NotConfiguredError,
  ValidationError,
  configureSmartSync,
  conflictStorage,
  createTempId,
  getNetworkMonitor,
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

  it("works as the spec's snippets are written (the README's client section shows this code)", async () => {
    const server = new FakeServer(['clients', 'pets', 'appointments']);
    server.write('appointments', 1, { title: 'Annual checkup', notes: null });
    const logged: string[] = [];
    const console = { log: (line: string) => logged.push(line) };
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
    expect(getSyncEngine().getLastResult()).toMatchObject({ synced: 0, startedAt: 0 });

    // In app initialization
    initializeNetworkMonitoring({
      syncOnReconnect: true,
      autoSyncEnabled: true,
    });
    getSyncEngine().stop(); // the test syncs by hand from here
    await getSyncEngine().sync();

    const tempId = createTempId();
    const appointmentData = { title: 'Test Appointment', petId: 1, practitionerId: 2, date: new Date().toISOString(), duration: 30 };

    // Queue an operation
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
    console.log(`Pending operations: ${stats.pending}`);

    await getSyncEngine().sync();
    const result = await getSyncEngine().getLastResult();
    console.log(`Synced: ${result.synced}, Failed: ${result.failed}`);
    expect(getSyncEngine().isSyncing()).toBe(false);
    expect((await localStore.get('appointments', tempId))?.id).toBe(server.idMap.get(tempId));

    // conflict testing: the server and the device change the same appointment
    await localStore.update('appointments', 1, { notes: 'from the tablet' });
    server.write('appointments', 1, { title: 'Moved' });
    await getSyncEngine().sync();

    const conflicts = await conflictStorage.getUnresolvedConflicts();
    console.log(`Conflicts: ${conflicts.length}`);
    const conflict = conflicts[0]!;

    await resolveConflict(conflict.id, {
      strategy: 'merge',
      appliedAt: Date.now(),
    });

    expect(logged).toEqual(['Pending operations: 1', 'Synced: 1, Failed: 0', 'Conflicts: 1']);
    expect(await conflictStorage.getUnresolvedConflicts()).toEqual([]);
    await expect(syncQueueStorage.queueOperation({ operation: 'create', entityType: 'vaccines', data: {} })).rejects.toBeInstanceOf(ValidationError);

    const monitor = getNetworkMonitor();
    expect(monitor.getState()).toMatchObject({ status: 'online', isOnline: true, isOffline: false, isSlow: false, timeSinceOnline: 0 });
  });
});
