// Live: a change made on the server by SQL shows in an open tab without a reload: the
// server's /live stream tells the client, which pulls, and the list re-renders. The time
// from COMMIT to the row on screen is printed (the README reports it; no timing is asserted).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDevice, SCHEMA, screenshots, startStack, type Device, type Stack } from './stack.js';

let stack: Stack;
let device: Device;
const shot = screenshots('6-live');

beforeAll(async () => {
  stack = await startStack();
  device = await openDevice(stack, 'front-desk-1');
});
afterAll(() => stack?.stop());

describe('live changes', () => {
  it('a row changed and a row inserted by SQL appear in the open tab without a reload', async () => {
    const { page } = device;
    await page.locator('[data-testid=row][data-id="1"]').waitFor();
    await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'same page'));
    const pullsBefore = stack.apiLog.filter((line) => line === 'GET /api/sync/pull').length;

    const latencies: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const title = `Annual check-up (moved, ${i})`;
      const committed = Date.now();
      await stack.admin.query(`UPDATE ${SCHEMA}.appointments SET title = $1 WHERE id = 1`, [title]);
      await page.locator('[data-testid=row][data-id="1"]').filter({ hasText: title }).waitFor({ timeout: 10_000 });
      latencies.push(Date.now() - committed);
    }
    await shot(page, 'updated-by-sql');
    const { rows: [inserted] } = await stack.admin.query(
      `INSERT INTO ${SCHEMA}.appointments (practice_id, pet_id, title, date) VALUES (1, 1, 'Walk-in: limping', now()) RETURNING id::text`,
    );
    await page.locator(`[data-testid=row][data-id="${inserted.id}"]`).filter({ hasText: 'Walk-in: limping' }).waitFor({ timeout: 10_000 });
    await shot(page, 'inserted-by-sql');

    expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe('same page'); // no reload
    expect(stack.apiLog.filter((line) => line === 'GET /api/sync/pull').length).toBeGreaterThan(pullsBefore);
    expect(stack.apiLog).toContain('GET /api/sync/live');
    latencies.sort((x, y) => x - y);
    console.log(`live: SQL COMMIT to the row on screen, 5 updates: min ${latencies[0]} ms, median ${latencies[2]} ms, max ${latencies[4]} ms`);
  });
});
