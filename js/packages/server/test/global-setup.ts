/**
 * Prepares the test database once per run: a fresh database with smartsync,
 * the demo's veterinary entity types, two tenants, and setup_postgrest() (so
 * the server logs in as authenticator, never as a superuser). PG* say where
 * (test/run.mjs makes a throwaway cluster when they do not).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { TestProject } from "vitest/node";

const DB = "smartsync_server_test";
export const AUTHENTICATOR_PASSWORD = "server-test-authenticator";

declare module "vitest" {
  export interface ProvidedContext {
    db: {
      /** the database as the superuser that PG* names */
      admin: pg.ClientConfig;
      /** the database as authenticator (what the server logs in as) */
      authenticator: pg.ClientConfig;
    };
  }
}

function base(): pg.ClientConfig {
  const env = process.env;
  if (env.PGHOST === undefined && env.PGPORT === undefined) {
    throw new Error("no PostgreSQL server: set PG* or run the tests with npm test (test/run.mjs)");
  }
  return {
    ...(env.PGHOST !== undefined ? { host: env.PGHOST } : {}),
    ...(env.PGPORT !== undefined ? { port: Number(env.PGPORT) } : {}),
    ...(env.PGUSER !== undefined ? { user: env.PGUSER } : {}),
    ...(env.PGPASSWORD !== undefined ? { password: env.PGPASSWORD } : {}),
  };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = base();
  const admin = new pg.Client({ ...server, database: process.env.PGDATABASE ?? "postgres" });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();

  const db = new pg.Client({ ...server, database: DB });
  await db.connect();
  const vet = readFileSync(fileURLToPath(new URL("../../../../examples/vet_schema.sql", import.meta.url)), "utf8");
  await db.query("SET client_min_messages = warning");
  await db.query("CREATE EXTENSION smartsync");
  await db.query(vet);
  await db.query("SELECT smartsync.provision_tenant('happy-paws'), smartsync.provision_tenant('tenant_1'), smartsync.provision_tenant('other-clinic')");
  await db.query("SELECT smartsync.setup_postgrest($1)", [AUTHENTICATOR_PASSWORD]);
  await db.end();

  project.provide("db", {
    admin: { ...server, database: DB },
    authenticator: { ...server, database: DB, user: "authenticator", password: AUTHENTICATOR_PASSWORD },
  });
  return async () => {
    const c = new pg.Client({ ...server, database: process.env.PGDATABASE ?? "postgres" });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await c.end();
  };
}
