// A list of one entity type from the local store (useEntities: it re-renders when a local
// write, a push answer, a pull or another tab changes it), a form to create, and an edit
// form per row. Rows show their id: a temporary one (temp_...) until the server gives the
// real one.

import { memo, useState } from 'react';
import type { EntityData, EntityRow } from '@smartsync/client';
import { useEntities, useSmartSync } from '@smartsync/react';
import { EntityForm } from './EntityForm.js';
import { show, type Field } from './fields.js';

export interface Column {
  label: string;
  value: (row: EntityRow) => unknown;
}

export interface EntityPageProps {
  entityType: string;
  title: string;
  singular: string;
  fields: readonly Field[];
  columns: readonly Column[];
  /** Written with every create (the practice). */
  defaults: EntityData;
}

export function EntityPage({ entityType, title, singular, fields, columns, defaults }: EntityPageProps) {
  const client = useSmartSync();
  const { data: rows, loading, error } = useEntities(entityType);
  const [editing, setEditing] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);

  return (
    <section className="page" data-testid={`page-${entityType}`}>
      <header className="page-header">
        <h2>{title}</h2>
        <button type="button" onClick={() => setCreating((open) => !open)}>
          {creating ? 'Close' : `New ${singular}`}
        </button>
      </header>
      {creating && (
        <EntityForm
          testId={`create-${entityType}`}
          fields={fields}
          submitLabel={`Create ${singular}`}
          onSubmit={(data) => client.store.create(entityType, withDefaults(data, defaults))}
        />
      )}
      {error && <p className="error">{error.message}</p>}
      {loading ? (
        <p>Loading…</p>
      ) : (
        <table className="rows">
          <thead>
            <tr>
              <th>id</th>
              {columns.map((column) => (
                <th key={column.label}>{column.label}</th>
              ))}
              <th>sync</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <Row
                key={String(row.id)}
                row={row}
                columns={columns}
                fields={fields}
                editing={editing === String(row.id)}
                onEdit={(open) => setEditing(open ? String(row.id) : null)}
                onSave={(data) => client.store.update(entityType, row.id, data)}
              />
            ))}
            {rows.length === 0 && (
              <tr>
                <td colSpan={columns.length + 3} className="empty">
                  No {title.toLowerCase()} on this device yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}

interface RowProps {
  row: EntityRow;
  columns: readonly Column[];
  fields: readonly Field[];
  editing: boolean;
  onEdit: (open: boolean) => void;
  onSave: (data: EntityData) => Promise<void>;
}

// a row re-renders only when its own data, the columns or its editing state change (the
// list keeps the objects of unchanged rows); its callbacks only close over the row's id
const Row = memo(RowView, (a, b) => a.row === b.row && a.columns === b.columns && a.fields === b.fields && a.editing === b.editing);

function RowView({ row, columns, fields, editing, onEdit, onSave }: RowProps) {
  return (
    <>
      <tr data-testid="row" data-id={String(row.id)} className={`status-${row.syncStatus}`}>
        <td className="id" data-testid="row-id">
          {String(row.id)}
        </td>
        {columns.map((column) => (
          <td key={column.label}>{show(column.value(row))}</td>
        ))}
        <td>
          <span className={`sync sync-${row.syncStatus}`}>{row.syncStatus}</span>
        </td>
        <td>
          <button type="button" onClick={() => onEdit(!editing)}>
            {editing ? 'Close' : 'Edit'}
          </button>
        </td>
      </tr>
      {editing && (
        <tr className="edit-row">
          <td colSpan={columns.length + 3}>
            <EntityForm
              testId="edit-form"
              fields={fields}
              initial={row.data}
              submitLabel="Save"
              onSubmit={async (data) => {
                if (Object.keys(data).length) await onSave(data);
                onEdit(false);
              }}
              onCancel={() => onEdit(false)}
            />
          </td>
        </tr>
      )}
    </>
  );
}

/** A create writes every column (so the device's row is the server's); an empty field with a default takes it. */
function withDefaults(data: EntityData, defaults: EntityData): EntityData {
  const out = { ...data };
  for (const [field, value] of Object.entries(defaults)) if (out[field] === null || out[field] === undefined) out[field] = value;
  return out;
}
