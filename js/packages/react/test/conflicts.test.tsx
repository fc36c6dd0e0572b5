// useConflicts(): a conflict appears with both versions; resolve(id, {strategy}) closes it.

import { act, cleanup, fireEvent, render, renderHook, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { useConflicts, useEntity, useSyncStatus } from '../src/index.js';
import { makeClient, providing, type TestClient } from './helpers.js';

let client: TestClient;
afterEach(() => {
  cleanup();
  client?.sync.close();
});

/** Client 5 edited on the server while the device changed its phone from an older version. */
async function conflictOnClient5(): Promise<void> {
  client.server.write('clients', 5, { name: 'Ann', phone: '111', email: 'ann@example.com' });
  await client.sync.getSyncEngine().sync();
  client.server.write('clients', 5, { email: 'ann@office.example' });
  await client.sync.store.update('clients', 5, { phone: '333' });
}

function Panel() {
  const { conflicts, resolve } = useConflicts();
  const { conflicts: count } = useSyncStatus();
  const row = useEntity<{ phone?: string; email?: string }>('clients', 5);
  return (
    <div>
      <p>{count} open</p>
      <p>device row: {row.data ? `${row.data.data.phone} ${row.data.data.email} (${row.data.syncStatus})` : '-'}</p>
      {conflicts.map((conflict) => (
        <section key={conflict.id}>
          <h2>
            {conflict.entityType} {String(conflict.entityId)}: {conflict.affectedFields.join(', ')}
          </h2>
          <p>device: {JSON.stringify(conflict.localData)}</p>
          <p>server: {JSON.stringify(conflict.serverData)}</p>
          <button onClick={() => void resolve(conflict.id, { strategy: 'merge' })}>Merge</button>
        </section>
      ))}
    </div>
  );
}

describe('useConflicts', () => {
  it('shows a conflict with the device’s and the server’s data; Merge resolves it and the device takes the merged row', async () => {
    client = makeClient();
    await conflictOnClient5();
    render(<Panel />, { wrapper: providing(client) });
    await waitFor(() => expect(screen.getByText('0 open')).toBeTruthy());

    await act(() => client.sync.getSyncEngine().sync());
    await waitFor(() => expect(screen.getByText(/^clients 5:/)).toBeTruthy());
    expect(screen.getByText('1 open')).toBeTruthy();
    expect(screen.getByText(/^device: .*"phone":"333"/)).toBeTruthy();
    expect(screen.getByText(/^server: .*"email":"ann@office.example"/)).toBeTruthy();

    fireEvent.click(screen.getByText('Merge'));
    await waitFor(() => expect(screen.queryByText(/^clients 5:/)).toBeNull());
    await waitFor(() => expect(screen.getByText('0 open')).toBeTruthy());
    await waitFor(() => expect(screen.getByText('device row: 333 ann@office.example (synced)')).toBeTruthy());
    expect(client.server.tables.get('clients')!.get(5)!.data).toMatchObject({ phone: '333', email: 'ann@office.example' });
  });

  it('resolve with manual sends resolvedData; a refused resolution rejects and the list is read again', async () => {
    client = makeClient();
    await conflictOnClient5();
    await client.sync.getSyncEngine().sync();
    const { result } = renderHook(() => useConflicts(), { wrapper: providing(client) });
    await waitFor(() => expect(result.current.conflicts).toHaveLength(1));
    const id = result.current.conflicts[0]!.id;

    await expect(result.current.resolve(id, { strategy: 'manual' })).rejects.toThrow(/resolvedData/);
    await act(() => result.current.resolve(id, { strategy: 'manual', resolvedData: { phone: '444' } }));
    await waitFor(() => expect(result.current.conflicts).toEqual([]));
    expect(client.server.tables.get('clients')!.get(5)!.data.phone).toBe('444');
  });
});
