/**
 * The handler in-process (handler(new Request(...))): routing, limits, the
 * error body, logs without secrets; and the pieces under it (the SSE
 * stream's backpressure, the live hub's fan-out, PostgREST's status table).
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseSignal } from "../src/change-signal.js";
import { LiveHub } from "../src/live-hub.js";
import { httpErrorFromPg, statusOfSqlstate } from "../src/pg-errors.js";
import { SseStream } from "../src/sse-stream.js";
import { createLogger, createSyncHandler, ConfigError, type SyncHandler } from "../src/index.js";
import { SECRET, tablet, token } from "./helpers.js";
import { inject } from "vitest";

const BASE = "https://clinic.example/api/sync";
let handler: SyncHandler;
const lines: string[] = [];
let clock = 1_700_000_000_000;

beforeAll(() => {
  handler = createSyncHandler({
    connection: inject("db").authenticator,
    jwt: { secret: SECRET },
    live: { signal: "none" },
    maxBodyBytes: 2000,
    processMetrics: false,
    now: () => clock,
    randomId: () => "req-1",
    logger: createLogger({ level: "debug", write: (l) => lines.push(l), now: () => clock }),
  });
});
afterAll(async () => {
  await handler.close();
});

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

describe("routing", () => {
  test("an unknown path is 404, a known path with another method 405 with Allow", async () => {
    const nowhere = await handler(new Request(`${BASE}/nowhere`));
    expect(nowhere.status).toBe(404);
    expect(await json(nowhere)).toMatchObject({ code: "SS901" });
    const outside = await handler(new Request("https://clinic.example/elsewhere"));
    expect(outside.status).toBe(404);
    const wrong = await handler(new Request(`${BASE}/push`));
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
    expect(await json(wrong)).toMatchObject({ code: "SS902" });
  });

  test("GET /health reaches the database without a token", async () => {
    const res = await handler(new Request(`${BASE}/health`));
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ status: "ok", database: "ok", signal: "none", streams: 0 });
  });

  test("unknown query parameters are refused, so a typo is not silently ignored", async () => {
    const res = await handler(new Request(`${BASE}/pull?entityType=clients`, { headers: { authorization: `Bearer ${await token(tablet)}` } }));
    expect(res.status).toBe(400);
    expect(await json(res)).toEqual({
      code: "SS905",
      message: 'unknown query parameter "entityType"',
      details: null,
      hint: "This endpoint takes lastSyncTimestamp, practiceId, entityTypes, cursor, limit.",
    });
  });
});

describe("request bodies", () => {
  test("larger than the limit: 413 (by Content-Length, before reading)", async () => {
    const res = await handler(
      new Request(`${BASE}/push`, {
        method: "POST",
        headers: { authorization: `Bearer ${await token(tablet)}`, "content-type": "application/json", "content-length": "5000" },
        body: "x".repeat(5000),
      }),
    );
    expect(res.status).toBe(413);
    expect(await json(res)).toMatchObject({ code: "SS903", message: "request body is larger than 2000 bytes" });
  });

  test("not JSON by its content type: 415; empty: 400", async () => {
    const jwt = await token(tablet);
    const form = await handler(
      new Request(`${BASE}/push`, {
        method: "POST",
        headers: { authorization: `Bearer ${jwt}`, "content-type": "application/x-www-form-urlencoded" },
        body: "a=b",
      }),
    );
    expect(form.status).toBe(415);
    const empty = await handler(
      new Request(`${BASE}/push`, { method: "POST", headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" }, body: "" }),
    );
    expect(empty.status).toBe(400);
  });
});

describe("logs", () => {
  test("one JSON line per request: route template, status, duration, request id; no token, no body values", async () => {
    lines.length = 0;
    const jwt = await token(tablet);
    const res = await handler(
      new Request(`${BASE}/push`, {
        method: "POST",
        headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
        body: JSON.stringify({
          operations: [{ id: 801, operation: "create", entityType: "clients", entityId: "temp_l1", data: { name: "Secret Sally" }, timestamp: 1 }],
        }),
      }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("req-1");
    const logged = lines.join("");
    expect(logged).not.toContain("Secret Sally");
    expect(logged).not.toContain(jwt);
    expect(logged).not.toContain(jwt.split(".")[2] as string);
    const entry = JSON.parse(lines.at(-1) as string);
    expect(entry).toEqual({
      time: new Date(clock).toISOString(),
      level: "info",
      msg: "request",
      requestId: "req-1",
      method: "POST",
      route: "/push",
      status: 200,
      durationMs: 0,
    });
  });

  test("a failed request logs its code; a cursor in the query is never logged", async () => {
    lines.length = 0;
    await handler(new Request(`${BASE}/pull?cursor=SECRETCURSOR`, { headers: { authorization: `Bearer ${await token(tablet)}` } }));
    const entry = JSON.parse(lines.at(-1) as string);
    expect(entry).toMatchObject({ route: "/pull", status: 400, code: "SS501" });
    expect(lines.join("")).not.toContain("SECRETCURSOR");
  });
});

describe("configuration", () => {
  test("a bad configuration fails at once with ConfigError", () => {
    const db = inject("db").authenticator;
    expect(() => createSyncHandler({ connection: db, jwt: {} })).toThrow(ConfigError);
    expect(() => createSyncHandler({ connection: db, jwt: { secret: "short" } })).toThrow("at least 32 characters");
    expect(() => createSyncHandler({ connection: db, jwt: { secret: SECRET, jwksUrl: "https://x" } })).toThrow(ConfigError);
    expect(() => createSyncHandler({ connection: db, jwt: { publicKey: "not a key" } })).toThrow("cannot read the JWT public key");
    expect(() => createSyncHandler({ connection: db, jwt: { secret: SECRET }, apiSchema: "api; drop" })).toThrow("invalid api schema");
    expect(() => createSyncHandler({ jwt: { secret: SECRET } })).toThrow("give databaseUrl, connection or pool");
  });
});

describe("PostgREST's statuses", () => {
  test("the SQLSTATE table", () => {
    expect(statusOfSqlstate("42501", true)).toBe(401);
    expect(statusOfSqlstate("42501", false)).toBe(403);
    expect(statusOfSqlstate("23505", false)).toBe(409);
    expect(statusOfSqlstate("25006", false)).toBe(405);
    expect(statusOfSqlstate("PT418", false)).toBe(418);
    expect(statusOfSqlstate("40001", false)).toBe(500);
    expect(statusOfSqlstate("57014", false)).toBe(500);
    expect(statusOfSqlstate("08006", false)).toBe(503);
    expect(statusOfSqlstate("22P02", false)).toBe(400);
  });

  test("smartsync's PGRST errors carry their body and status", () => {
    const err = httpErrorFromPg({
      code: "PGRST",
      message: JSON.stringify({ code: "SS505", message: "pull cursor must be refetched", hint: "Pull again without a cursor." }),
      detail: JSON.stringify({ status: 410, headers: {} }),
    });
    expect(err.status).toBe(410);
    expect(err.body).toEqual({ code: "SS505", message: "pull cursor must be refetched", details: null, hint: "Pull again without a cursor." });
  });
});

describe("live streams, in parts", () => {
  test("a client that does not read gets one waiting event, the latest, not a pile", async () => {
    let closed = 0;
    let now = 0;
    const s = new SseStream({ highWaterMark: 64, stallTimeoutMs: 60_000, now: () => now, onClose: () => closed++ });
    for (let i = 0; i < 1000; i++) s.send(`data: ${i}\n\n`);
    const reader = s.readable.getReader();
    const seen: string[] = [];
    const dec = new TextDecoder();
    for (let i = 0; i < 20; i++) {
      const r = await Promise.race([reader.read(), new Promise<"idle">((res) => setTimeout(() => res("idle"), 20))]);
      if (r === "idle" || r.done) break;
      seen.push(dec.decode(r.value));
    }
    // what fitted the 64-byte queue, then only the last event
    expect(seen.length).toBeLessThan(15);
    expect(seen.at(-1)).toBe("data: 999\n\n");
    // a client whose queue stays full past the timeout is disconnected at the next event
    now = 10_000;
    for (let i = 0; i < 20; i++) s.send(`data: more ${i} ${"x".repeat(40)}\n\n`);
    expect(s.closed).toBe(false);
    now = 69_000;
    s.sendIfReady("event: heartbeat\ndata: {}\n\n");
    expect(s.closed).toBe(false);
    now = 70_000;
    s.sendIfReady("event: heartbeat\ndata: {}\n\n");
    expect(s.closed).toBe(true);
    expect(closed).toBe(1);
  });

  test("a stream written to a sink (node:http): what waited first, then each event; a full socket keeps only the newest", () => {
    let closed = 0;
    const s = new SseStream({ highWaterMark: 64, stallTimeoutMs: 60_000, now: () => 0, onClose: () => closed++ });
    s.send("event: ready\n\n");
    s.send("data: 1\n\n");
    const written: string[] = [];
    let room = true;
    let ended = 0;
    const sink = {
      write: (c: Uint8Array) => {
        written.push(new TextDecoder().decode(c));
        return room;
      },
      end: () => ended++,
    };
    expect(s.attach(sink)).toBe(true);
    expect(s.attach(sink)).toBe(false);
    expect(written).toEqual(["event: ready\n\n", "data: 1\n\n"]);
    // the socket's buffer fills at event 2: 3 to 9 wait, each replacing the last; heartbeats are skipped
    room = false;
    for (let i = 2; i < 10; i++) s.send(`data: ${i}\n\n`);
    s.sendIfReady("event: heartbeat\n\n");
    expect(written.slice(2)).toEqual(["data: 2\n\n"]);
    room = true;
    s.drained();
    expect(written.slice(3)).toEqual(["data: 9\n\n"]);
    s.sendIfReady("event: heartbeat\n\n");
    expect(written.at(-1)).toBe("event: heartbeat\n\n");
    s.close();
    expect([ended, closed, s.closed]).toEqual([1, 1, true]);
    // a stream whose readable is being read is not taken by a sink
    const r = new SseStream({ highWaterMark: 64, stallTimeoutMs: 60_000, now: () => 0, onClose: () => undefined });
    r.readable.getReader();
    expect(r.attach(sink)).toBe(false);
  });

  test("a stream closed before it is read still delivers what it queued, then ends", async () => {
    const s = new SseStream({ highWaterMark: 64, stallTimeoutMs: 60_000, now: () => 0, onClose: () => undefined });
    s.send("event: ready\n\n");
    s.close();
    const reader = s.readable.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("event: ready\n\n");
    expect((await reader.read()).done).toBe(true);
  });

  test("the hub pokes the streams of the tenant and practice; Last-Event-ID by coverage", () => {
    let now = 0;
    const hub = new LiveHub({ now: () => now, coverage: "watched", lingerMs: 1000 });
    const got: Record<string, string[]> = { a1: [], a2: [], aAll: [], b: [] };
    const sink = (name: string) =>
      ({ send: (t: Uint8Array) => got[name]?.push(new TextDecoder().decode(t)), sendIfReady: () => undefined, close: () => undefined }) as unknown as SseStream;
    const un = hub.subscribe({ tenant: "a", practice: "1", stream: sink("a1") });
    hub.subscribe({ tenant: "a", practice: "2", stream: sink("a2") });
    hub.subscribe({ tenant: "a", practice: null, stream: sink("aAll") });
    hub.subscribe({ tenant: "b", practice: "1", stream: sink("b") });
    hub.change({ tenant: "a", practices: ["1"] });
    expect([got.a1?.length, got.a2?.length, got.aAll?.length, got.b?.length]).toEqual([1, 0, 1, 0]);
    hub.change({ tenant: "a", practices: null });
    expect([got.a1?.length, got.a2?.length, got.aAll?.length, got.b?.length]).toEqual([2, 1, 2, 0]);
    expect(hub.tenants().sort()).toEqual(["a", "b"]);

    const seen = hub.currentId();
    expect(hub.missedSince("a", seen)).toBe(false);
    expect(hub.missedSince("a", null)).toBe(true);
    expect(hub.missedSince("a", "other-5")).toBe(true);
    hub.change({ tenant: "a", practices: ["2"] });
    expect(hub.missedSince("a", seen)).toBe(true);

    un();
  });

  test("after a tenant's last stream leaves, a poll watches it for a while; then a reconnect is poked", () => {
    let now = 0;
    const quiet = { send: () => undefined, sendIfReady: () => undefined, close: () => undefined } as unknown as SseStream;
    const hub = new LiveHub({ now: () => now, coverage: "watched", lingerMs: 1000 });
    const leave = hub.subscribe({ tenant: "c", practice: null, stream: quiet });
    const seen = hub.currentId();
    leave();
    now = 500;
    expect(hub.tenants()).toEqual(["c"]);
    expect(hub.missedSince("c", seen)).toBe(false);
    now = 1500;
    expect(hub.tenants()).toEqual([]);
    expect(hub.missedSince("c", seen)).toBe(true);

    // NOTIFY covers every tenant; without a signal nothing is proven
    const all = new LiveHub({ now: () => now, coverage: "all" });
    expect(all.missedSince("c", all.currentId())).toBe(false);
    const none = new LiveHub({ now: () => now, coverage: "none" });
    expect(none.missedSince("c", none.currentId())).toBe(true);
  });

  test("hubs started in the same millisecond (the workers of --workers) have epochs of their own", () => {
    const a = new LiveHub({ now: () => 1000, coverage: "all" });
    const b = new LiveHub({ now: () => 1000, coverage: "all" });
    expect(a.epoch).not.toBe(b.epoch);
    expect(a.epoch).toMatch(/^[0-9a-z]+$/);
    // an id of the other worker's hub proves nothing: the client is poked
    expect(b.missedSince("c", a.currentId())).toBe(true);
    expect(a.missedSince("c", a.currentId())).toBe(false);
  });

  test("change payloads are parsed strictly", () => {
    expect(parseSignal({ tenant: "t", practices: ["1"] })).toEqual({ tenant: "t", practices: ["1"] });
    expect(parseSignal({ tenant: "t", practices: null })).toEqual({ tenant: "t", practices: null });
    expect(parseSignal({ tenant: 1, practices: null })).toBeUndefined();
    expect(parseSignal({ tenant: "t", practices: [1] })).toBeUndefined();
  });
});
