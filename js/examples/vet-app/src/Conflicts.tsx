// The conflicts panel: for each conflict the device's version and the server's side by side,
// the fields that differ highlighted (those the server named as affected marked), a button
// per strategy, and a form for a manual merge.

import { useState, type FormEvent } from 'react';
import type { ConflictRecord, EntityData, ResolutionStrategy } from '@smartsync/client';
import { useConflicts, useEntity, type ConflictsValue } from '@smartsync/react';
import { show } from './fields.js';

const STRATEGIES: readonly { strategy: Exclude<ResolutionStrategy, 'manual'>; label: string }[] = [
  { strategy: 'server-wins', label: 'Keep server' },
  { strategy: 'client-wins', label: 'Keep device' },
  { strategy: 'merge', label: 'Merge' },
  { strategy: 'last-write-wins', label: 'Last write wins' },
];

/** Bookkeeping columns: shown, never edited in a manual merge. */
const SYSTEM = new Set(['id', 'version', 'updated_at', 'practice_id']);

export function ConflictsPanel() {
  const { conflicts, loading, error, resolve } = useConflicts();
  return (
    <section className="page" data-testid="conflicts-panel">
      <header className="page-header">
        <h2>Conflicts</h2>
      </header>
      {error && <p className="error">{error.message}</p>}
      {loading ? <p>Loading…</p> : conflicts.length === 0 ? <p className="empty">No conflicts. Everything this device changed is on the server.</p> : null}
      {conflicts.map((conflict) => (
        <ConflictCard key={conflict.id} conflict={conflict} resolve={resolve} />
      ))}
    </section>
  );
}

function ConflictCard({ conflict, resolve }: { conflict: ConflictRecord; resolve: ConflictsValue['resolve'] }) {
  const local = useEntity(conflict.entityType, conflict.entityId);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // the device's version: its row as it stands here (server data with the device's change on top)
  const server: EntityData = conflict.serverData ?? {};
  const device: EntityData = local.data ? local.data.data : { ...server, ...(conflict.localData ?? {}) };
  const fields = [...new Set([...Object.keys(server), ...Object.keys(device)])].filter((field) => field !== 'updated_at');
  const differs = (field: string) => JSON.stringify(device[field] ?? null) !== JSON.stringify(server[field] ?? null);
  const editable = fields.filter((field) => !SYSTEM.has(field));

  async function run(strategy: ResolutionStrategy, resolvedData?: EntityData) {
    setBusy(true);
    setError(null);
    try {
      await resolve(conflict.id, resolvedData === undefined ? { strategy } : { strategy, resolvedData });
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  function manual(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const data: EntityData = {};
    for (const field of editable) {
      const text = String(form.get(field) ?? '');
      const like = server[field] ?? device[field];
      data[field] = text === '' ? null : typeof like === 'number' ? Number(text) : text;
    }
    void run('manual', data);
  }

  return (
    <article className="conflict" data-testid="conflict" data-conflict-id={conflict.id}>
      <header>
        <h3>
          {conflict.entityType} {String(conflict.entityId)}
        </h3>
        <span className="tag">{conflict.conflictType} conflict</span>
        {conflict.severity && <span className={`tag severity-${conflict.severity}`}>{conflict.severity}</span>}
        {conflict.status === 'resolving' && <span className="tag">resolution waits for the network</span>}
        <span className="affected">in conflict: {conflict.affectedFields.join(', ') || '–'}</span>
      </header>
      <table className="versions" data-testid="versions">
        <thead>
          <tr>
            <th>field</th>
            <th>this device</th>
            <th>server{conflict.serverVersion !== undefined ? ` (version ${conflict.serverVersion})` : ''}</th>
          </tr>
        </thead>
        <tbody>
          {fields.map((field) => (
            <tr key={field} data-field={field} className={`${differs(field) ? 'changed' : ''} ${conflict.affectedFields.includes(field) ? 'affected' : ''}`}>
              <th>{field}</th>
              <td data-side="device">{show(device[field])}</td>
              <td data-side="server">{show(server[field])}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="strategies">
        {STRATEGIES.map(({ strategy, label }) => (
          <button key={strategy} type="button" disabled={busy} data-strategy={strategy} onClick={() => void run(strategy)}>
            {label}
          </button>
        ))}
      </div>
      <details className="manual">
        <summary>Merge by hand</summary>
        <form data-testid="manual-form" onSubmit={manual}>
          {editable.map((field) => (
            <label key={field} className={differs(field) ? 'changed' : ''}>
              <span>{field}</span>
              <input name={field} defaultValue={device[field] === null || device[field] === undefined ? '' : String(device[field])} />
            </label>
          ))}
          <button type="submit" disabled={busy} data-strategy="manual">
            Save this version
          </button>
        </form>
      </details>
      {error && <p className="error">{error}</p>}
    </article>
  );
}
