/**
 * One request, run as PostgREST v12 runs one (NOTES.md section 1): a
 * transaction (READ ONLY for reads), one SELECT of set_config(..., true) for
 * search_path, the JWT's role and claims and the request's method, path and
 * headers, then the call of the api function, then COMMIT (ROLLBACK on error).
 * The pool logs in as authenticator (never a superuser), so the database's
 * privileges and row-level security decide what a request may do.
 */
import type pg from "pg";
import { HttpError } from "./errors.js";
import type { Claims } from "./jwt.js";
import { httpErrorFromPg, isPgError, unavailableError } from "./pg-errors.js";

/** Who is asking and what, as PostgREST passes it to the database. */
export interface RequestIdentity {
  /** the role to switch to: the JWT's role claim (PostgREST's default role claim key) */
  role: string;
  /** the verified claims; "role" is always present in what the database sees */
  claims: Claims;
  method: string;
  /** the HTTP path of the request */
  path: string;
  /** request headers, lower-cased names; Authorization and Cookie are left out */
  headers: Record<string, string>;
}

export interface TransactionOptions {
  readOnly: boolean;
  /** statement_timeout for the request's statements, in milliseconds (0: none) */
  statementTimeoutMs: number;
}

/**
 * A value for one parameter of an api function: its text, cast by PostgreSQL
 * to the parameter's type; as a string, or as the UTF-8 bytes of the text (a
 * request body as it came, checked to be UTF-8: sent on without being decoded).
 */
export type ApiArgument = string | Uint8Array | null;

/** Quotes an identifier for SQL (the api schema and function names are fixed, but quoted all the same). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * The call PostgREST generates: named arguments, each a parameter PostgreSQL
 * casts to the named parameter's type (`"p_limit" := $1` with '10'), the
 * result as text so it passes through unchanged (no JSON re-encoding, no
 * loss of big numbers).
 */
export function apiCall(
  schema: string,
  fn: string,
  args: ReadonlyArray<readonly [string, ApiArgument]>,
): { text: string; values: ApiArgument[] } {
  const named = args.map(([name], i) => `${quoteIdent(name)} := $${i + 1}`);
  return {
    text: `SELECT ${quoteIdent(schema)}.${quoteIdent(fn)}(${named.join(", ")})::text AS body`,
    values: args.map(([, v]) => v),
  };
}

/** The call for a POST whose raw body (text, or its UTF-8 bytes) is the one unnamed jsonb parameter. */
export function apiCallWithBody(schema: string, fn: string, body: string | Uint8Array): { text: string; values: ApiArgument[] } {
  return { text: `SELECT ${quoteIdent(schema)}.${quoteIdent(fn)}($1::jsonb)::text AS body`, values: [body] };
}

const BEGIN_READ = "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY";
const BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE";

const SET_CONTEXT =
  "SELECT set_config('search_path', $1, true), set_config('role', $2, true)," +
  " set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true)," +
  " set_config('request.path', $5, true), set_config('request.headers', $6, true)," +
  " set_config('request.cookies', '{}', true), set_config('statement_timeout', $7, true)";

/**
 * Names of prepared statements by text: BEGIN, the context's SELECT, the api
 * calls and COMMIT are parsed once per connection (RequestBatch keeps which
 * are), as PostgREST prepares its statements. Few texts exist (one per endpoint and
 * set of query parameters given), so the map stays small.
 */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `smartsync_${statementNames.size}`;
    statementNames.set(text, name);
  }
  return name;
}

/**
 * request.jwt.claims as text, made once per verified token: the verifier
 * remembers a token's claims object (jwt.ts), so a device's requests share it.
 */
const claimsTexts = new WeakMap<object, { role: string; text: string }>();
function claimsText(claims: Claims, role: string): string {
  const known = claimsTexts.get(claims);
  if (known !== undefined && known.role === role) return known.text;
  const text = JSON.stringify({ ...claims, role });
  claimsTexts.set(claims, { role, text });
  return text;
}

/** One statement of a request's transaction: its text, name (prepared once per connection) and values. */
export interface Statement {
  text: string;
  name: string;
  values: ApiArgument[];
}

/**
 * Runs the statements on a connection in node-postgres's pipeline mode (a pool
 * of the caller's made with pipeline: true, which takes no RequestBatch):
 * written together (one write, one round trip), run one after the other, each
 * with its own Sync. When one fails, those after it in the transaction fail
 * too (25P02) and the COMMIT rolls it back, so nothing of a failed request is
 * kept; the first error is the request's. Returns the call's result text.
 */
async function pipelined(client: pg.PoolClient, statements: Statement[], resultAt: number): Promise<string | null> {
  // node-postgres writes each statement's messages with the socket corked; cork around all four
  const socket = client.connection.stream;
  let sent: Array<Promise<pg.QueryResult>>;
  socket.cork();
  try {
    // node-postgres would send bytes as a binary parameter: give it their text
    sent = statements.map((s) =>
      client.query({ name: s.name, text: s.text, values: s.values.map((v) => (v instanceof Uint8Array ? utf8.decode(v) : v)) }),
    );
  } finally {
    socket.uncork();
  }
  const settled = await Promise.allSettled(sent);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  const results = settled.map((r) => (r as PromiseFulfilledResult<pg.QueryResult>).value);
  // COMMIT answers ROLLBACK only for a failed transaction, whose error is thrown above
  const commit = results.at(-1)?.command;
  if (commit !== "COMMIT") throw new Error(`the request's transaction ended with ${commit}`);
  const row = (results[resultAt] as pg.QueryResult<Record<string, string | null>>).rows[0];
  return row === undefined ? null : (Object.values(row)[0] ?? null);
}

const utf8 = new TextDecoder();

/** The statements a connection has prepared through requests (name -> text). */
const prepared = new WeakMap<object, Map<string, string>>();

/** A string's or bytes' length in UTF-8. */
function byteLength(v: string | Uint8Array): number {
  return typeof v === "string" ? Buffer.byteLength(v) : v.byteLength;
}

/**
 * The messages of a batch of the extended protocol in one buffer: for each
 * statement a Parse when parse(statement) says so, a Bind of the unnamed
 * portal (every parameter and the result in text format: a parameter given
 * as bytes is the UTF-8 of its text) and an Execute of all its rows; then one
 * Sync. The bytes node-postgres's serializer writes for the same messages,
 * made in one allocation and written in one write.
 */
export function encodeBatch(statements: readonly Statement[], parse: (s: Statement) => boolean): Buffer {
  let size = 5; // Sync
  const parsing = statements.map(parse);
  for (let i = 0; i < statements.length; i++) {
    const s = statements[i] as Statement;
    const name = Buffer.byteLength(s.name);
    if (parsing[i]) size += 1 + 4 + name + 1 + Buffer.byteLength(s.text) + 1 + 2;
    size += 1 + 4 + 1 + name + 1 + 2 + 2 * s.values.length + 2 + 2 + 2; // Bind without its values
    for (const v of s.values) size += 4 + (v === null ? 0 : byteLength(v));
    size += 10; // Execute
  }
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  const int32 = (n: number) => {
    at = buf.writeInt32BE(n, at);
  };
  const int16 = (n: number) => {
    at = buf.writeInt16BE(n, at);
  };
  const cstring = (text: string) => {
    at += buf.write(text, at, "utf8");
    buf[at++] = 0;
  };
  for (let i = 0; i < statements.length; i++) {
    const s = statements[i] as Statement;
    if (parsing[i]) {
      const start = at;
      buf[at++] = 0x50; // Parse
      at += 4;
      cstring(s.name);
      cstring(s.text);
      int16(0); // no parameter types given: PostgreSQL infers them
      buf.writeInt32BE(at - start - 1, start + 1);
    }
    const start = at;
    buf[at++] = 0x42; // Bind
    at += 4;
    buf[at++] = 0; // the unnamed portal
    cstring(s.name);
    int16(s.values.length); // a format code per parameter: all text
    for (let k = 0; k < s.values.length; k++) int16(0);
    int16(s.values.length);
    for (const v of s.values) {
      if (v === null) int32(-1);
      else if (typeof v === "string") {
        const lengthAt = at;
        at += 4;
        const n = buf.write(v, at, "utf8");
        buf.writeInt32BE(n, lengthAt);
        at += n;
      } else {
        int32(v.byteLength);
        buf.set(v, at);
        at += v.byteLength;
      }
    }
    int16(1); // one result format code, for every column: text
    int16(0);
    buf.writeInt32BE(at - start - 1, start + 1);
    buf[at++] = 0x45; // Execute: the unnamed portal, all rows
    int32(9);
    buf[at++] = 0;
    int32(0);
  }
  buf[at++] = 0x53; // Sync
  int32(4);
  if (at !== size) throw new Error(`a request batch of ${at} bytes where ${size} were counted`);
  return buf;
}

/**
 * BEGIN, the context, the call and COMMIT as one message batch of the
 * extended protocol with a single Sync at its end: written in one write, run
 * one after the other, answered in one flush (a Sync after each statement
 * would make the server flush, and this process wake, once a statement).
 * When one fails, the server skips the rest up to the Sync, so the COMMIT
 * never runs; the caller rolls the transaction back. A node-postgres
 * Submittable: the client hands it the messages of its answer. The batch is
 * encoded in one buffer (encodeBatch) and written to the connection's socket
 * in one write, as node-postgres's own messages are written.
 */
class RequestBatch implements pg.Submittable {
  /** the call's result text */
  body: string | null = null;
  /** the statements whose Parse this batch sent */
  readonly parsing: string[] = [];
  readonly done: Promise<void>;
  private resolve!: () => void;
  private reject!: (err: unknown) => void;
  /** which statement the next answer message belongs to */
  private at = 0;

  constructor(
    private readonly statements: Statement[],
    /** the index of the statement whose one-column row is the result */
    private readonly resultAt: number,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: pg.Connection): void {
    let known = prepared.get(connection);
    if (known === undefined) {
      known = new Map();
      prepared.set(connection, known);
    }
    const ready = known;
    const batch = encodeBatch(this.statements, (s) => {
      if (ready.get(s.name) === s.text) return false;
      this.parsing.push(s.name);
      return true;
    });
    // as node-postgres sends a message: a connection that is no longer writable fails through its error events
    if (connection.stream.writable) connection.stream.write(batch);
    for (const s of this.statements) known.set(s.name, s.text);
  }

  handleDataRow(msg: { fields: Array<string | null> }): void {
    if (this.at === this.resultAt) this.body = msg.fields[0] ?? null;
  }

  handleCommandComplete(): void {
    this.at++;
  }

  handleEmptyQuery(): void {
    this.at++;
  }

  handleRowDescription(): void {}

  handlePortalSuspended(): void {}

  handleCopyInResponse(): void {}

  handleCopyData(): void {}

  handleReadyForQuery(): void {
    if (this.at === this.statements.length) this.resolve();
    else this.reject(new Error(`the request's transaction ended after ${this.at} of ${this.statements.length} statements`));
  }

  handleError(err: unknown, connection?: pg.Connection): void {
    // a statement this batch was to prepare may not exist: forget them all
    if (connection !== undefined) for (const name of this.parsing) prepared.get(connection)?.delete(name);
    this.reject(err);
  }
}

/**
 * Runs one api call in one transaction with the request's identity, as
 * PostgREST does, and returns its result as text (the response body). The
 * transaction's four statements leave as one batch (RequestBatch): one round
 * trip to the database, and one answer. Database errors become PostgREST's
 * HTTP errors.
 */
export async function runRequest(
  pool: pg.Pool,
  apiSchema: string,
  identity: RequestIdentity,
  options: TransactionOptions,
  call: { text: string; values: ApiArgument[] },
): Promise<string> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw unavailableError(err);
  }
  let broken: Error | undefined;
  let batch: RequestBatch | undefined;
  const begin = options.readOnly ? BEGIN_READ : BEGIN_WRITE;
  const statements: Statement[] = [
    { text: begin, name: statementName(begin), values: [] },
    {
      text: SET_CONTEXT,
      name: statementName(SET_CONTEXT),
      values: [
        `${quoteIdent(apiSchema)}, "public"`,
        identity.role,
        claimsText(identity.claims, identity.role),
        identity.method,
        identity.path,
        JSON.stringify(identity.headers),
        String(options.statementTimeoutMs),
      ],
    },
    { text: call.text, name: statementName(call.text), values: call.values },
    { text: "COMMIT", name: statementName("COMMIT"), values: [] },
  ];
  try {
    if (client.pipeline) return (await pipelined(client, statements, 2)) ?? "null";
    batch = new RequestBatch(statements, 2);
    client.query(batch);
    await batch.done;
    return batch.body ?? "null";
  } catch (err) {
    if (isPgError(err) && batch !== undefined) {
      // the transaction failed and waits for its ROLLBACK; a statement the batch was
      // preparing may or may not exist, so a connection that prepared one is dropped
      if (batch.parsing.length > 0) broken = new Error("a request failed while preparing its statements");
      else {
        try {
          await client.query("ROLLBACK");
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
      }
      throw httpErrorFromPg(err, false);
    }
    if (err instanceof HttpError) throw err;
    if (isPgError(err)) throw httpErrorFromPg(err, false);
    broken = err as Error;
    throw unavailableError(err);
  } finally {
    // a connection that failed outside SQL is dropped, not reused
    client.release(broken);
  }
}
