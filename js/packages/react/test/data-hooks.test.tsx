// useEntity and useEntities: rows of the local store that re-render when the local data
// changes: a local write, a push answer that swaps a temporary id for the real one, a pull.

import { act, cleanup, render, renderHook, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '@smartsync/client';
import { useEntities, useEntity } from '../src/index.js';
import { makeClient, providing, type TestClient } from './helpers.js';

let client: TestClient;
afterEach(() => {
  cleanup();
  client?.sync.close();
});

function PetList({ clientId }: { clientId: string | number }) {
  const { data: pets, loading } = useEntities<{ name: string; client_id: string | number }>('pets', { client_id: clientId });
  if (loading) return <p>loading</p>;
  return (
    <ul>
      {pets.map((pet) => (
        <li key={pet.id}>
          {pet.data.name} #{String(pet.id)} ({pet.syncStatus})
        </li>
      ))}
    </ul>
  );
}

describe('useEntity', () => {
  it('shows a row created offline at once under its temporary id, then under the real id after the sync', async () => {
    client = makeClient();
    const tempId = await client.sync.store.create('clients', { name: 'Ann Smith' });
    const { result } = renderHook(() => useEntity<{ name: string }>('clients', tempId), { wrapper: providing(client) });
    expect(result.current.loading).toBe(true);
    await waitFor(() => expect(result.current.data).toMatchObject({ id: tempId, data: { name: 'Ann Smith' }, syncStatus: 'pending', version: null }));

    await act(() => client.sync.getSyncEngine().sync());
    await waitFor(() => expect(result.current.data).toMatchObject({ id: 1, syncStatus: 'synced', version: 1 }));
    expect(result.current.data?.data.name).toBe('Ann Smith');
  });

  it('re-renders on a local update and on a change pulled from the server', async () => {
    client = makeClient();
    client.server.write('clients', 7, { name: 'Bob' });
    await client.sync.getSyncEngine().sync();
    const { result } = renderHook(() => useEntity<{ name: string; phone?: string }>('clients', 7), { wrapper: providing(client) });
    await waitFor(() => expect(result.current.data?.data.name).toBe('Bob'));

    await act(() => client.sync.store.update('clients', 7, { phone: '555' }));
    await waitFor(() => expect(result.current.data).toMatchObject({ syncStatus: 'pending', data: { phone: '555' } }));
    await act(() => client.sync.getSyncEngine().sync());
    await waitFor(() => expect(result.current.data).toMatchObject({ syncStatus: 'synced', version: 2 }));

    client.server.write('clients', 7, { name: 'Robert' });
    await act(() => client.sync.getSyncEngine().sync());
    await waitFor(() => expect(result.current.data?.data.name).toBe('Robert'));
  });

  it('null for a missing row and for no id; a reload reading the same row keeps the same snapshot', async () => {
    client = makeClient();
    client.server.write('clients', 1, { name: 'Ann' });
    await client.sync.getSyncEngine().sync();
    const { result: missing } = renderHook(() => useEntity('clients', 99), { wrapper: providing(client) });
    await waitFor(() => expect(missing.current.loading).toBe(false));
    expect(missing.current.data).toBeNull();
    const { result: none } = renderHook(() => useEntity('clients', null), { wrapper: providing(client) });
    expect(none.current).toEqual({ data: null, loading: false, error: null });

    const { result } = renderHook(() => useEntity('clients', 1), { wrapper: providing(client) });
    await waitFor(() => expect(result.current.data).not.toBeNull());
    const before = result.current;
    await act(() => client.sync.store.create('clients', { name: 'Other' })); // a change of the type, not of this row
    await act(() => new Promise((resolve) => setTimeout(resolve, 20)));
    expect(result.current).toBe(before);
  });

  it('throws the client’s ValidationError for an entity type the client does not sync', () => {
    client = makeClient();
    expect(() => renderHook(() => useEntity('invoices', 1), { wrapper: providing(client) })).toThrow(ValidationError);
  });
});

describe('useEntities', () => {
  it('lists by an indexed field and follows creates, remaps and deletes', async () => {
    client = makeClient();
    const ann = await client.sync.store.create('clients', { name: 'Ann' });
    await client.sync.store.create('pets', { name: 'Rex', client_id: ann });
    render(<PetList clientId={ann} />, { wrapper: providing(client) });
    await waitFor(() => expect(screen.getByText(/Rex #temp_/)).toBeTruthy());

    const tom = await act(() => client.sync.store.create('pets', { name: 'Tom', client_id: ann }));
    await waitFor(() => expect(screen.getByText(/Tom #temp_.*\(pending\)/)).toBeTruthy());
    await act(() => client.sync.store.delete('pets', tom));
    await waitFor(() => expect(screen.queryByText(/Tom/)).toBeNull());

    // after the sync the pet refers to Ann's real id: the list filtered by the temporary id empties
    await act(() => client.sync.getSyncEngine().sync());
    await waitFor(() => expect(screen.queryByText(/Rex/)).toBeNull());
    cleanup();
    render(<PetList clientId={1} />, { wrapper: providing(client) });
    await waitFor(() => expect(screen.getByText('Rex #2 (synced)')).toBeTruthy());
  });

  it('with a predicate and a limit', async () => {
    client = makeClient();
    for (const name of ['Ann', 'Bea', 'Cid', 'Dot']) client.server.write('clients', name.charCodeAt(0), { name });
    await client.sync.getSyncEngine().sync();
    const notB = (row: { data: { name?: unknown } }) => row.data.name !== 'Bea';
    const { result } = renderHook(() => useEntities('clients', notB, { limit: 2 }), { wrapper: providing(client) });
    await waitFor(() => expect(result.current.data.map((row) => row.data.name)).toEqual(['Ann', 'Cid']));
  });

  it('an equal filter object written anew on each render is the same query (no reload loop)', async () => {
    client = makeClient();
    client.server.write('pets', 1, { name: 'Rex', client_id: 3 });
    await client.sync.getSyncEngine().sync();
    let renders = 0;
    const { result, rerender } = renderHook(
      () => {
        renders += 1;
        return useEntities('pets', { client_id: 3 });
      },
      { wrapper: providing(client) },
    );
    await waitFor(() => expect(result.current.data).toHaveLength(1));
    const settled = renders;
    const snapshot = result.current;
    rerender();
    expect(result.current).toBe(snapshot);
    await act(() => new Promise((resolve) => setTimeout(resolve, 20)));
    expect(renders).toBe(settled + 1);
  });
});
