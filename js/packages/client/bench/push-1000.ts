// Benchmark: push of 1,000 queued operations end to end, from the IndexedDB queue to every
// real id applied locally, against a real PostgreSQL with smartsync over loopback HTTP (the
// PostgREST stand-in of the integration tests, which runs per request the SQL PostgREST
// runs). Node, fake-indexeddb.
//
// The operations: 200 clients, 400 pets (each referring to a new client by its temporary
// id) and 400 appointments (each referring to a new pet), all creates with temporary ids,
// sent in batches of 50 (the spec's batch size, and smartsync.batch_size's default).
//
// Baseline, in the same run and interleaved: the same 1,000 operations as the same 20 push
// requests sent with fetch by a bare loop (JSON in, JSON out, no queue, no IndexedDB, no
// remapping): the cost of the server and the network alone. Each round uses a new device
// (a new IndexedDB and client id) so every operation is a first delivery.
//
//   PGHOST=... node out/bench/push-1000.js      (bench/bench_client_push.sh builds and runs it)
//   ROUNDS=5 by default

import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createSmartSync, postgrestTransport, type PushRequest, type PushResponse } from '../src/index.js';
import { AUTHENTICATOR_PASSWORD, JWT_SECRET, createTestDatabase } from '../test/integration/database.js';
import { deviceToken } from '../test/integration/jwt.js';
import { startStandin } from '../test/integration/postgrest-standin.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const CLIENTS = 200;
const PETS = 400;
const APPOINTMENTS = 400;
const BATCH = 50;

const db = await createTestDatabase();
const standin = await startStandin({ connection: db.connection('authenticator', AUTHENTICATOR_PASSWORD), admin: db.admin, jwtSecret: JWT_SECRET });
await db.admin.query(`ALTER DATABASE "${db.name}" SET synchronous_commit = off`);

/** CPU time of this Node process (client, transport and the stand-in; PostgreSQL's is not in it), ms. */
function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

async function clientRound(round: number): Promise<{ queueMs: number; pushMs: number; cpu: number; check: string }> {
  const deviceId = `bench-client-${round}`;
  const sync = createSmartSync({
    transport: postgrestTransport({ url: standin.url, getToken: () => deviceToken(JWT_SECRET, deviceId, 'bench') }),
    tenantId: 'happy-paws',
    practiceId: 1,
    deviceId,
    entityTypes: ['clients', 'pets', 'appointments'],
    indexedDB: new IDBFactory(),
    locks: null,
    broadcastChannel: null,
    batchSize: BATCH,
    pullEntityTypesFilter: true,
  });
  await sync.getSyncEngine().sync(); // the first sync's listing, before the clock starts
  const { store } = sync;
  const queueStart = performance.now();
  const clients: (string | number)[] = [];
  const pets: (string | number)[] = [];
  for (let i = 0; i < CLIENTS; i++) clients.push(await store.create('clients', { practice_id: 1, name: `client ${round}.${i}`, email: `c${i}@example.com` }));
  for (let i = 0; i < PETS; i++) pets.push(await store.create('pets', { practice_id: 1, client_id: clients[i % CLIENTS], name: `pet ${i}`, species: 'dog' }));
  for (let i = 0; i < APPOINTMENTS; i++) {
    await store.create('appointments', { practice_id: 1, pet_id: pets[i % PETS], title: `visit ${i}`, date: '2026-12-01T09:00:00Z', duration: 30 });
  }
  const queueMs = performance.now() - queueStart;

  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const result = await sync.getSyncEngine().sync();
  const pushMs = performance.now() - start;
  const cpu = cpuMs(cpu0);

  // every real id applied: no temporary id left anywhere on the device
  const stats = await sync.syncQueueStorage.getStats();
  const appointments = await store.list('appointments');
  const temp = appointments.filter((row) => typeof row.id !== 'number' || typeof row.data.pet_id !== 'number').length;
  sync.close();
  if (result.synced !== CLIENTS + PETS + APPOINTMENTS || stats.pending !== 0 || temp !== 0) {
    throw new Error(`round ${round}: ${JSON.stringify(result)} ${JSON.stringify(stats)}, ${temp} rows with temporary ids`);
  }
  return { queueMs, pushMs, cpu, check: `${result.synced} synced` };
}

/** The same 20 requests, from a bare loop. */
async function rawRound(round: number): Promise<{ ms: number; cpu: number }> {
  const deviceId = `bench-raw-${round}`;
  const token = deviceToken(JWT_SECRET, deviceId, 'bench');
  const ops: PushRequest['operations'] = [];
  let n = 0;
  const op = (entityType: string, entityId: string, data: Record<string, unknown>): void => {
    ops.push({ id: `op-${++n}`, operation: 'create', entityType, entityId, data, timestamp: Date.now(), priority: 'normal', maxRetries: 3, tenantId: 'happy-paws', practiceId: 1 });
  };
  for (let i = 0; i < CLIENTS; i++) op('clients', `temp_c${round}_${i}`, { practice_id: 1, name: `client ${round}.${i}`, email: `c${i}@example.com` });
  for (let i = 0; i < PETS; i++) op('pets', `temp_p${round}_${i}`, { practice_id: 1, client_id: `temp_c${round}_${i % CLIENTS}`, name: `pet ${i}`, species: 'dog' });
  for (let i = 0; i < APPOINTMENTS; i++) op('appointments', `temp_a${round}_${i}`, { practice_id: 1, pet_id: `temp_p${round}_${i % PETS}`, title: `visit ${i}`, date: '2026-12-01T09:00:00Z', duration: 30 });
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let applied = 0;
  for (let i = 0; i < ops.length; i += BATCH) {
    const body: PushRequest = { operations: ops.slice(i, i + BATCH), clientTimestamp: Date.now(), clientId: deviceId };
    const response = await fetch(`${standin.url}/rpc/sync_push`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as PushResponse;
    applied += answer.results.filter((r) => r.success).length;
  }
  const ms = performance.now() - start;
  const cpu = cpuMs(cpu0);
  if (applied !== ops.length) throw new Error(`raw round ${round}: ${applied} applied`);
  return { ms, cpu };
}

const rows: { round: number; client: number; raw: number; queue: number; clientCpu: number; rawCpu: number }[] = [];
await clientRound(0); // warm-up: plans, connections, JIT
await rawRound(0);
for (let round = 1; round <= ROUNDS; round++) {
  const c = await clientRound(round);
  const raw = await rawRound(round);
  rows.push({ round, client: c.pushMs, raw: raw.ms, queue: c.queueMs, clientCpu: c.cpu, rawCpu: raw.cpu });
}
await standin.close();
await db.drop();

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ratios = rows.map((r) => r.client / r.raw);
const ms = (x: number): string => x.toFixed(0);
console.log(`client push benchmark: 1,000 creates with temporary ids (200 clients, 400 pets, 400 appointments), batches of ${BATCH}, ${ROUNDS} rounds`);
console.log(`node ${process.version}, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('');
console.log('| round | client: queue to every real id applied (ms) | baseline: the same 20 requests from a bare loop (ms) | ratio | Node CPU client / baseline (ms) |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.round} | ${ms(r.client)} | ${ms(r.raw)} | ${(r.client / r.raw).toFixed(2)}x | ${ms(r.clientCpu)} / ${ms(r.rawCpu)} |`);
console.log('');
console.log(`client: min ${ms(Math.min(...rows.map((r) => r.client)))} ms, median ${ms(median(rows.map((r) => r.client)))} ms, max ${ms(Math.max(...rows.map((r) => r.client)))} ms (goal: under 2000 ms)`);
console.log(`baseline: min ${ms(Math.min(...rows.map((r) => r.raw)))} ms, median ${ms(median(rows.map((r) => r.raw)))} ms, max ${ms(Math.max(...rows.map((r) => r.raw)))} ms`);
console.log(`ratio client / baseline: min ${Math.min(...ratios).toFixed(2)}x, median ${median(ratios).toFixed(2)}x, max ${Math.max(...ratios).toFixed(2)}x`);
console.log(`Node process CPU (client + stand-in; not PostgreSQL): client median ${ms(median(rows.map((r) => r.clientCpu)))} ms, baseline median ${ms(median(rows.map((r) => r.rawCpu)))} ms`);
console.log(`queueing the 1,000 creates on the device (not in the figures above): median ${ms(median(rows.map((r) => r.queue)))} ms`);
