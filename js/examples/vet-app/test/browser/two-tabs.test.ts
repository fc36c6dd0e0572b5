// One device, two tabs (one browser context: one IndexedDB, Web Locks, BroadcastChannel):
// only one tab syncs at a time; the other waits for it, shows it syncing, pushes nothing
// itself, takes its result and shows the rows under their real ids.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDevice, openTab, SCHEMA, screenshots, startStack, stats, type Device, type Stack } from './stack.js';

let stack: Stack;
let device: Device;
const shot = screenshots('4-two-tabs');

beforeAll(async () => {
  stack = await startStack();
  device = await openDevice(stack, 'front-desk-1');
});
afterAll(() => stack?.stop());

describe('one device, two tabs', () => {
  it('one sync at a time: the second tab waits for the first and sees its result', async () => {
    const tab1 = device.page;
    // both tabs quiet: each has its /live stream open and its first sync done, so the only
    // sync to come before the server changes is the one tab 1's edits ask for
    const tab2 = await openTab(stack, device);
    await tab2.getByTestId('row').first().waitFor();

    // hold every push answer a while, so the sync's length is visible
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let pushes = 0;
    await device.context.route('**/api/sync/push', async (route) => {
      pushes += 1;
      try {
        const response = await route.fetch();
        await held;
        await route.fulfill({ response });
      } catch (error) {
        if (!device.context.pages().some((page) => !page.isClosed())) return; // the test is over (it failed): the browser closed
        throw error;
      }
    });

    // tab 1 records the results of the syncs it runs itself
    await tab1.evaluate(() => {
      const w = window as unknown as { ran: unknown[]; smartsync: { getSyncEngine(): { subscribe(fn: (s: { lastResult: { otherTab?: boolean; synced: number } | null }) => void): void } } };
      w.ran = [];
      w.smartsync.getSyncEngine().subscribe((state) => {
        if (state.lastResult && !state.lastResult.otherTab && state.lastResult.synced > 0 && !w.ran.includes(state.lastResult)) w.ran.push(state.lastResult);
      });
    });

    // tab 1 creates three appointments: its automatic sync starts 200 ms after the first and
    // pushes them. On a slow machine three creates can take longer than that, so they are made
    // holding the sync lock (the Web Lock a sync in another tab would hold): a sync tab 1 starts
    // meanwhile waits for it, and the three go in one push whatever the machine's speed.
    await tab1.evaluate(async () => {
      const store = (window as unknown as { smartsync: { localStore: { create(type: string, data: Record<string, unknown>): Promise<unknown> } } }).smartsync.localStore;
      await navigator.locks.request('smartsync:smartsync_happy-paws:sync', async () => {
        for (const title of ['Nail trim', 'Dental', 'X-ray']) {
          await store.create('appointments', { practice_id: 1, pet_id: 1, practitioner_id: null, title, date: '2026-12-09T10:00:00Z', duration: 15, status: 'scheduled', notes: null });
        }
      });
    });
    // the other tab sees them at once (BroadcastChannel), queued
    await tab2.getByTestId('row').filter({ hasText: 'X-ray' }).waitFor();
    await expect.poll(() => pushes, { timeout: 15_000 }).toBe(1);
    // the push is under way: its tab holds that lock
    expect((await tab1.evaluate(() => navigator.locks.query())).held?.map((lock) => lock.name)).toEqual(['smartsync:smartsync_happy-paws:sync']);

    // tab 2 asks for a sync while tab 1's runs: it waits (the Web Lock), shows it, and takes its result
    const waited = tab2.evaluate(() => (window as unknown as { smartsync: { getSyncEngine(): { sync(): Promise<{ synced: number; otherTab?: boolean }> } } }).smartsync.getSyncEngine().sync());
    const syncingIn = await Promise.all([tab1, tab2].map((tab) => tab.evaluate(() => (window as unknown as { smartsync: { getSyncEngine(): { isSyncing(): boolean } } }).smartsync.getSyncEngine().isSyncing())));
    expect(syncingIn).toEqual([true, true]);
    await expect.poll(() => tab2.getByTestId('sync-state').textContent()).toBe('Syncing…');
    expect(await tab2.getByRole('button', { name: 'Sync now' }).isDisabled()).toBe(true);
    await shot(tab2, 'tab2-waits');
    release();

    expect(await waited).toMatchObject({ synced: 3, failed: 0, otherTab: true });
    expect(await tab1.evaluate(() => (window as unknown as { ran: unknown[] }).ran)).toMatchObject([{ synced: 3, failed: 0 }]);
    await expect.poll(() => tab2.getByTestId('pending').textContent(), { timeout: 15_000 }).toBe('0 pending');
    expect((await stats(tab1)).pending).toBe(0);
    expect(pushes).toBe(1); // the queue went in one push, from one tab
    const { rows } = await stack.admin.query(`SELECT id::int, title FROM ${SCHEMA}.appointments WHERE duration = 15 ORDER BY id`);
    expect(rows.map((r) => r.title)).toEqual(['Nail trim', 'Dental', 'X-ray']);
    // tab 2 shows the real ids
    for (const row of rows) await tab2.locator(`[data-testid=row][data-id="${row.id}"]`).filter({ hasText: 'synced' }).waitFor();
    await shot(tab2, 'tab2-sees-result');
    await device.context.unroute('**/api/sync/push');
  });
});
