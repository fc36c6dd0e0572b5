// The browser tests' world, all of it real: a PostgreSQL database with smartsync and the
// veterinary schema (the PG* server: a pg_virtualenv cluster made by test/run.sh, or the
// one `bash test/private.sh -- ...` starts), @smartsync/server's handler on it, the example
// app's production build served beside it on one origin, and Debian's Chromium driven by
// playwright-core (never a downloaded browser).

import { createHmac } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const APP_DIR = join(here, '..', '..');
const REPO = join(APP_DIR, '..', '..', '..');
const DIST = join(APP_DIR, 'dist');

export const TENANT = 'happy-paws';
export const SCHEMA = 'tenant_happy_paws';
const AUTHENTICATOR_PASSWORD = 'browser-test-authenticator-password';
const JWT_SECRET = 'a-browser-test-secret-of-at-least-32-characters';

/** Debian's chromium, and the flags the tests run it with (Playwright adds a fresh --user-data-dir of its own). */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface ServerModule {
  createSyncHandler(options: Record<string, unknown>): ((request: Request) => Promise<Response>) & { close(): Promise<void> };
  toNodeListener(handler: (request: Request) => Promise<Response>): (req: IncomingMessage, res: ServerResponse) => void;
  silentLogger: unknown;
}

/** @smartsync/server (the workspace's; SMARTSYNC_SERVER_MODULE names another build, e.g. a branch's under validation). */
async function loadServer(): Promise<ServerModule> {
  const specifier = process.env.SMARTSYNC_SERVER_MODULE ?? '@smartsync/server';
  return (await import(specifier)) as ServerModule;
}

/** An HS256 token with the claims smartsync reads (README "JWT claims"). */
export function deviceToken(deviceId: string, userId = `desk-${deviceId}`, permissions: string[] = ['*']): string {
  const b64 = (value: string) => Buffer.from(value).toString('base64url');
  const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64(JSON.stringify({ role: 'web_user', tenant_id: TENANT, practice_id: 1, sub: userId, client_id: deviceId, permissions, exp: Math.floor(Date.now() / 1000) + 3600 }));
  return `${head}.${body}.${createHmac('sha256', JWT_SECRET).update(`${head}.${body}`).digest('base64url')}`;
}

export interface Stack {
  url: string;
  admin: pg.Pool;
  browser: Browser;
  /** Requests that reached /api/sync (method and path), in order. */
  apiLog: string[];
  stop(): Promise<void>;
}

export interface StackOptions {
  /** SQL run before the tenant is provisioned (more templates to register). */
  templates?: string;
  /** Extra SQL after the tenant is provisioned (seed rows, policies). */
  seed?: string;
  /** More options of @smartsync/server's handler (the benchmark's statement timeout). */
  server?: Record<string, unknown>;
}

/** A fresh database, the server, the app and a browser. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  if (!existsSync(join(DIST, 'index.html'))) throw new Error(`the app is not built: run vite build in ${APP_DIR} (test/run.sh does)`);
  const name = `vet_browser_${process.pid}_${Date.now().toString(36)}`;
  const root = new pg.Client({ database: process.env.PGDATABASE ?? 'postgres' });
  await root.connect();
  await root.query(`CREATE DATABASE "${name}"`).finally(() => root.end());
  const admin = new pg.Pool({ database: name, max: 4 });
  admin.on('error', () => undefined); // an idle connection ended by the final DROP DATABASE ... WITH (FORCE)
  await admin.query('SET client_min_messages = warning; CREATE EXTENSION smartsync');
  await admin.query(readFileSync(join(REPO, 'examples', 'vet_schema.sql'), 'utf8'));
  if (options.templates) await admin.query(options.templates);
  await admin.query('SELECT smartsync.provision_tenant($1)', [TENANT]);
  await admin.query('SELECT smartsync.setup_postgrest($1)', [AUTHENTICATOR_PASSWORD]);
  // the front desk sees every conflict (the demo schema lets push merge appointments at once)
  await admin.query(`SELECT smartsync.set_conflict_policy('appointments', default_strategy => 'manual')`);
  await admin.query(`
    INSERT INTO ${SCHEMA}.practitioners (practice_id, name, specialty) VALUES (1, 'Dr. Ana Costa', 'surgery'), (1, 'Dr. Ben Ode', 'general');
    INSERT INTO ${SCHEMA}.clients (practice_id, name, email, phone) VALUES (1, 'Maria Lopez', 'maria@example.com', '555-0101');
    INSERT INTO ${SCHEMA}.pets (practice_id, client_id, name, species, breed) VALUES (1, 1, 'Biscuit', 'dog', 'beagle');
    INSERT INTO ${SCHEMA}.appointments (practice_id, pet_id, practitioner_id, title, date, duration, notes)
      VALUES (1, 1, 1, 'Annual check-up', '2026-12-01 09:00+00', 30, 'bring the vaccination card');
  `);
  if (options.seed) await admin.query(options.seed);

  const server = await loadServer();
  const handler = server.createSyncHandler({
    connection: { host: process.env.PGHOST, port: process.env.PGPORT ? Number(process.env.PGPORT) : undefined, database: name, user: 'authenticator', password: AUTHENTICATOR_PASSWORD },
    jwt: { secret: JWT_SECRET },
    metrics: false,
    logger: server.silentLogger,
    live: { signal: 'poll', heartbeatMs: 5000 },
    ...options.server,
  });
  const api = server.toNodeListener(handler);
  const apiLog: string[] = [];
  const http: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path.startsWith('/api/sync')) {
      apiLog.push(`${req.method} ${path}`);
      api(req, res);
      return;
    }
    serveStatic(path, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  return {
    url,
    admin,
    browser,
    apiLog,
    async stop() {
      await browser.close().catch(() => undefined);
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await handler.close();
      await admin.end();
      const c = new pg.Client({ database: process.env.PGDATABASE ?? 'postgres' });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => c.end());
    },
  };
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json', '.png': 'image/png', '.svg': 'image/svg+xml' };

function serveStatic(path: string, res: ServerResponse): void {
  let file = normalize(join(DIST, decodeURIComponent(path)));
  if (!file.startsWith(DIST) || !existsSync(file) || statSync(file).isDirectory()) file = join(DIST, 'index.html');
  res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': path.startsWith('/assets/') ? 'max-age=31536000, immutable' : 'no-cache' });
  createReadStream(file).pipe(res);
}

// --- devices and pages ------------------------------------------------------------------

export interface Device {
  name: string;
  context: BrowserContext;
  page: Page;
}

/** A device: a browser context of its own (its own IndexedDB), signed in, its first sync done, the app shell cached. */
export async function openDevice(stack: Stack, name: string, hash = '#/appointments'): Promise<Device> {
  const context = await stack.browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[${name}] page error:`, error));
  await page.goto(`${stack.url}/?token=${deviceToken(name)}${hash}`);
  await settled(page);
  await page.evaluate(async () => {
    const registration = await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
    return registration.active?.state;
  });
  return { name, context, page };
}

/**
 * Another tab of the same device (same context: same IndexedDB, Web Locks, BroadcastChannel),
 * once it listens: its /live stream is open and the sync the opening asked for is over, so
 * from then on only a change on the server or the tab's own edits make it sync.
 */
export async function openTab(stack: Stack, device: Device, hash = '#/appointments'): Promise<Page> {
  const page = await device.context.newPage();
  page.on('pageerror', (error) => console.error(`[${device.name} tab] page error:`, error));
  // the paths of the sync API the page's fetch got an answer from, in order
  await page.addInitScript(() => {
    const w = window as unknown as { syncRequests: string[] };
    w.syncRequests = [];
    const fetch = window.fetch.bind(window);
    window.fetch = async (input, init) => {
      const response = await fetch(input, init);
      const path = new URL(input instanceof Request ? input.url : String(input), location.href).pathname;
      if (path.startsWith('/api/sync/')) w.syncRequests.push(path);
      return response;
    };
  });
  await page.goto(`${stack.url}/${hash}`);
  await page.getByTestId('network-badge').waitFor();
  await listening(page);
  return page;
}

/** Waits until a pull has been answered since the page's /live stream opened (the sync the opening asks for) and no sync runs. */
async function listening(page: Page, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const state = await page.evaluate(() => {
      const w = window as unknown as { syncRequests: string[]; smartsync?: SpecApi };
      const live = w.syncRequests.indexOf('/api/sync/live');
      return { requests: w.syncRequests, pulledSinceLive: live >= 0 && w.syncRequests.slice(live + 1).includes('/api/sync/pull'), syncing: w.smartsync?.getSyncEngine().isSyncing() ?? true };
    });
    if (state.pulledSinceLive && !state.syncing) return;
    if (Date.now() > deadline) throw new Error(`the tab does not listen after ${timeout} ms: ${JSON.stringify(state)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until the page is online, has synced at least once, and nothing is queued or syncing. */
export async function settled(page: Page, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const state = await page.evaluate(async () => {
      const s = (window as unknown as { smartsync?: SpecApi }).smartsync;
      if (!s) return null;
      const engine = s.getSyncEngine();
      return { stats: await s.syncQueueStorage.getStats(), syncing: engine.isSyncing(), startedAt: engine.getLastResult().startedAt, badge: document.querySelector('[data-testid=network-badge]')?.textContent };
    });
    if (state && state.startedAt > 0 && !state.syncing && state.stats.pending === 0 && state.stats.inFlight === 0 && (state.badge === 'online' || state.badge === 'slow')) return;
    if (Date.now() > deadline) throw new Error(`not settled after ${timeout} ms: ${JSON.stringify(state)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The spec's modules as the app exposes them on window.smartsync. */
export interface SpecApi {
  syncQueueStorage: { getStats(): Promise<{ pending: number; inFlight: number; failed: number; conflicts: number }> };
  getSyncEngine(): { getLastResult(): { synced: number; failed: number; conflicts: number; pulled: number; startedAt: number; durationMs: number; otherTab?: boolean }; isSyncing(): boolean; sync(): Promise<unknown> };
  conflictStorage: { getUnresolvedConflicts(): Promise<{ id: number }[]> };
  localStore: { list(type: string): Promise<{ id: string | number; data: Record<string, unknown>; version: number | null; syncStatus: string }[]> };
}

export function stats(page: Page) {
  return page.evaluate(() => (window as unknown as { smartsync: SpecApi }).smartsync.syncQueueStorage.getStats());
}

export function lastResult(page: Page) {
  return page.evaluate(() => (window as unknown as { smartsync: SpecApi }).smartsync.getSyncEngine().getLastResult());
}

export function localRows(page: Page, type: string) {
  return page.evaluate((t) => (window as unknown as { smartsync: SpecApi }).smartsync.localStore.list(t), type);
}

/** Screenshots of a test's steps, numbered, under test-results/browser/<test> (git ignores it). */
export function screenshots(test: string): (page: Page, step: string) => Promise<string> {
  const dir = join(APP_DIR, 'test-results', 'browser', test);
  mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (page, step) => {
    n += 1;
    const file = join(dir, `${String(n).padStart(2, '0')}-${step}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
}

// --- the server's side -------------------------------------------------------------------

/** The tenant's rows of a table (practice 1) by id, without updated_at. */
export async function serverRows(admin: pg.Pool, table: string): Promise<Map<string, Record<string, unknown>>> {
  const { rows } = await admin.query<{ id: string; row: Record<string, unknown> }>(
    `SELECT t.id::text AS id, to_jsonb(t) - 'updated_at' AS row FROM ${SCHEMA}.${table} t WHERE t.practice_id = 1 ORDER BY t.id`,
  );
  return new Map(rows.map((r) => [r.id, r.row]));
}

/**
 * A device's rows against the server's, row for row: the same ids, all synced, and every
 * column equal once the device's row is read in the table's types. Returns how many rows.
 */
export async function expectConverged(admin: pg.Pool, device: Device, types = ['clients', 'pets', 'appointments']): Promise<number> {
  let count = 0;
  for (const table of types) {
    const server = await serverRows(admin, table);
    const local = await localRows(device.page, table);
    const localIds = local.map((row) => String(row.id)).sort();
    const serverIds = [...server.keys()].sort();
    if (JSON.stringify(localIds) !== JSON.stringify(serverIds)) throw new Error(`${device.name} ${table}: ids ${JSON.stringify(localIds)}, server ${JSON.stringify(serverIds)}`);
    for (const row of local) {
      if (row.syncStatus !== 'synced') throw new Error(`${device.name} ${table} ${row.id}: ${row.syncStatus}`);
      const { rows } = await admin.query<{ row: Record<string, unknown> }>(
        `SELECT to_jsonb(jsonb_populate_record(NULL::${SCHEMA}.${table}, $1::jsonb)) - 'updated_at' AS row`,
        [JSON.stringify({ ...row.data, id: row.id, version: row.version })],
      );
      const mine = sortKeys(rows[0]!.row);
      const theirs = sortKeys(server.get(String(row.id))!);
      if (JSON.stringify(mine) !== JSON.stringify(theirs)) throw new Error(`${device.name} ${table} ${row.id}:\n device ${JSON.stringify(mine)}\n server ${JSON.stringify(theirs)}`);
      count += 1;
    }
  }
  return count;
}

function sortKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
