// LiveQuery, the observer under the data hooks: one load at a time, events coalesced,
// snapshots stable until the answer changes, errors kept beside the last data.

import { describe, expect, it } from 'vitest';
import { LiveQuery } from '../src/index.js';

function source() {
  const listeners = new Set<() => void>();
  return {
    watch(invalidate: () => void) {
      listeners.add(invalidate);
      return () => listeners.delete(invalidate);
    },
    fire() {
      for (const listener of [...listeners]) listener();
    },
    get watchers() {
      return listeners.size;
    },
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('LiveQuery', () => {
  it('loads on the first subscriber, stops watching after the last', async () => {
    const events = source();
    let loads = 0;
    const query = new LiveQuery({ initial: 0, load: async () => ++loads, watch: events.watch });
    expect(query.getSnapshot()).toEqual({ data: 0, loading: true, error: null });
    const off1 = query.subscribe(() => undefined);
    const off2 = query.subscribe(() => undefined);
    await tick();
    expect(query.getSnapshot()).toEqual({ data: 1, loading: false, error: null });
    expect(events.watchers).toBe(1);
    off1();
    expect(events.watchers).toBe(1);
    off2();
    expect(events.watchers).toBe(0);
    expect(query.getServerSnapshot()).toEqual({ data: 0, loading: true, error: null });
  });

  it('coalesces events during a load into one more load', async () => {
    const events = source();
    let loads = 0;
    let release: (() => void) | null = null;
    const query = new LiveQuery({
      initial: 0,
      load: () =>
        new Promise<number>((resolve) => {
          loads += 1;
          const n = loads;
          release = () => resolve(n);
        }),
      watch: events.watch,
    });
    query.subscribe(() => undefined);
    for (let i = 0; i < 10; i++) events.fire();
    expect(loads).toBe(1);
    release!();
    await tick();
    expect(loads).toBe(2);
    release!();
    await tick();
    expect(loads).toBe(2);
    expect(query.getSnapshot().data).toBe(2);
  });

  it('keeps the snapshot when the answer is equal, and notifies only on a change', async () => {
    const events = source();
    let rows = [{ id: 1, data: { name: 'Ann' } }];
    const query = new LiveQuery({ initial: [] as typeof rows, load: async () => structuredClone(rows), watch: events.watch });
    let notified = 0;
    query.subscribe(() => (notified += 1));
    await tick();
    const first = query.getSnapshot();
    expect(notified).toBe(1);
    events.fire();
    await tick();
    expect(query.getSnapshot()).toBe(first);
    expect(notified).toBe(1);
    rows = [{ id: 1, data: { name: 'Anne' } }];
    events.fire();
    await tick();
    expect(query.getSnapshot()).not.toBe(first);
    expect(query.getSnapshot().data[0]!.data.name).toBe('Anne');
    expect(notified).toBe(2);
    expect(Object.isFrozen(query.getSnapshot())).toBe(true);
  });

  it('keeps the objects of the rows that did not change when the list changes', async () => {
    const events = source();
    let rows = [
      { id: 1, data: { name: 'Ann' } },
      { id: 2, data: { name: 'Bea' } },
    ];
    const query = new LiveQuery({ initial: [] as typeof rows, load: async () => structuredClone(rows), watch: events.watch });
    query.subscribe(() => undefined);
    await tick();
    const [ann, bea] = query.getSnapshot().data;
    rows = [{ id: 0, data: { name: 'Zed' } }, rows[0]!, { id: 2, data: { name: 'Beatrice' } }];
    events.fire();
    await tick();
    const next = query.getSnapshot().data;
    expect(next.map((row) => row.data.name)).toEqual(['Zed', 'Ann', 'Beatrice']);
    expect(next[1]).toBe(ann);
    expect(next[2]).not.toBe(bea);
  });

  it('keeps the last data beside a failed load’s error, and clears the error once a load works', async () => {
    const events = source();
    let fail = false;
    const query = new LiveQuery({
      initial: 'none',
      load: async () => {
        if (fail) throw new Error('storage went away');
        return 'rows';
      },
      watch: events.watch,
    });
    query.subscribe(() => undefined);
    await tick();
    fail = true;
    events.fire();
    await tick();
    expect(query.getSnapshot()).toMatchObject({ data: 'rows', loading: false, error: { message: 'storage went away' } });
    fail = false;
    events.fire();
    await tick();
    expect(query.getSnapshot()).toEqual({ data: 'rows', loading: false, error: null });
  });
});
