// Listed rows kept in chunks (README "What it does", "First sync").
//
// A listing (the first sync, a relisting) brings every live row of an entity type. Browsers
// pay for IndexedDB per request (in Chromium about 0.25 ms of CPU per put on the test machine,
// whatever the record's size or shape), so a page's usual rows (synced, nothing queued for
// them) are written as ONE record of a chunk store (`chunks:<type>`), in the same transaction
// as the page's cursor, instead of one record each. The chunk's `ids` (a multiEntry index)
// find a row again.
//
// A row lives in exactly one place: its entity store or one chunk. Reads look in the entity
// store, then in the chunks. Any write to a row first takes it out of its chunk into the
// entity store (readRow), so everything else (queue, push results, conflicts, pulls after
// the listing) works on the entity store as before. A new listing clears the chunks with
// the synced rows.

import type { EntityId, EntityRecord } from './types.js';
import { chunkStore, entityStore, type Tx } from './database.js';

/** One chunk: rows of a listing page, as the entity store would hold them (synced: no status). */
export interface RowChunk {
  /** The rows' ids, in the order of rows (the `ids` multiEntry index). */
  ids: EntityId[];
  rows: EntityRecord[];
}

/** Writes the rows as one chunk (without waiting: a failed write aborts the transaction). */
export function putChunk(tx: Tx, entityType: string, rows: EntityRecord[]): Promise<unknown> {
  return tx.objectStore(chunkStore(entityType)).put({ ids: rows.map((row) => row.id), rows } satisfies RowChunk);
}

/** The row from its chunk, without moving it (reads). */
export async function findChunked(tx: Tx, entityType: string, id: EntityId): Promise<EntityRecord | undefined> {
  const store = tx.objectStore(chunkStore(entityType));
  const key = await store.index('ids').getKey(id);
  if (key === undefined) return undefined;
  const chunk = (await store.get(key)) as RowChunk | undefined;
  const at = chunk ? chunk.ids.indexOf(id) : -1;
  return at >= 0 ? chunk!.rows[at] : undefined;
}

/**
 * The row, from its entity store, or taken out of its chunk and put into the entity store
 * (so that the caller can change or delete it there). For every write to a row.
 */
export async function readRow(tx: Tx, entityType: string, id: EntityId): Promise<EntityRecord | undefined> {
  const rows = tx.objectStore(entityStore(entityType));
  const record = (await rows.get(id)) as EntityRecord | undefined;
  if (record) return record;
  const chunks = tx.objectStore(chunkStore(entityType));
  const key = await chunks.index('ids').getKey(id);
  if (key === undefined) return undefined;
  const chunk = (await chunks.get(key)) as RowChunk;
  const at = chunk.ids.indexOf(id);
  if (at < 0) return undefined;
  const [moved] = chunk.rows.splice(at, 1);
  chunk.ids.splice(at, 1);
  if (chunk.ids.length === 0) await chunks.delete(key);
  else await chunks.put(chunk, key);
  await rows.put(moved!);
  return moved;
}

/**
 * Takes the rows with these ids out of their chunks into the entity store, rewriting each
 * chunk once (a page of pulled changes to listed rows touches few chunks, each many times).
 */
export async function unchunk(tx: Tx, entityType: string, ids: readonly EntityId[]): Promise<void> {
  const chunks = tx.objectStore(chunkStore(entityType));
  if (ids.length === 0 || (await chunks.count()) === 0) return;
  const index = chunks.index('ids');
  const keys = await Promise.all(ids.map((id) => index.getKey(id)));
  const byChunk = new Map<IDBValidKey, Set<EntityId>>();
  ids.forEach((id, i) => {
    const key = keys[i];
    if (key === undefined) return;
    const set = byChunk.get(key);
    if (set) set.add(id);
    else byChunk.set(key, new Set([id]));
  });
  const rows = tx.objectStore(entityStore(entityType));
  const writes: Promise<unknown>[] = [];
  for (const [key, taken] of byChunk) {
    const chunk = (await chunks.get(key)) as RowChunk;
    const stay: RowChunk = { ids: [], rows: [] };
    chunk.rows.forEach((row, i) => {
      if (taken.has(chunk.ids[i]!)) writes.push(rows.put(row));
      else {
        stay.ids.push(chunk.ids[i]!);
        stay.rows.push(row);
      }
    });
    writes.push(stay.ids.length === 0 ? chunks.delete(key) : chunks.put(stay, key));
  }
  await Promise.all(writes);
}

/** Every row of the entity type's chunks (in no particular order). */
export async function chunkedRows(tx: Tx, entityType: string): Promise<EntityRecord[]> {
  const chunks = (await tx.objectStore(chunkStore(entityType)).getAll()) as RowChunk[];
  return chunks.flatMap((chunk) => chunk.rows);
}

/** How many rows the entity type's chunks hold. */
export function countChunked(tx: Tx, entityType: string): Promise<number> {
  return tx.objectStore(chunkStore(entityType)).index('ids').count();
}

/** Removes every chunk of the entity type; true when there were any. */
export async function clearChunks(tx: Tx, entityType: string): Promise<boolean> {
  const store = tx.objectStore(chunkStore(entityType));
  if ((await store.count()) === 0) return false;
  await store.clear();
  return true;
}

/** IndexedDB's order of keys, for the ids smartsync uses (numbers before strings). */
export function compareIds(a: EntityId, b: EntityId): number {
  if (typeof a === 'number') return typeof b === 'number' ? a - b : -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
