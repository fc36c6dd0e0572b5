// The core observer under the data hooks, free of React: an async read of the local store
// (load) kept current by the events that can change its answer (watch). Its snapshot is
// immutable and stays the same object until the answer changes, which is what React's
// useSyncExternalStore needs (a new object on every read would re-render forever).
//
// - The first subscriber starts watching and loads; the last one leaving stops watching.
// - Events during a load are coalesced: one more load after it, never two at once, so a
//   pull of a hundred pages costs at most a load per page and never a pile of them.
// - A load that answers what is already shown (deep-equal) changes nothing.
// - A failed load keeps the last data and carries the error.
// - A new list keeps the previous objects of the rows that did not change (matched by id),
//   so a memoized row component re-renders only for its own row.

import { deepEqual } from './equal.js';

/** What a data hook returns. */
export interface QuerySnapshot<T> {
  /** The last answer (the initial value until the first load ends). */
  readonly data: T;
  /** True until the first load has ended. */
  readonly loading: boolean;
  /** The last load's failure, or null. */
  readonly error: Error | null;
}

export interface LiveQueryOptions<T> {
  /** Reads the data (from IndexedDB: no network). */
  load: () => Promise<T>;
  /** Calls invalidate whenever the data may have changed; returns the function that stops it. */
  watch: (invalidate: () => void) => () => void;
  /** The data before the first load ends. */
  initial: T;
  /** Whether two answers are the same (default: deep equality). */
  equal?: (a: T, b: T) => boolean;
}

export class LiveQuery<T> {
  private snapshot: QuerySnapshot<T>;
  private readonly initialSnapshot: QuerySnapshot<T>;
  private readonly listeners = new Set<() => void>();
  private unwatch: (() => void) | null = null;
  private running = false;
  private dirty = false;

  constructor(private readonly options: LiveQueryOptions<T>) {
    this.initialSnapshot = Object.freeze({ data: options.initial, loading: true, error: null });
    this.snapshot = this.initialSnapshot;
  }

  /** The current snapshot (the same object until something in it changes). */
  readonly getSnapshot = (): QuerySnapshot<T> => this.snapshot;

  /** The snapshot for server rendering and hydration: loading, with the initial data. */
  readonly getServerSnapshot = (): QuerySnapshot<T> => this.initialSnapshot;

  /** Adds a listener; the first one starts watching and loading. Returns the unsubscribe function. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    if (this.listeners.size === 1) {
      this.unwatch = this.options.watch(() => this.refresh());
      this.refresh();
    }
    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0) return;
      this.unwatch?.();
      this.unwatch = null;
    };
  };

  /** Loads again (after the load under way, if any). */
  refresh(): void {
    if (this.running) {
      this.dirty = true;
      return;
    }
    this.running = true;
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      do {
        this.dirty = false;
        try {
          const data = await this.options.load();
          this.publish(data, null);
        } catch (error) {
          this.publish(this.snapshot.data, error instanceof Error ? error : new Error(String(error)));
        }
      } while (this.dirty && this.listeners.size > 0);
    } finally {
      this.running = false;
    }
  }

  private publish(data: T, error: Error | null): void {
    const previous = this.snapshot;
    const equal = this.options.equal ?? deepEqual;
    const sameData = previous.data === data || equal(previous.data, data);
    if (!previous.loading && sameData && previous.error === error) return;
    if (!previous.loading && sameData && previous.error !== null && error !== null && previous.error.message === error.message) return;
    this.snapshot = Object.freeze({ data: sameData ? previous.data : (share(previous.data, data) as T), loading: false, error });
    for (const listener of [...this.listeners]) listener();
  }
}

/** The rows of next that equal a row of previous (same id) are previous's objects. */
function share(previous: unknown, next: unknown): unknown {
  if (!Array.isArray(previous) || !Array.isArray(next) || previous.length === 0) return next;
  const byId = new Map<unknown, unknown>();
  for (const item of previous) if (typeof item === 'object' && item !== null && 'id' in item) byId.set((item as { id: unknown }).id, item);
  if (byId.size === 0) return next;
  return next.map((item) => {
    if (typeof item !== 'object' || item === null || !('id' in item)) return item;
    const old = byId.get((item as { id: unknown }).id);
    return old !== undefined && deepEqual(old, item) ? old : item;
  });
}
