// The spec's "Manual Test Procedure", step by step, in Chromium: go offline the way DevTools
// does, create an appointment in the app, the queue shows one pending operation (the spec's
// getStats() and the badge agree), go online, the sync starts by itself, getLastResult()
// reports it synced, the server holds the appointment under a real id, and the app shows it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastResult, openDevice, screenshots, SCHEMA, startStack, stats, type Device, type Stack } from './stack.js';

let stack: Stack;
let device: Device;
const shot = screenshots('1-manual-procedure');

beforeAll(async () => {
  stack = await startStack();
  device = await openDevice(stack, 'front-desk-1');
});
afterAll(() => stack?.stop());

describe("the spec's manual test procedure", () => {
  it('an appointment created offline syncs by itself when the network comes back', async () => {
    const { page, context } = device;
    await expect.poll(() => page.getByTestId('row').count()).toBe(1); // the practice's appointment, pulled at sign-in
    await shot(page, 'signed-in');

    // 1. Go offline (DevTools -> Network -> Offline)
    await context.setOffline(true);
    await page.getByTestId('network-badge').filter({ hasText: 'offline' }).waitFor();
    await page.getByTestId('offline-for').waitFor();
    await shot(page, 'offline');

    // 2. Create data offline: the spec's appointment, through the app's form
    await page.getByRole('button', { name: 'New appointment' }).click();
    const form = page.getByTestId('create-appointments');
    await form.locator('[name=title]').fill('Test Appointment');
    await form.locator('[name=pet_id]').selectOption({ label: 'Biscuit (Maria Lopez)' });
    await form.locator('[name=practitioner_id]').selectOption({ label: 'Dr. Ben Ode' });
    await form.locator('[name=date]').fill('2026-12-05T10:30');
    await form.locator('[name=duration]').fill('30');
    await form.getByRole('button', { name: 'Create appointment' }).click();
    const row = page.getByTestId('row').filter({ hasText: 'Test Appointment' });
    await row.waitFor();
    const tempId = await row.getByTestId('row-id').textContent();
    expect(tempId).toMatch(/^temp_[0-9a-f-]{36}$/);
    await expect.poll(() => row.locator('.sync').textContent()).toBe('pending');
    await shot(page, 'created-offline');

    // 3. Verify the queue: getStats() and the badge agree on one pending operation
    expect(await stats(page)).toEqual({ pending: 1, inFlight: 0, failed: 0, conflicts: 0 });
    await expect.poll(() => page.getByTestId('pending').textContent()).toBe('1 pending');
    const before = await lastResult(page);
    const pushesBefore = stack.apiLog.filter((line) => line === 'POST /api/sync/push').length;

    // the /live stream reconnects too, and its opening asks for a sync of its own (a pull, no
    // push): held until step 5 is checked, so the sync the reconnect starts is the last one
    let openLive!: () => void;
    const liveHeld = new Promise<void>((resolve) => (openLive = resolve));
    await context.route('**/api/sync/live**', async (route) => {
      await liveHeld;
      await route.continue().catch(() => undefined); // a request the page gave up meanwhile
    });

    // 4. Go online: the sync starts by itself (nothing is clicked)
    await context.setOffline(false);
    await page.getByTestId('network-badge').filter({ hasText: /online|slow/ }).waitFor();
    await expect.poll(() => page.getByTestId('pending').textContent(), { timeout: 15_000 }).toBe('0 pending');
    await shot(page, 'online-synced');
    expect(stack.apiLog.filter((line) => line === 'POST /api/sync/push').length).toBe(pushesBefore + 1);

    // 5. Check results: the spec's getLastResult()
    const result = await lastResult(page);
    expect(result.startedAt).toBeGreaterThan(before.startedAt);
    expect(result).toMatchObject({ synced: 1, failed: 0, conflicts: 0 });
    expect(await stats(page)).toEqual({ pending: 0, inFlight: 0, failed: 0, conflicts: 0 });
    openLive();
    await context.unroute('**/api/sync/live**');

    // 6. Verify server data: the appointment under a real id, and the app shows that id
    const { rows } = await stack.admin.query(`SELECT id::text AS id, pet_id, practitioner_id, title, date, duration, status, version FROM ${SCHEMA}.appointments WHERE title = 'Test Appointment'`);
    expect(rows).toHaveLength(1);
    const real = rows[0]!;
    expect(real).toMatchObject({ pet_id: '1', practitioner_id: '2', duration: 30, status: 'scheduled', version: '1' });
    expect(new Date(real.date).getTime()).toBe(new Date(2026, 11, 5, 10, 30).getTime()); // the browser's local time as entered
    const { rows: mapped } = await stack.admin.query(`SELECT temp_id, real_id::text AS real_id FROM ${SCHEMA}.sync_id_map WHERE entity_type = 'appointments'`);
    expect(mapped).toEqual([{ temp_id: tempId, real_id: real.id }]);
    await expect.poll(() => row.getByTestId('row-id').textContent()).toBe(real.id);
    await expect.poll(() => row.locator('.sync').textContent()).toBe('synced');
    await shot(page, 'real-id');
  });
});
