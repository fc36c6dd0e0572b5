// The spec's "Conflict Testing": the server changes an appointment by SQL while the device
// edits it offline; back online, the conflict shows in the panel with both versions side by
// side; it is resolved with merge and device and server converge. A second conflict, where
// both sides changed the same field, cannot merge and is settled with the manual-merge form.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectConverged, openDevice, SCHEMA, screenshots, startStack, stats, type Device, type Stack } from './stack.js';

let stack: Stack;
let device: Device;
const shot = screenshots('2-conflict');

beforeAll(async () => {
  stack = await startStack();
  device = await openDevice(stack, 'front-desk-1');
});
afterAll(() => stack?.stop());

async function edit(page: Device['page'], id: string, field: string, value: string): Promise<void> {
  const row = page.locator(`[data-testid=row][data-id="${id}"]`);
  await row.getByRole('button', { name: 'Edit' }).click();
  const form = page.getByTestId('edit-form');
  await form.locator(`[name=${field}]`).fill(value);
  await form.getByRole('button', { name: 'Save' }).click();
  await expect.poll(() => row.locator('.sync').textContent()).toBe('pending');
}

describe("the spec's conflict test", () => {
  it('concurrent edits: the conflict shows both versions; merge and a manual merge settle them; device and server converge', async () => {
    const { page, context } = device;
    await page.locator('[data-testid=row][data-id="1"]').waitFor();

    // 1. Concurrent edits: offline, the device changes the appointment's notes and the client's phone ...
    await context.setOffline(true);
    await page.getByTestId('network-badge').filter({ hasText: 'offline' }).waitFor();
    await edit(page, '1', 'notes', 'bring the vaccination card and a stool sample');
    await page.goto(`${stack.url}/#/clients`);
    await edit(page, '1', 'phone', '555-0199');
    expect(await stats(page)).toEqual({ pending: 2, inFlight: 0, failed: 0, conflicts: 0 });
    await shot(page, 'edited-offline');

    // ... while the server changes the same rows by SQL (another desk, a batch job)
    await stack.admin.query(`UPDATE ${SCHEMA}.appointments SET status = 'confirmed', duration = 45 WHERE id = 1`);
    await stack.admin.query(`UPDATE ${SCHEMA}.clients SET phone = '555-0142' WHERE id = 1`);

    // 2. Online: the sync finds both conflicts
    await context.setOffline(false);
    await expect.poll(() => page.getByTestId('conflict-count').textContent(), { timeout: 15_000 }).toBe('2 conflicts');
    const conflicts = await page.evaluate(() =>
      (window as unknown as { smartsync: { conflictStorage: { getUnresolvedConflicts(): Promise<{ entityType: string; affectedFields: string[] }[]> } } }).smartsync.conflictStorage.getUnresolvedConflicts(),
    );
    expect(conflicts.map((c) => [c.entityType, c.affectedFields])).toEqual(
      expect.arrayContaining([
        ['appointments', ['notes']],
        ['clients', ['phone']],
      ]),
    );

    // the panel: both versions side by side, the fields that differ highlighted
    await page.getByTestId('conflict-count').click();
    const appointment = page.getByTestId('conflict').filter({ hasText: 'appointments 1' });
    const versions = appointment.getByTestId('versions');
    const cell = (field: string, side: string) => versions.locator(`tr[data-field=${field}] td[data-side=${side}]`).textContent();
    expect(await cell('notes', 'device')).toBe('bring the vaccination card and a stool sample');
    expect(await cell('notes', 'server')).toBe('bring the vaccination card');
    expect(await cell('status', 'device')).toBe('scheduled');
    expect(await cell('status', 'server')).toBe('confirmed');
    expect(await cell('duration', 'server')).toBe('45');
    const changed = await versions.locator('tr.changed').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-field')));
    expect(changed).toEqual(expect.arrayContaining(['notes', 'status', 'duration']));
    expect(changed).not.toContain('title');
    expect(changed).not.toContain('pet_id');
    expect(await versions.locator('tr.affected').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-field')))).toEqual(['notes']);
    await shot(page, 'conflicts-open');

    // 3. Resolve with merge: each field from the side that changed it
    await appointment.getByRole('button', { name: 'Merge' }).click();
    await appointment.waitFor({ state: 'detached' });
    const { rows: [row] } = await stack.admin.query(`SELECT notes, status, duration, version::int FROM ${SCHEMA}.appointments WHERE id = 1`);
    expect(row).toEqual({ notes: 'bring the vaccination card and a stool sample', status: 'confirmed', duration: 45, version: 3 });

    // the phone changed on both sides: merge refuses, the manual form decides
    const client = page.getByTestId('conflict').filter({ hasText: 'clients 1' });
    await client.getByRole('button', { name: 'Merge' }).click();
    await client.locator('.error').filter({ hasText: /phone/ }).waitFor();
    await shot(page, 'merge-refused');
    await client.getByText('Merge by hand').click();
    await client.getByTestId('manual-form').locator('[name=phone]').fill('555-0150');
    await shot(page, 'manual-form');
    await client.getByRole('button', { name: 'Save this version' }).click();
    await client.waitFor({ state: 'detached' });
    await page.getByText('No conflicts.').waitFor();
    await shot(page, 'resolved');

    // 4. Converged: the device holds exactly the server's rows, and the server's store says how
    expect(await stats(page)).toEqual({ pending: 0, inFlight: 0, failed: 0, conflicts: 0 });
    await expect.poll(() => expectConverged(stack.admin, device).catch((error: Error) => error.message)).toBe(3);
    const { rows: stored } = await stack.admin.query(`SELECT entity_type, status, strategy FROM ${SCHEMA}.sync_conflicts ORDER BY entity_type`);
    expect(stored).toEqual([
      { entity_type: 'appointments', status: 'resolved', strategy: 'merge' },
      { entity_type: 'clients', status: 'resolved', strategy: 'manual' },
    ]);
    const { rows: [maria] } = await stack.admin.query(`SELECT phone FROM ${SCHEMA}.clients WHERE id = 1`);
    expect(maria).toEqual({ phone: '555-0150' });
    await page.goto(`${stack.url}/#/appointments`);
    await page.locator('[data-testid=row][data-id="1"]').filter({ hasText: 'confirmed' }).filter({ hasText: 'stool sample' }).waitFor();
    await shot(page, 'converged');
  });
});
