// Offline durability: a reload while offline keeps the queue (the app shell comes from the
// service worker, the queue from IndexedDB); and a sync cut off by going offline in the
// middle of a push resumes when the network is back and applies each operation once (the
// server's ledger answers the replayed batch). Each test has a device of its own (a browser
// context: its own IndexedDB, its own device id), so one never starts with another's queue.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectConverged, openDevice, SCHEMA, screenshots, settled, startStack, stats, type Device, type Stack } from './stack.js';

let stack: Stack;
let device: Device;
let devices = 0;
const shot = screenshots('5-reload-and-interrupt');

beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());
beforeEach(async () => {
  devices += 1;
  device = await openDevice(stack, `front-desk-${devices}`);
});
afterEach(() => device?.context.close());

/** Creates appointments in the page through the app's client. */
function createAppointments(page: Device['page'], titles: string[]): Promise<void> {
  return page.evaluate(async (list) => {
    const store = (window as unknown as { smartsync: { localStore: { create(type: string, data: Record<string, unknown>): Promise<unknown> } } }).smartsync.localStore;
    for (const title of list) {
      await store.create('appointments', { practice_id: 1, pet_id: 1, practitioner_id: 2, title, date: '2026-12-10T08:00:00Z', duration: 20, status: 'scheduled', notes: null });
    }
  }, titles);
}

describe('offline durability', () => {
  it('a reload while offline keeps the queue, and it syncs once the network is back', async () => {
    const { page, context } = device;
    await context.setOffline(true);
    await page.getByTestId('network-badge').filter({ hasText: 'offline' }).waitFor();
    await createAppointments(page, ['Booster shot', 'Ear check']);
    await expect.poll(() => page.getByTestId('pending').textContent()).toBe('2 pending');

    const response = await page.reload();
    expect(response?.fromServiceWorker()).toBe(true); // no network: the service worker's app shell
    await page.getByTestId('network-badge').filter({ hasText: 'offline' }).waitFor();
    await expect.poll(() => page.getByTestId('pending').textContent()).toBe('2 pending');
    expect(await stats(page)).toEqual({ pending: 2, inFlight: 0, failed: 0, conflicts: 0 });
    await page.getByTestId('row').filter({ hasText: 'Ear check' }).filter({ hasText: 'pending' }).waitFor();
    await shot(page, 'reloaded-offline');

    await context.setOffline(false);
    await settled(page);
    const { rows } = await stack.admin.query(`SELECT title FROM ${SCHEMA}.appointments WHERE duration = 20 ORDER BY id`);
    expect(rows).toEqual([{ title: 'Booster shot' }, { title: 'Ear check' }]);
    await shot(page, 'synced-after-reload');
  });

  it('a push cut off by going offline resumes when the network is back and applies each operation once', async () => {
    const { page, context } = device;
    const { rows: [seen] } = await stack.admin.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.appointments WHERE practice_id = 1`); // the device has them all
    const titles = Array.from({ length: 120 }, (_, i) => `Batch visit ${String(i + 1).padStart(3, '0')}`);
    await context.setOffline(true);
    await page.getByTestId('network-badge').filter({ hasText: 'offline' }).waitFor();
    await createAppointments(page, titles);
    expect(await stats(page)).toMatchObject({ pending: 120, inFlight: 0 });

    // the second push (operations 51-100) reaches the server, which applies it; then the
    // network goes away before the answer comes back
    let pushes = 0;
    await context.route('**/api/sync/push', async (route) => {
      pushes += 1;
      if (pushes !== 2) return route.continue();
      await route.fetch(); // the server applies the batch and answers ...
      await context.setOffline(true); // ... but the device is gone
      return route.abort('internetdisconnected');
    });
    await context.setOffline(false);
    await expect.poll(() => pushes, { timeout: 15_000 }).toBe(2);
    await page.getByTestId('network-badge').filter({ hasText: 'offline' }).waitFor();
    // the device does not know batch 2 was applied: its 50 operations are pending again (no attempt counted)
    await expect.poll(() => stats(page), { timeout: 15_000 }).toEqual({ pending: 70, inFlight: 0, failed: 0, conflicts: 0 });
    const { rows: [applied] } = await stack.admin.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.appointments WHERE title LIKE 'Batch visit %'`);
    expect(applied).toEqual({ n: 100 });
    await shot(page, 'cut-off-mid-push');

    // back online: the sync resumes by itself; batch 2 is answered from the ledger, not applied again
    await context.unroute('**/api/sync/push');
    await context.setOffline(false);
    await settled(page, 30_000);
    const { rows: [after] } = await stack.admin.query(`SELECT count(*)::int AS n, count(DISTINCT title)::int AS titles FROM ${SCHEMA}.appointments WHERE title LIKE 'Batch visit %'`);
    expect(after).toEqual({ n: 120, titles: 120 });
    const { rows: [logged] } = await stack.admin.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.sync_changes WHERE entity_type = 'appointments' AND operation = 'create' AND client_id = $1`, [device.name]);
    expect(logged).toEqual({ n: 120 }); // one insert each
    expect(await stats(page)).toEqual({ pending: 0, inFlight: 0, failed: 0, conflicts: 0 });
    await expect.poll(() => expectConverged(stack.admin, device, ['appointments']).catch((error: Error) => error.message), { timeout: 15_000 }).toBe(seen.n + 120);
    await page.getByTestId('row').filter({ hasText: 'Batch visit 120' }).filter({ hasText: 'synced' }).waitFor();
    await shot(page, 'resumed-once');
  });
});
