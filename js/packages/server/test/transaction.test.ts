/**
 * One request, one transaction, as PostgREST runs it (database.ts): BEGIN,
 * the context's SELECT, the api call and COMMIT leave together (one round
 * trip: one batch with one Sync, or four statements on a connection in
 * node-postgres's pipeline mode), yet run one after the other: the role and
 * the claims are the request's and end with its transaction, a read runs READ
 * ONLY, and a request that fails keeps nothing and leaves its connection
 * clean for the next one. These call runRequest with a function of a test
 * schema, through a pool of one connection (every request reuses it).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { inject } from "vitest";
import { serialize } from "pg-protocol";
import { apiCall, encodeBatch, runRequest, type RequestIdentity, type Statement } from "../src/database.js";
import { HttpError } from "../src/errors.js";

const SCHEMA = "txtest";
const identity: RequestIdentity = {
  role: "web_user",
  claims: { tenant_id: "happy-paws", practice_id: 1, sub: "42" },
  method: "POST",
  path: "/api/sync/push",
  headers: { "content-type": "application/json" },
};
const write = { readOnly: false, statementTimeoutMs: 10_000 };
const read = { readOnly: true, statementTimeoutMs: 10_000 };

let admin: pg.Client;
let pipelined: pg.Pool;
let plain: pg.Pool;

beforeAll(async () => {
  admin = new pg.Client(inject("db").admin);
  await admin.connect();
  await admin.query(`
    DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE;
    CREATE SCHEMA ${SCHEMA};
    GRANT USAGE ON SCHEMA ${SCHEMA} TO web_user;
    CREATE TABLE ${SCHEMA}.notes (note text);
    GRANT SELECT, INSERT ON ${SCHEMA}.notes TO web_user;
    -- what the request's transaction looks like from inside
    CREATE FUNCTION ${SCHEMA}.whoami() RETURNS jsonb LANGUAGE sql STABLE AS $$
      SELECT jsonb_build_object('role', current_user,
        'tenant', current_setting('request.jwt.claims', true)::jsonb ->> 'tenant_id',
        'claimsRole', current_setting('request.jwt.claims', true)::jsonb ->> 'role',
        'method', current_setting('request.method', true),
        'readOnly', current_setting('transaction_read_only'),
        'searchPath', current_setting('search_path'),
        'timeout', current_setting('statement_timeout'))
    $$;
    -- writes a row, then fails when asked to
    CREATE FUNCTION ${SCHEMA}.note(p_note text, p_fail boolean) RETURNS jsonb LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ${SCHEMA}.notes VALUES (p_note);
      IF p_fail THEN RAISE SQLSTATE 'SS402' USING MESSAGE = 'failed after writing'; END IF;
      RETURN to_jsonb(p_note);
    END $$;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${SCHEMA} TO web_user;
  `);
  const authenticator = inject("db").authenticator;
  pipelined = new pg.Pool({ ...authenticator, max: 1, pipeline: true });
  plain = new pg.Pool({ ...authenticator, max: 1 });
});

afterAll(async () => {
  await pipelined.end();
  await plain.end();
  await admin.query(`DROP SCHEMA ${SCHEMA} CASCADE`);
  await admin.end();
});

/** What the pool's one connection is outside any request. */
async function outside(pool: pg.Pool): Promise<Record<string, string>> {
  const c = await pool.connect();
  try {
    const r = await c.query(
      "SELECT current_user AS role, coalesce(current_setting('request.jwt.claims', true), '') AS claims," +
        " current_setting('transaction_read_only') AS ro, now() = statement_timestamp() AS autocommit",
    );
    return r.rows[0];
  } finally {
    c.release();
  }
}

async function notes(): Promise<string[]> {
  return (await admin.query(`SELECT note FROM ${SCHEMA}.notes ORDER BY note`)).rows.map((r) => r.note);
}

describe.each([
  ["a pipelined pool (one round trip)", () => pipelined],
  ["a pool without pipelining (one batch, one Sync)", () => plain],
])("%s", (_, pool) => {
  test("the call runs as the JWT's role with its claims, READ ONLY for reads; all of it ends with the request", async () => {
    const body = JSON.parse(await runRequest(pool(), SCHEMA, identity, read, apiCall(SCHEMA, "whoami", [])));
    expect(body).toEqual({
      role: "web_user",
      tenant: "happy-paws",
      claimsRole: "web_user",
      method: "POST",
      readOnly: "on",
      searchPath: `"${SCHEMA}", "public"`,
      timeout: "10s",
    });
    const rw = JSON.parse(await runRequest(pool(), SCHEMA, identity, write, apiCall(SCHEMA, "whoami", [])));
    expect(rw.readOnly).toBe("off");
    expect(await outside(pool())).toEqual({ role: "authenticator", claims: "", ro: "off", autocommit: true });
  });

  test("a request that fails after writing keeps nothing; its error is the call's; the connection is clean", async () => {
    await admin.query(`TRUNCATE ${SCHEMA}.notes`);
    const failing = apiCall(SCHEMA, "note", [
      ["p_note", "lost"],
      ["p_fail", "true"],
    ]);
    const err = await runRequest(pool(), SCHEMA, identity, write, failing).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).body.code).toBe("SS402");
    expect(await notes()).toEqual([]);
    expect(await outside(pool())).toEqual({ role: "authenticator", claims: "", ro: "off", autocommit: true });
    // the next request on the same connection commits
    const kept = apiCall(SCHEMA, "note", [
      ["p_note", "kept"],
      ["p_fail", "false"],
    ]);
    expect(await runRequest(pool(), SCHEMA, identity, write, kept)).toBe('"kept"');
    expect(await notes()).toEqual(["kept"]);
    // failing again, with its statements prepared on the connection: rolled back the same way
    const again = await runRequest(pool(), SCHEMA, identity, write, failing).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((again as HttpError).body.code).toBe("SS402");
    expect(await notes()).toEqual(["kept"]);
    expect(await outside(pool())).toEqual({ role: "authenticator", claims: "", ro: "off", autocommit: true });
    expect(await runRequest(pool(), SCHEMA, identity, write, kept)).toBe('"kept"');
    expect(await notes()).toEqual(["kept", "kept"]);
  });

  test("an argument given as UTF-8 bytes is the same text as given as a string", async () => {
    await admin.query(`TRUNCATE ${SCHEMA}.notes`);
    const text = "Zoë 🐕 {\"a\": 1}";
    const asBytes = apiCall(SCHEMA, "note", [
      ["p_note", new TextEncoder().encode(text)],
      ["p_fail", "false"],
    ]);
    expect(await runRequest(pool(), SCHEMA, identity, write, asBytes)).toBe(JSON.stringify(text));
    expect(await notes()).toEqual([text]);
  });

  test("a write in a read is refused (25006) and kept nowhere", async () => {
    await admin.query(`TRUNCATE ${SCHEMA}.notes`);
    const call = apiCall(SCHEMA, "note", [
      ["p_note", "read"],
      ["p_fail", "false"],
    ]);
    const err = await runRequest(pool(), SCHEMA, identity, read, call).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as HttpError).body.code).toBe("25006");
    expect(await notes()).toEqual([]);
  });

  test("a role the authenticator may not become fails at the context, before the call (42501, 403)", async () => {
    await admin.query(`TRUNCATE ${SCHEMA}.notes`);
    const call = apiCall(SCHEMA, "note", [
      ["p_note", "as postgres"],
      ["p_fail", "false"],
    ]);
    const err = await runRequest(pool(), SCHEMA, { ...identity, role: "postgres" }, write, call).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as HttpError).status).toBe(403);
    expect((err as HttpError).body.code).toBe("42501");
    expect(await notes()).toEqual([]);
    expect(await outside(pool())).toEqual({ role: "authenticator", claims: "", ro: "off", autocommit: true });
  });
});

describe("a request's batch in one buffer", () => {
  test("has the bytes node-postgres's serializer writes for the same Parse, Bind, Execute and Sync messages", () => {
    const statements: Statement[] = [
      { name: "s_0", text: "BEGIN", values: [] },
      { name: "s_1", text: "SELECT set_config('a', $1, true), set_config('b', $2, true)", values: ["Zoë 🐕", null] },
      { name: "s_2", text: "SELECT f($1::jsonb)::text", values: ['{"x": "é"}'] },
    ];
    const parsed = new Set(["s_0"]);
    const expected = Buffer.concat([
      serialize.bind({ statement: "s_0", values: [] }),
      serialize.execute({ portal: "" }),
      ...statements.slice(1).flatMap((s) => [
        serialize.parse({ name: s.name, text: s.text, types: [] }),
        serialize.bind({ statement: s.name, values: s.values }),
        serialize.execute({ portal: "" }),
      ]),
      serialize.sync(),
    ]);
    expect(encodeBatch(statements, (s) => !parsed.has(s.name))).toEqual(expected);
    // a value as its UTF-8 bytes: the same message as the string
    const asBytes = statements.map((s) => ({ ...s, values: s.values.map((v) => (typeof v === "string" ? new TextEncoder().encode(v) : v)) }));
    expect(encodeBatch(asBytes, (s) => !parsed.has(s.name))).toEqual(expected);
  });
});
