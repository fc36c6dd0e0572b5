// The pull phase of a sync (README "Pull", "A client's loop"):
//
// - The exact cursor: each page is applied in ONE IndexedDB transaction that also stores
//   the page's cursor, so the device never holds a cursor without the data it stands for,
//   nor data without its cursor. A crash between pages resumes from the last page applied.
// - First sync: no cursor, so the server lists every live row (`full: true`), in pages
//   until `hasMore` is false; the first page of a listing clears the synced rows in its
//   own transaction (rows with queued changes stay, and so does the queue).
// - Tombstones (`delete`) remove the row. A row with queued changes gets the server's data
//   underneath them (the changes stay on top, and their base version stays, so the server
//   decides whether they conflict).
// - 410 must-refetch (SS505, and a cursor the server cannot read any more): forget the
//   cursor and list again.
// - One request ahead: the next page is fetched while the current one is applied (pages are
//   still applied in order, each with its cursor). Memory stays flat: at most the page being
//   applied and the one arriving are held; each is dropped once applied.

import { entityKey } from './batch.js';
import { clearChunks, putChunk, readRow, unchunk } from './chunks.js';
import { Database, META, Pipeline, QUEUE, entityStore, type Tx } from './database.js';
import { ProtocolError, isMustRefetch } from './errors.js';
import type { StoreChange } from './local-store.js';
import { RELIST_KEY, patched } from './push-results.js';
import type { Transport } from './transport.js';
import { collectTempRefs } from './validate.js';
import type { EntityData, EntityId, EntityRecord, PullChange, PullResponse, QueuedOperation } from './types.js';

export const CURSOR_KEY = 'cursor';

/** What meta holds under CURSOR_KEY. */
export interface CursorRecord {
  key: typeof CURSOR_KEY;
  cursor: string;
  /** The pull's scope (entity types, practice): a cursor is only valid for the scope it was issued for. */
  scope: string;
  /** True while a listing is under way (its later pages carry `full: true`). */
  listing: boolean;
  updatedAt: number;
}

export interface PullContext {
  db: Database;
  transport: Transport;
  now: () => number;
  entityTypes: readonly string[];
  /** Send the configured entity types as the pull's filter (default true). */
  filterEntityTypes: boolean;
  practiceId?: string | number | undefined;
  limit: number;
  tempIdPrefix: string;
  emit(change: StoreChange): void;
  signal?: AbortSignal | undefined;
}

export interface PullOutcome {
  /** Changes applied. */
  pulled: number;
  pages: number;
  /** True when the device listed everything again: the server asked (410), or a push answer showed changes no pull would send. */
  refetched: boolean;
}

/**
 * Pulls every page there is now. The next page is asked for while the current one is applied
 * (one request ahead, never more), so the network, the server and IndexedDB work at once;
 * the pages are still applied one after the other, each with its own cursor.
 */
export async function pullAll(ctx: PullContext): Promise<PullOutcome> {
  const outcome: PullOutcome = { pulled: 0, pages: 0, refetched: false };
  const scope = scopeOf(ctx);
  // a push answer showed changes the pull would never send: list everything again
  const relist = (await ctx.db.transaction([META], 'readonly', (tx) => tx.objectStore(META).get(RELIST_KEY))) !== undefined;
  let sent = relist ? undefined : await readCursor(ctx.db, scope);
  if (relist) outcome.refetched = true;
  const configured = new Set(ctx.entityTypes);
  // the request ahead is cancelled when the sync is, and when this pull stops early (a failure)
  const ahead = new AbortController();
  const cancel = (): void => ahead.abort(ctx.signal?.reason);
  if (ctx.signal?.aborted) cancel();
  ctx.signal?.addEventListener('abort', cancel, { once: true });
  try {
    let request = fetchPage(ctx, sent, ahead.signal);
    for (;;) {
      let page: PullResponse;
      try {
        page = await request;
      } catch (error) {
        if (isMustRefetch(error) && sent !== undefined && !outcome.refetched) {
          outcome.refetched = true;
          sent = undefined;
          request = fetchPage(ctx, sent, ahead.signal);
          continue;
        }
        throw error;
      }
      if (typeof page.cursor !== 'string' || page.cursor === '') throw new ProtocolError('pull: the answer has no cursor');
      if (typeof page.hasMore !== 'boolean') throw new ProtocolError('pull: the answer has no hasMore');
      // a standby behind the cursor answers "nothing yet" with the same cursor: try again later
      const last = !page.hasMore || (page.changes.length === 0 && page.cursor === sent);
      const following = last ? null : fetchPage(ctx, page.cursor, ahead.signal);
      following?.catch(() => undefined); // awaited in the next round; if this page fails, it is cancelled in finally
      const types = await applyPage(ctx, page, scope, sent === undefined, configured);
      outcome.pulled += page.changes.length;
      outcome.pages += 1;
      for (const entityType of types) ctx.emit({ entityType, ids: null, source: 'pull' });
      if (!following) break;
      sent = page.cursor;
      request = following;
    }
  } finally {
    ahead.abort(); // nothing is in flight after the last page; after a failure, the page asked for ahead is not wanted
    ctx.signal?.removeEventListener('abort', cancel);
  }
  return outcome;
}

/** Asks the server for the page after the cursor (the first page of a listing without one). */
function fetchPage(ctx: PullContext, cursor: string | undefined, signal: AbortSignal): Promise<PullResponse> {
  const params: Parameters<Transport['pull']>[0] = { limit: ctx.limit };
  if (cursor !== undefined) params.cursor = cursor;
  if (ctx.filterEntityTypes) params.entityTypes = [...ctx.entityTypes];
  return ctx.transport.pull(params, signal);
}

/** The stored cursor, if it was issued for this scope. */
export async function readCursor(db: Database, scope: string): Promise<string | undefined> {
  const record = (await db.transaction([META], 'readonly', (tx) => tx.objectStore(META).get(CURSOR_KEY))) as CursorRecord | undefined;
  return record && record.scope === scope ? record.cursor : undefined;
}

/** The scope a cursor belongs to. */
export function scopeOf(ctx: Pick<PullContext, 'filterEntityTypes' | 'entityTypes' | 'practiceId'>): string {
  return JSON.stringify({ entityTypes: ctx.filterEntityTypes ? ctx.entityTypes : null, practiceId: ctx.practiceId ?? null });
}

/** Applies one page and stores its cursor, in one transaction. Returns the entity types it changed. */
async function applyPage(ctx: PullContext, page: PullResponse, scope: string, startsListing: boolean, configured: ReadonlySet<string>): Promise<Set<string>> {
  const stores = [META, QUEUE, ...ctx.entityTypes.map(entityStore)];
  const touched = new Set<string>();
  await ctx.db.transaction(
    stores,
    'readwrite',
    async (tx) => {
      if (startsListing && page.full) {
        for (const entityType of ctx.entityTypes) {
          if (await clearSynced(tx, entityType)) touched.add(entityType);
        }
      }
      // local changes still to push, per entity: they stay on top of what the server sends
      const local = new Map<string, QueuedOperation[]>();
      if (page.changes.length > 0) {
        for (const op of (await tx.objectStore(QUEUE).getAll()) as QueuedOperation[]) {
          if (op.status === 'failed') continue;
          const key = entityKey(op.entityType, op.entityId);
          const list = local.get(key);
          if (list) list.push(op);
          else local.set(key, [op]);
        }
      }
      // on a listing page, only the rows in the entity stores need reading: those the device
      // changed (the synced ones were cleared when the listing began), and any it pushed or
      // took out of a chunk since; the others are stored as they came, in a chunk
      const listing = page.full === true;
      const kept = listing && page.changes.length > 0 ? await entityKeys(tx, ctx.entityTypes) : null;
      if (!listing) {
        // changes to listed rows: out of their chunks first, each chunk rewritten once a page
        const ids = new Map<string, EntityId[]>();
        for (const change of page.changes) {
          if (typeof change !== 'object' || change === null || !configured.has(change.entityType)) continue;
          const list = ids.get(change.entityType);
          if (list) list.push(change.id);
          else ids.set(change.entityType, [change.id]);
        }
        for (const [entityType, list] of ids) await unchunk(tx, entityType, list.filter(isKey));
      }
      const writes = new Pipeline();
      // the usual rows of a listing page, per entity type: written as one chunk (chunks.ts)
      const listed = new Map<string, EntityRecord[]>();
      for (const change of page.changes) {
        checkChange(change);
        if (!configured.has(change.entityType)) continue;
        touched.add(change.entityType);
        const key = entityKey(change.entityType, change.id);
        const queued = local.get(key);
        if (kept !== null && !kept.has(key) && queued === undefined && change.operation !== 'delete') {
          // the usual row of a first sync: nothing here to read or keep (a listing sends each
          // row once, and its first page cleared the synced rows), so it is stored as it came
          const rows = listed.get(change.entityType);
          const record = syncedRecord(change, change.data!, versionOf(change, change.data!));
          if (rows) rows.push(record);
          else listed.set(change.entityType, [record]);
          continue;
        }
        await applyChange(ctx, tx, writes, change, queued, kept === null || kept.has(key));
      }
      for (const [entityType, rows] of listed) writes.add(putChunk(tx, entityType, rows));
      await writes.done();
      if (startsListing) await tx.objectStore(META).delete(RELIST_KEY);
      await tx.objectStore(META).put({
        key: CURSOR_KEY,
        cursor: page.cursor!,
        scope,
        listing: listing && page.hasMore,
        updatedAt: ctx.now(),
      } satisfies CursorRecord);
    },
    'relaxed',
  );
  return touched;
}

/**
 * Removes the synced rows of an entity type; rows with local changes stay (the `status` index
 * holds only those: a synced row has no status, or 'synced' if an older version stored it).
 * Returns true when it removed any.
 */
async function clearSynced(tx: Tx, entityType: string): Promise<boolean> {
  const store = tx.objectStore(entityStore(entityType));
  // chunks hold only synced rows (a row taken out to be changed leaves its chunk)
  const chunked = await clearChunks(tx, entityType);
  const total = await store.count();
  if (total === 0) return chunked;
  const kept = await unsyncedKeys(tx, [entityType]);
  if (kept.size === 0) {
    await store.clear();
    return true;
  }
  const writes = new Pipeline();
  for (const key of await store.getAllKeys()) {
    if (!kept.has(entityKey(entityType, key as EntityId))) writes.add(store.delete(key));
  }
  await writes.done();
  return chunked || total > kept.size;
}

/** The keys of the rows in the entity stores (during a listing: few, see applyPage). */
async function entityKeys(tx: Tx, entityTypes: readonly string[]): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const entityType of entityTypes) {
    for (const id of await tx.objectStore(entityStore(entityType)).getAllKeys()) keys.add(entityKey(entityType, id as EntityId));
  }
  return keys;
}

/** The keys of the rows that are not simply synced (changed here, in conflict, failed). */
async function unsyncedKeys(tx: Tx, entityTypes: readonly string[]): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const entityType of entityTypes) {
    const index = tx.objectStore(entityStore(entityType)).index('status');
    for (const status of ['pending', 'conflict', 'failed']) {
      for (const id of await index.getAllKeys(status)) keys.add(entityKey(entityType, id as EntityId));
    }
  }
  return keys;
}

/** The version a change brings (its own, or its data's). */
function versionOf(change: PullChange, data: EntityData): number | null {
  return typeof change.version === 'number' ? change.version : typeof data.version === 'number' ? data.version : null;
}

/** A row as the server sent it: synced, so no status (see EntityRecord) and no temporary ids. */
function syncedRecord(change: PullChange, data: EntityData, version: number | null): EntityRecord {
  const record: EntityRecord = { id: change.id, data, version };
  if (change.updatedAt !== undefined) record.updatedAt = change.updatedAt;
  return record;
}

async function applyChange(ctx: PullContext, tx: Tx, writes: Pipeline, change: PullChange, queued: QueuedOperation[] | undefined, mayExist: boolean): Promise<void> {
  const rows = tx.objectStore(entityStore(change.entityType));
  if (change.operation === 'delete') {
    await readRow(tx, change.entityType, change.id); // out of its chunk, if it is in one
    writes.add(rows.delete(change.id));
    return;
  }
  const data = change.data ?? {};
  const version = versionOf(change, data);
  const existing = mayExist || queued ? await readRow(tx, change.entityType, change.id) : undefined;
  if (existing && existing.version !== null && version !== null && existing.version > version) return; // the device has newer
  if (existing?.status === 'conflict') {
    existing.base = data;
    writes.add(rows.put(existing));
    return;
  }
  if (queued?.some((op) => op.operation === 'delete')) return; // deleted here; the queued delete decides
  if (!queued) {
    writes.add(rows.put(syncedRecord(change, data, version)));
    return;
  }
  const merged = patched(data, queued);
  const record: EntityRecord = { id: change.id, data: merged, base: data, version, status: 'pending', tempRefs: collectTempRefs(merged, ctx.tempIdPrefix) };
  if (change.updatedAt !== undefined) record.updatedAt = change.updatedAt;
  writes.add(rows.put(record));
}

function checkChange(change: PullChange): void {
  const ok =
    typeof change === 'object' &&
    change !== null &&
    typeof change.entityType === 'string' &&
    (change.operation === 'create' || change.operation === 'update' || change.operation === 'delete') &&
    (typeof change.id === 'string' || (typeof change.id === 'number' && Number.isFinite(change.id))) &&
    (change.operation === 'delete' || (typeof change.data === 'object' && change.data !== null));
  if (!ok) throw new ProtocolError(`pull: a malformed change ${JSON.stringify(change).slice(0, 200)}`);
}

/** A value IndexedDB takes as an id (checkChange reports the others). */
function isKey(id: unknown): id is EntityId {
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
}
