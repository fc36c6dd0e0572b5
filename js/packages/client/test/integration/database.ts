// A fresh database per test file on the PostgreSQL of the PG* environment (a pg_virtualenv
// cluster made by test/integration/run.sh, or the server `bash test/private.sh -- ...`
// starts): smartsync installed, the demo's veterinary schema registered
// (examples/vet_schema.sql), tenant happy-paws provisioned, setup_postgrest() run.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const TENANT = 'happy-paws';
export const SCHEMA = 'tenant_happy_paws';
export const AUTHENTICATOR_PASSWORD = 'integration-authenticator-password';
export const JWT_SECRET = 'an-integration-test-secret-of-at-least-32-characters';

/** examples/vet_schema.sql of the repository this file is in (also from a compiled copy). */
function findVetSchema(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'examples', 'vet_schema.sql');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('examples/vet_schema.sql not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}
const vetSchema = findVetSchema();

export interface TestDatabase {
  name: string;
  /** A superuser pool on the test database (setup, server-side writes, checks). */
  admin: pg.Pool;
  /** Connection settings of the test database for another login role. */
  connection(user: string, password: string): pg.PoolConfig;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `smartsync_client_it_${process.pid}_${Date.now().toString(36)}`;
  const root = new pg.Client({ database: process.env.PGDATABASE ?? 'postgres' });
  await root.connect();
  try {
    await root.query(`CREATE DATABASE "${name}"`);
  } finally {
    await root.end();
  }
  const admin = new pg.Pool({ database: name, max: 4 });
  await admin.query('SET client_min_messages = warning; CREATE EXTENSION smartsync');
  await admin.query(readFileSync(vetSchema, 'utf8'));
  await admin.query('SELECT smartsync.provision_tenant($1)', [TENANT]);
  await admin.query('SELECT smartsync.setup_postgrest($1)', [AUTHENTICATOR_PASSWORD]);
  return {
    name,
    admin,
    connection: (user, password) => ({ database: name, user, password, max: 8 }),
    async drop() {
      await admin.end();
      const c = new pg.Client({ database: process.env.PGDATABASE ?? 'postgres' });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** The rows of an entity table of the tenant, of practice 1, as jsonb without updated_at, by id. */
export async function serverRows(admin: pg.Pool, table: string): Promise<Map<string, Record<string, unknown>>> {
  const { rows } = await admin.query<{ id: string; row: Record<string, unknown> }>(
    `SELECT t.id::text AS id, to_jsonb(t) - 'updated_at' AS row FROM ${SCHEMA}.${table} t WHERE t.practice_id = 1 ORDER BY t.id`,
  );
  return new Map(rows.map((r) => [r.id, r.row]));
}

/** A device's row in the table's own types (so '2026-12-01T09:00:00Z' equals '2026-12-01T09:00:00+00:00'). */
export async function typed(admin: pg.Pool, table: string, data: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { rows } = await admin.query<{ row: Record<string, unknown> }>(
    `SELECT to_jsonb(jsonb_populate_record(NULL::${SCHEMA}.${table}, $1::jsonb)) - 'updated_at' AS row`,
    [JSON.stringify(data)],
  );
  return rows[0]!.row;
}
