// @smartsync/client through postgrestTransport against a real PostgreSQL with smartsync,
// behind the PostgREST stand-in (postgrest-standin.ts): the two-device scenario,
// 410 relisting, and the stand-in's own fidelity to PostgREST's requests.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgrestTransport, HttpError, isMustRefetch } from '../../src/index.js';
import { AUTHENTICATOR_PASSWORD, JWT_SECRET, SCHEMA, createTestDatabase, type TestDatabase } from './database.js';
import { device, expectConverged } from './devices.js';
import { deviceToken } from './jwt.js';
import { startStandin, type Standin } from './postgrest-standin.js';
import { seedPractice, twoDevicesConverge, type TransportFor } from './scenario.js';

let db: TestDatabase;
let standin: Standin;
const transportFor: TransportFor = (name, fetch) =>
  postgrestTransport({ url: standin.url, getToken: () => deviceToken(JWT_SECRET, name, `user-${name}`), fetch });

beforeAll(async () => {
  db = await createTestDatabase();
  standin = await startStandin({ connection: db.connection('authenticator', AUTHENTICATOR_PASSWORD), admin: db.admin, jwtSecret: JWT_SECRET });
});
afterAll(async () => {
  await standin?.close();
  await db?.drop();
});

describe('through PostgREST', () => {
  it('two offline devices with temporary ids across three entity types, a conflict resolved with merge: both converge with the server row for row', async () => {
    const { a, b } = await twoDevicesConverge(db, transportFor);
    a.sync.close();
    b.sync.close();
  });

  it('a device whose cursor predates pruning gets 410, lists again, and keeps what it queued', async () => {
    await db.admin.query(`TRUNCATE ${SCHEMA}.sync_conflicts`);
    const c = device('phone-C', (fetch) => transportFor('phone-C', fetch));
    await c.sync.getSyncEngine().sync();
    const before = await c.sync.store.count('clients');
    c.online.set(false);
    const queued = await c.sync.store.create('clients', { practice_id: 1, name: 'Queued Offline', email: null, phone: null, notes: null });
    // meanwhile on the server: a change, a delete, and the change log pruned past C's cursor
    await db.admin.query(`UPDATE ${SCHEMA}.clients SET notes = 'VIP' WHERE id = 1`);
    await db.admin.query(`DELETE FROM ${SCHEMA}.appointments WHERE id = 1`);
    await db.admin.query(`SELECT smartsync.prune_changes('happy-paws', '0 seconds')`);
    c.online.set(true);
    const result = await c.sync.getSyncEngine().sync();
    expect(result).toMatchObject({ refetched: true, synced: 1, failed: 0 });
    expect(await c.sync.store.count('clients')).toBe(before + 1);
    expect((await c.sync.store.get('clients', 1))?.data.notes).toBe('VIP');
    expect(await c.sync.store.get('appointments', 1)).toBeNull();
    expect((await c.sync.store.get('clients', queued))?.data.name).toBe('Queued Offline');
    expect(await expectConverged(db.admin, c)).toMatchObject({ rows: expect.any(Number) });
    c.sync.close();
  });
});

describe('the stand-in speaks PostgREST', () => {
  it('runs each request as PostgREST does: a transaction of the right kind, the claims set locally, the api call', async () => {
    const t = transportFor('tablet-X', globalThis.fetch);
    const from = standin.statements.length;
    await t.push({ operations: [], clientTimestamp: Date.now(), clientId: 'tablet-X' });
    await t.pull({ limit: 1 });
    const sent = standin.statements.slice(from);
    expect(sent[0]).toBe('BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE');
    expect(sent[1]).toMatch(/^SELECT set_config\('search_path', \$1, true\), set_config\('role', \$2, true\), set_config\('request\.jwt\.claims', \$3, true\)/);
    expect(sent[2]).toBe('SELECT "api"."sync_push"($1::jsonb)::text AS body');
    expect(sent[4]).toBe('COMMIT');
    expect(sent[5]).toBe('BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY');
    expect(sent[7]).toBe('SELECT "api"."sync_pull"("p_limit" := $1)::text AS body');
  });

  it("answers errors with PostgREST's statuses and bodies", async () => {
    const anonymous = await postgrestTransport({ url: standin.url }).pull({}).catch((e: unknown) => e);
    expect(anonymous).toMatchObject({ status: 401, code: '42501' });
    const badCursor = await transportFor('tablet-X', globalThis.fetch).pull({ cursor: 'not-a-cursor' }).catch((e: unknown) => e);
    expect(badCursor).toBeInstanceOf(HttpError);
    expect(badCursor).toMatchObject({ status: 400, code: 'SS501' });
    expect(isMustRefetch(badCursor)).toBe(true);
    const unknown = await transportFor('tablet-X', globalThis.fetch).resolveConflict(999999, { strategy: 'server-wins' }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ status: 404, code: 'SS601' });
    // main has no api.sync_changed yet (issue 15 adds it): PostgREST answers 404 PGRST202, the engine then pulls
    const t = transportFor('tablet-X', globalThis.fetch);
    const page = await t.pull({});
    const changed = await t.changed!({ cursor: page.cursor! }).catch((e: unknown) => e);
    if (changed instanceof HttpError) expect(changed).toMatchObject({ status: 404, code: 'PGRST202' });
    else expect(changed).toBe(false);
  });
});

export { seedPractice };
