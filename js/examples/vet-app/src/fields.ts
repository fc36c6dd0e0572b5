// Form fields and value conversions shared by the pages and the conflicts panel.

import type { EntityId, EntityRow } from '@smartsync/client';

export type FieldKind = 'text' | 'textarea' | 'number' | 'date' | 'datetime' | 'select';

export interface Field {
  name: string;
  label: string;
  kind: FieldKind;
  required?: boolean;
  /** select: the rows to choose from and how to name them */
  options?: readonly { id: EntityId; label: string }[];
}

/** A stored value as an input's text. */
export function toInput(field: Field, value: unknown): string {
  if (value === null || value === undefined) return '';
  if (field.kind === 'datetime') {
    const date = new Date(String(value));
    if (Number.isNaN(date.getTime())) return '';
    const pad = (n: number) => String(n).padStart(2, '0');
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }
  if (field.kind === 'date') return String(value).slice(0, 10);
  return String(value);
}

/** An input's text as the value to store (null for empty). */
export function fromInput(field: Field, text: string): unknown {
  if (text === '') return null;
  switch (field.kind) {
    case 'number':
      return Number(text);
    case 'datetime':
      return new Date(text).toISOString();
    case 'select':
      return field.options?.find((option) => String(option.id) === text)?.id ?? text;
    default:
      return text;
  }
}

// one formatter for every cell (toLocaleString builds a new one per call: slow on long lists)
const dateFormat = new Intl.DateTimeFormat([], { dateStyle: 'medium', timeStyle: 'short' });

/** How a value shows in a table. */
export function show(value: unknown): string {
  if (value === null || value === undefined || value === '') return '–';
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value)) {
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) return dateFormat.format(date);
  }
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** A row's name for lists and selects. */
export function nameOf(rows: readonly EntityRow[], id: unknown): string {
  const row = rows.find((r) => r.id === id || String(r.id) === String(id));
  return row ? String(row.data.name ?? row.data.title ?? row.id) : id === null || id === undefined ? '–' : `#${String(id)}`;
}
