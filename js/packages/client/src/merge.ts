// The spec's two-way merge (its "Merge Algorithm"): fields equal on both sides, or present
// on one side only, combine; a field both sides have with different values makes the merge
// impossible (null). Used to show a merge's outcome on the device at once; the server's
// three-way merge against the base version decides what is stored.

import type { EntityData } from './types.js';

/** Merges local and server data, or returns null when a field differs on both sides. */
export function attemptMerge(local: EntityData, server: EntityData): EntityData | null {
  const merged: EntityData = {};
  const fields = new Set([...Object.keys(local), ...Object.keys(server)]);
  for (const field of fields) {
    const inLocal = Object.prototype.hasOwnProperty.call(local, field);
    const inServer = Object.prototype.hasOwnProperty.call(server, field);
    if (inLocal && inServer) {
      if (!sameValue(local[field], server[field])) return null;
      merged[field] = local[field];
    } else {
      merged[field] = inLocal ? local[field] : server[field];
    }
  }
  return merged;
}

/** Three-way: each field from the side that changed it against base; null when both changed it differently. */
export function mergeThreeWay(base: EntityData, local: EntityData, server: EntityData): EntityData | null {
  const merged: EntityData = { ...server };
  for (const field of Object.keys(local)) {
    const localChanged = !sameValue(local[field], base[field]);
    const serverChanged = !sameValue(server[field], base[field]);
    if (localChanged && serverChanged && !sameValue(local[field], server[field])) return null;
    if (localChanged) merged[field] = local[field];
  }
  return merged;
}

/** Deep equality of JSON values. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((value, i) => sameValue(value, b[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((key) => sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}
