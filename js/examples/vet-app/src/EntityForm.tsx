// One form for creating and editing a row: only the fields that changed are written, so an
// edit made offline conflicts only where the server changed the same row.

import { useState, type FormEvent } from 'react';
import type { EntityData } from '@smartsync/client';
import { fromInput, toInput, type Field } from './fields.js';

export interface EntityFormProps {
  fields: readonly Field[];
  initial?: EntityData;
  submitLabel: string;
  onSubmit: (data: EntityData) => Promise<unknown>;
  onCancel?: () => void;
  testId: string;
}

export function EntityForm({ fields, initial = {}, submitLabel, onSubmit, onCancel, testId }: EntityFormProps) {
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries(fields.map((field) => [field.name, toInput(field, initial[field.name])])));
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const editing = Object.keys(initial).length > 0;
    const data: EntityData = {};
    for (const field of fields) {
      const text = values[field.name] ?? '';
      // an edit writes only what the user changed (a date shown and saved again is no change)
      if (editing && text === toInput(field, initial[field.name])) continue;
      data[field.name] = fromInput(field, text);
    }
    try {
      setError(null);
      await onSubmit(data);
      if (!Object.keys(initial).length) setValues(Object.fromEntries(fields.map((field) => [field.name, ''])));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }

  return (
    <form className="entity-form" data-testid={testId} onSubmit={(event) => void submit(event)}>
      {fields.map((field) => {
        const value = values[field.name] ?? '';
        const set = (text: string) => setValues((old) => ({ ...old, [field.name]: text }));
        const common = { name: field.name, value, required: field.required ?? false, onChange: (e: { target: { value: string } }) => set(e.target.value) };
        return (
          <label key={field.name}>
            <span>{field.label}</span>
            {field.kind === 'textarea' ? (
              <textarea rows={2} {...common} />
            ) : field.kind === 'select' ? (
              <select {...common}>
                <option value="">–</option>
                {field.options?.map((option) => (
                  <option key={String(option.id)} value={String(option.id)}>
                    {option.label}
                  </option>
                ))}
              </select>
            ) : (
              <input type={field.kind === 'datetime' ? 'datetime-local' : field.kind} {...common} />
            )}
          </label>
        );
      })}
      <div className="form-buttons">
        <button type="submit">{submitLabel}</button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
      {error && <p className="error">{error}</p>}
    </form>
  );
}
