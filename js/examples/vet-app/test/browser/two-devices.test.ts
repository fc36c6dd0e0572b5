// Two devices (two browser contexts: two IndexedDBs) create rows offline whose parents are
// the other device's temporary rows of before a sync: after syncing, every reference points
// at the real row, and both devices hold exactly the server's rows.

import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectConverged, openDevice, SCHEMA, screenshots, settled, startStack, type Device, type Stack } from './stack.js';

let stack: Stack;
let a: Device;
let b: Device;
const shot = screenshots('3-two-devices');

beforeAll(async () => {
  stack = await startStack();
  a = await openDevice(stack, 'tablet-A', '#/pets');
  b = await openDevice(stack, 'laptop-B', '#/pets');
});
afterAll(() => stack?.stop());

type Row = Record<string, unknown>;

/** localStore.create in the page: the app's client, as the forms use it. Returns the id (temporary). */
function create(page: Page, type: string, data: Row): Promise<string | number> {
  return page.evaluate(([t, d]) => (window as unknown as { smartsync: { localStore: { create(t: string, d: Row): Promise<string | number> } } }).smartsync.localStore.create(t, d), [type, data] as const);
}

/** The id the device now has for a row it created (a temporary id still finds the row). */
function idOf(page: Page, type: string, id: string | number): Promise<string | number | undefined> {
  return page.evaluate(
    async ([t, i]) => (await (window as unknown as { smartsync: { localStore: { get(t: string, i: string | number): Promise<{ id: string | number } | null> } } }).smartsync.localStore.get(t, i))?.id,
    [type, id] as const,
  );
}

const client = (name: string): Row => ({ practice_id: 1, name, email: null, phone: null, notes: null });
const pet = (name: string, clientId: string | number): Row => ({ practice_id: 1, client_id: clientId, name, species: 'dog', breed: null, birth_date: null, allergies: null });
const visit = (title: string, petId: string | number): Row => ({ practice_id: 1, pet_id: petId, practitioner_id: null, title, date: '2026-12-07T14:00:00Z', duration: 30, status: 'scheduled', notes: null });

async function offline(...devices: Device[]): Promise<void> {
  for (const d of devices) await d.context.setOffline(true);
  for (const d of devices) await d.page.getByTestId('network-badge').filter({ hasText: 'offline' }).waitFor();
}

describe('two devices', () => {
  it('creates that refer to the other device’s rows created offline before a sync: both converge with the server, row for row', async () => {
    // round 1, both offline: each creates a client and a pet of that client (temporary ids)
    await offline(a, b);
    const ann = await create(a.page, 'clients', client('Ann Lee'));
    const rex = await create(a.page, 'pets', pet('Rex', ann));
    const bob = await create(b.page, 'clients', client('Bob Ray'));
    const tom = await create(b.page, 'pets', pet('Tom', bob));
    expect([ann, rex, bob, tom].every((id) => String(id).startsWith('temp_'))).toBe(true);
    await shot(a.page, 'A-round1-offline');
    await shot(b.page, 'B-round1-offline');

    // the sync between: A, then B; each learns the other's rows under their real ids
    await a.context.setOffline(false);
    await settled(a.page);
    await b.context.setOffline(false);
    await settled(b.page);
    const [annId, rexId] = [await idOf(a.page, 'clients', ann), await idOf(a.page, 'pets', rex)];
    const [bobId, tomId] = [await idOf(b.page, 'clients', bob), await idOf(b.page, 'pets', tom)];
    expect([annId, rexId, bobId, tomId].map((id) => typeof id)).toEqual(['number', 'number', 'number', 'number']);
    await expect.poll(() => idOf(a.page, 'pets', tomId!), { timeout: 10_000 }).toBe(tomId); // live: A has B's rows
    await expect.poll(() => idOf(b.page, 'pets', rexId!), { timeout: 10_000 }).toBe(rexId);

    // round 2, both offline again: each refers to the rows the other created in round 1,
    // and to new temporary parents of its own
    await offline(a, b);
    await create(a.page, 'appointments', visit('Tom: check-up (by A)', tomId!));
    const max = await create(a.page, 'pets', pet('Max', bobId!));
    await create(a.page, 'appointments', visit('Max: first visit (by A)', max));
    await create(b.page, 'appointments', visit('Rex: vaccination (by B)', rexId!));
    const cy = await create(b.page, 'clients', client('Cy Moss'));
    const pip = await create(b.page, 'pets', pet('Pip', cy));
    await create(b.page, 'appointments', visit('Pip: first visit (by B)', pip));
    await shot(a.page, 'A-round2-offline');

    // both come back at once
    await Promise.all([a.context.setOffline(false), b.context.setOffline(false)]);
    await Promise.all([settled(a.page), settled(b.page)]);

    // the server: every reference is the real row it meant
    const { rows } = await stack.admin.query(`
      SELECT a.title, p.name AS pet, c.name AS owner
        FROM ${SCHEMA}.appointments a JOIN ${SCHEMA}.pets p ON p.id = a.pet_id JOIN ${SCHEMA}.clients c ON c.id = p.client_id
       ORDER BY a.title`);
    expect(rows).toEqual([
      { title: 'Annual check-up', pet: 'Biscuit', owner: 'Maria Lopez' },
      { title: 'Max: first visit (by A)', pet: 'Max', owner: 'Bob Ray' },
      { title: 'Pip: first visit (by B)', pet: 'Pip', owner: 'Cy Moss' },
      { title: 'Rex: vaccination (by B)', pet: 'Rex', owner: 'Ann Lee' },
      { title: 'Tom: check-up (by A)', pet: 'Tom', owner: 'Bob Ray' },
    ]);

    // both devices hold exactly the server's rows (4 clients, 5 pets, 5 appointments)
    for (const d of [a, b]) await expect.poll(() => expectConverged(stack.admin, d).catch((error: Error) => error.message), { timeout: 15_000 }).toBe(14);
    await a.page.goto(`${stack.url}/#/appointments`);
    await b.page.goto(`${stack.url}/#/appointments`);
    await a.page.getByTestId('row').nth(4).waitFor();
    await b.page.getByTestId('row').nth(4).waitFor();
    await shot(a.page, 'A-converged');
    await shot(b.page, 'B-converged');
  });
});
