// The end-to-end scenario, for any transport: two devices go offline, create rows
// with temporary ids across three entity types (a pet refers to a new client, an
// appointment to a new pet) and edit the same pet; back online, the second device's edit
// conflicts, it resolves the conflict with merge, and both devices end with exactly the
// server's rows.

import { expect } from 'vitest';
import type { Transport } from '../../src/index.js';
import { SCHEMA, type TestDatabase } from './database.js';
import { device, expectConverged, type Device } from './devices.js';

export type TransportFor = (deviceName: string, fetch: typeof globalThis.fetch) => Transport;

export async function seedPractice(db: TestDatabase): Promise<void> {
  await db.admin.query(`
    INSERT INTO ${SCHEMA}.clients (practice_id, name, email) VALUES (1, 'Maria Lopez', 'maria@example.com');
    INSERT INTO ${SCHEMA}.pets (practice_id, client_id, name, species) VALUES (1, 1, 'Biscuit', 'dog');
    INSERT INTO ${SCHEMA}.appointments (practice_id, pet_id, title, date) VALUES (1, 1, 'Annual check-up', '2026-12-01 09:00+00');
  `);
}

export async function twoDevicesConverge(db: TestDatabase, transportFor: TransportFor): Promise<{ a: Device; b: Device }> {
  await seedPractice(db);
  const a = device('tablet-A', (fetch) => transportFor('tablet-A', fetch));
  const b = device('laptop-B', (fetch) => transportFor('laptop-B', fetch));

  // first sync: each device lists the practice's rows
  for (const d of [a, b]) {
    const first = await d.sync.getSyncEngine().sync();
    expect(first).toMatchObject({ pulled: 3, synced: 0, failed: 0 });
    expect(await d.sync.store.get('pets', 1)).toMatchObject({ version: 1, syncStatus: 'synced', data: { name: 'Biscuit' } });
  }

  // both go offline and work
  a.online.set(false);
  b.online.set(false);
  const { store: storeA } = a.sync;
  const tom = await storeA.create('clients', { practice_id: 1, name: 'Tom Baker', email: 'tom@example.com', phone: null, notes: null });
  const luna = await storeA.create('pets', { practice_id: 1, client_id: tom, name: 'Luna', species: 'cat', breed: null, birth_date: null, allergies: null });
  const visit = await storeA.create(
    'appointments',
    { practice_id: 1, pet_id: luna, practitioner_id: null, title: 'Vaccination', date: '2026-12-02T11:00:00Z', duration: 20, status: 'scheduled', notes: null },
    { priority: 'high' },
  );
  await storeA.update('pets', 1, { breed: 'beagle' });
  expect((await storeA.get('appointments', visit))?.data.pet_id).toBe(luna); // readable locally before any push

  const { store: storeB } = b.sync;
  const zoe = await storeB.create('clients', { practice_id: 1, name: 'Zoe Park', email: null, phone: '555-0100', notes: null });
  const max = await storeB.create('pets', { practice_id: 1, client_id: zoe, name: 'Max', species: 'dog', breed: null, birth_date: '2020-04-01', allergies: null });
  await storeB.create('appointments', {
    practice_id: 1,
    pet_id: max,
    practitioner_id: null,
    title: 'Check-up',
    date: '2026-12-03T15:30:00+01:00',
    duration: 30,
    status: 'scheduled',
    notes: 'first visit',
  });
  await storeB.update('pets', 1, { allergies: 'penicillin' });

  // a sync attempted offline changes nothing and keeps the queue
  const offline = await a.sync.getSyncEngine().sync();
  expect(offline.error?.name).toBe('NetworkError');
  expect(await a.sync.syncQueueStorage.getStats()).toEqual({ pending: 4, inFlight: 0, failed: 0, conflicts: 0 });
  expect(a.refused).toBeGreaterThan(0);

  // A comes back: its creates get real ids, references follow
  a.online.set(true);
  const pushA = await a.sync.getSyncEngine().sync();
  expect(pushA).toMatchObject({ synced: 4, failed: 0, conflicts: 0, pending: 0 });
  const realLuna = (await storeA.get('pets', luna))!;
  expect(typeof realLuna.id).toBe('number');
  expect(realLuna.data.client_id).toBe((await storeA.get('clients', tom))!.id);
  expect((await storeA.get('appointments', visit))!.data.pet_id).toBe(realLuna.id);

  // B comes back: its creates apply; its edit of Biscuit meets A's
  b.online.set(true);
  const pushB = await b.sync.getSyncEngine().sync();
  expect(pushB).toMatchObject({ synced: 3, failed: 0, conflicts: 1 });
  const conflicts = await b.sync.conflictStorage.getUnresolvedConflicts();
  expect(conflicts).toHaveLength(1);
  const conflict = conflicts[0]!;
  expect(conflict).toMatchObject({ entityType: 'pets', entityId: 1, localData: { allergies: 'penicillin' }, baseVersion: 1, serverVersion: 2 });
  expect(conflict.serverData).toMatchObject({ id: 1, breed: 'beagle', allergies: null, version: 2 });
  expect(await b.sync.store.get('pets', 1)).toMatchObject({ syncStatus: 'conflict' });

  // the spec's resolveConflict(conflict.id, {strategy: "merge", appliedAt: Date.now()})
  const resolved = await b.sync.resolveConflict(conflict.id, { strategy: 'merge', appliedAt: Date.now() });
  expect(resolved).toMatchObject({ status: 'resolved', version: 3, data: { breed: 'beagle', allergies: 'penicillin' } });
  expect(await b.sync.conflictStorage.getUnresolvedConflicts()).toEqual([]);
  const { rows: serverConflicts } = await db.admin.query(`SELECT status, strategy FROM ${SCHEMA}.sync_conflicts`);
  expect(serverConflicts).toEqual([{ status: 'resolved', strategy: 'merge' }]);

  // each pulls what the other did, and both hold the server's rows
  await a.sync.getSyncEngine().sync();
  await b.sync.getSyncEngine().sync();
  for (const d of [a, b]) {
    expect(await d.sync.syncQueueStorage.getStats()).toEqual({ pending: 0, inFlight: 0, failed: 0, conflicts: 0 });
    expect(await expectConverged(db.admin, d)).toEqual({ rows: 9 });
  }
  return { a, b };
}
