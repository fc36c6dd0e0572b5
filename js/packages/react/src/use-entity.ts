// useEntity(type, id) and useEntities(type, filter): rows of the local store, re-read after
// every change of that entity type (local writes, push answers that swap temporary ids for
// real ones, pulled pages, resolutions, other tabs' syncs). A temporary id keeps finding its
// row after the server gave it a real id.
//
// An unknown entity type throws the client's ValidationError during render: a programming
// error, for an error boundary.

import { useMemo, useSyncExternalStore } from 'react';
import { ValidationError, type EntityData, type EntityId, type EntityRow, type ListFilter, type SmartSync } from '@smartsync/client';
import { LiveQuery, type QuerySnapshot } from './live-query.js';
import { useSmartSync } from './provider.js';

export type EntityValue<T extends EntityData = EntityData> = QuerySnapshot<EntityRow<T> | null>;
export type EntitiesValue<T extends EntityData = EntityData> = QuerySnapshot<readonly EntityRow<T>[]>;

export interface UseEntitiesOptions {
  /** At most this many rows. */
  limit?: number;
}

const NO_ROWS: readonly EntityRow[] = Object.freeze([]);
const NOTHING = new LiveQuery<null>({ initial: null, load: async () => null, watch: () => () => undefined });

/** One row by id (null while loading and when there is none). `id` null or undefined: no row. */
export function useEntity<T extends EntityData = EntityData>(entityType: string, id: EntityId | null | undefined): EntityValue<T> {
  const client = useSmartSync();
  checkType(client, entityType);
  const query = useMemo(
    () =>
      id === null || id === undefined
        ? (NOTHING as unknown as LiveQuery<EntityRow<T> | null>)
        : new LiveQuery<EntityRow<T> | null>({
            initial: null,
            load: () => client.store.get<T>(entityType, id),
            watch: (invalidate) => client.store.subscribe(entityType, () => invalidate()),
          }),
    [client, entityType, id],
  );
  const snapshot = useSyncExternalStore(query.subscribe, query.getSnapshot, query.getServerSnapshot);
  return id === null || id === undefined ? NO_ENTITY : snapshot;
}

const NO_ENTITY: QuerySnapshot<null> = Object.freeze({ data: null, loading: false, error: null });

/**
 * The rows of an entity type matching filter: field equality (`{pet_id: 7}`, which uses the
 * field's index when the client was configured with one), or a predicate (keep it stable
 * with useCallback: a new function is a new query).
 */
export function useEntities<T extends EntityData = EntityData>(entityType: string, filter?: ListFilter<T>, options: UseEntitiesOptions = {}): EntitiesValue<T> {
  const client = useSmartSync();
  checkType(client, entityType);
  const filterKey = typeof filter === 'function' ? filter : filter === undefined ? undefined : JSON.stringify(filter);
  const limit = options.limit;
  const query = useMemo(
    () =>
      new LiveQuery<readonly EntityRow<T>[]>({
        initial: NO_ROWS as readonly EntityRow<T>[],
        load: () => client.store.list<T>(entityType, filter, limit === undefined ? {} : { limit }),
        watch: (invalidate) => client.store.subscribe(entityType, () => invalidate()),
      }),
    // filter is represented by filterKey: an equal filter object written anew each render is the same query
    [client, entityType, filterKey, limit],
  );
  return useSyncExternalStore(query.subscribe, query.getSnapshot, query.getServerSnapshot);
}

function checkType(client: SmartSync, entityType: string): void {
  if (!client.store.entityTypes.includes(entityType)) {
    throw new ValidationError('not-configured-entity-type', `unknown entity type ${JSON.stringify(entityType)}: configured are ${client.store.entityTypes.join(', ')}`, 'entityType');
  }
}
