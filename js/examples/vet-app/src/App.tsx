// The app: a status bar (the spec's MyComponent), then appointments, pets, clients and the
// conflicts panel, chosen by the address's hash so a reload stays where it was.

import { useEffect, useState, type FormEvent } from 'react';
import type { EntityRow } from '@smartsync/client';
import { useEntities, useSyncStatus } from '@smartsync/react';
import { ConflictsPanel } from './Conflicts.js';
import { EntityPage } from './EntityPage.js';
import { nameOf, type Field } from './fields.js';
import { saveSession, signOut, type Session } from './session.js';
import { StatusBar } from './StatusBar.js';

const PAGES = ['appointments', 'pets', 'clients', 'conflicts'] as const;
type Page = (typeof PAGES)[number];

function currentPage(): Page {
  const name = window.location.hash.replace(/^#\/?/, '');
  return (PAGES as readonly string[]).includes(name) ? (name as Page) : 'appointments';
}

export function App({ session }: { session: Session }) {
  const [page, setPage] = useState<Page>(currentPage);
  useEffect(() => {
    const changed = () => setPage(currentPage());
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return (
    <div className="app">
      <header className="top">
        <h1>
          Happy Paws <small>front desk</small>
        </h1>
        <span className="who" data-testid="device">
          {session.tenantId} · practice {String(session.practiceId)} · {session.userId} on {session.deviceId}
        </span>
        <button
          type="button"
          className="link"
          onClick={() => {
            signOut();
            window.location.reload();
          }}
        >
          Sign out
        </button>
      </header>
      <StatusBar />
      <Nav page={page} />
      <main>
        {page === 'appointments' && <Appointments practiceId={session.practiceId} />}
        {page === 'pets' && <Pets practiceId={session.practiceId} />}
        {page === 'clients' && <Clients practiceId={session.practiceId} />}
        {page === 'conflicts' && <ConflictsPanel />}
      </main>
    </div>
  );
}

/** The page links; the conflicts link counts them (its own component: the pages do not re-render with the counts). */
function Nav({ page }: { page: Page }) {
  const { conflicts } = useSyncStatus();
  return (
    <nav>
      {PAGES.map((name) => (
        <a key={name} href={`#/${name}`} className={name === page ? 'active' : ''}>
          {name[0]!.toUpperCase() + name.slice(1)}
          {name === 'conflicts' && conflicts > 0 ? ` (${conflicts})` : ''}
        </a>
      ))}
    </nav>
  );
}

const options = (rows: readonly EntityRow[], label: (row: EntityRow) => string) => rows.map((row) => ({ id: row.id, label: label(row) }));

function Appointments({ practiceId }: { practiceId: number | string }) {
  const pets = useEntities('pets').data;
  const practitioners = useEntities('practitioners').data;
  const clients = useEntities('clients').data;
  const fields: Field[] = [
    { name: 'title', label: 'Title', kind: 'text', required: true },
    { name: 'pet_id', label: 'Pet', kind: 'select', required: true, options: options(pets, (pet) => `${String(pet.data.name)} (${nameOf(clients, pet.data.client_id)})`) },
    { name: 'practitioner_id', label: 'Practitioner', kind: 'select', options: options(practitioners, (p) => String(p.data.name)) },
    { name: 'date', label: 'Date', kind: 'datetime', required: true },
    { name: 'duration', label: 'Minutes', kind: 'number', required: true },
    { name: 'status', label: 'Status', kind: 'text' },
    { name: 'notes', label: 'Notes', kind: 'textarea' },
  ];
  return (
    <EntityPage
      entityType="appointments"
      title="Appointments"
      singular="appointment"
      fields={fields}
      defaults={{ practice_id: practiceId, status: 'scheduled' }}
      columns={[
        { label: 'date', value: (row) => row.data.date },
        { label: 'title', value: (row) => row.data.title },
        { label: 'pet', value: (row) => nameOf(pets, row.data.pet_id) },
        { label: 'practitioner', value: (row) => nameOf(practitioners, row.data.practitioner_id) },
        { label: 'minutes', value: (row) => row.data.duration },
        { label: 'status', value: (row) => row.data.status },
        { label: 'notes', value: (row) => row.data.notes },
      ]}
    />
  );
}

function Pets({ practiceId }: { practiceId: number | string }) {
  const clients = useEntities('clients').data;
  const fields: Field[] = [
    { name: 'name', label: 'Name', kind: 'text', required: true },
    { name: 'client_id', label: 'Owner', kind: 'select', required: true, options: options(clients, (c) => String(c.data.name)) },
    { name: 'species', label: 'Species', kind: 'text' },
    { name: 'breed', label: 'Breed', kind: 'text' },
    { name: 'birth_date', label: 'Born', kind: 'date' },
    { name: 'allergies', label: 'Allergies', kind: 'text' },
  ];
  return (
    <EntityPage
      entityType="pets"
      title="Pets"
      singular="pet"
      fields={fields}
      defaults={{ practice_id: practiceId }}
      columns={[
        { label: 'name', value: (row) => row.data.name },
        { label: 'owner', value: (row) => nameOf(clients, row.data.client_id) },
        { label: 'species', value: (row) => row.data.species },
        { label: 'breed', value: (row) => row.data.breed },
        { label: 'born', value: (row) => row.data.birth_date },
        { label: 'allergies', value: (row) => row.data.allergies },
      ]}
    />
  );
}

function Clients({ practiceId }: { practiceId: number | string }) {
  const fields: Field[] = [
    { name: 'name', label: 'Name', kind: 'text', required: true },
    { name: 'email', label: 'Email', kind: 'text' },
    { name: 'phone', label: 'Phone', kind: 'text' },
    { name: 'notes', label: 'Notes', kind: 'textarea' },
  ];
  return (
    <EntityPage
      entityType="clients"
      title="Clients"
      singular="client"
      fields={fields}
      defaults={{ practice_id: practiceId }}
      columns={[
        { label: 'name', value: (row) => row.data.name },
        { label: 'email', value: (row) => row.data.email },
        { label: 'phone', value: (row) => row.data.phone },
        { label: 'notes', value: (row) => row.data.notes },
      ]}
    />
  );
}

/** Without a session: paste a token (examples/web.sh prints two). */
export function SignIn({ onSignIn }: { onSignIn: (session: Session) => void }) {
  const [error, setError] = useState<string | null>(null);
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const token = String(new FormData(event.currentTarget).get('token') ?? '').trim();
    try {
      onSignIn(saveSession(token));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }
  return (
    <form className="sign-in" onSubmit={submit}>
      <h1>Happy Paws front desk</h1>
      <p>Sign in with a device token (bash examples/web.sh prints two).</p>
      <textarea name="token" rows={4} placeholder="eyJhbGciOi..." required />
      <button type="submit">Sign in</button>
      {error && <p className="error">{error}</p>}
    </form>
  );
}
