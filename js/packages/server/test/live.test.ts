/**
 * GET /live: a change made anywhere (here by plain SQL, as a back office
 * would) reaches the streams of its tenant and practice as a `changed` event,
 * and the client pulls; with either signal, polled or NOTIFY.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { admin, call, closeAdmin, openLive, phone, startServer, tablet, token, type TestServer } from "./helpers.js";

async function changed(reader: Awaited<ReturnType<typeof openLive>>) {
  const ev = await reader.next();
  expect(ev.event).toBe("changed");
  return JSON.parse(ev.data) as { reason: string; practices: string[] | null };
}

let clientId: number;

beforeAll(async () => {
  const c = await admin().query("INSERT INTO tenant_happy_paws.clients (practice_id, name) VALUES (1, 'Live Ann') RETURNING id");
  clientId = Number(c.rows[0].id);
});
afterAll(async () => {
  await closeAdmin();
});

describe.each(["poll", "notify"] as const)("with the %s signal", (signal) => {
  let srv: TestServer;
  beforeAll(async () => {
    if (signal === "notify") {
      // NOTIFY is off by default; the back office's new sessions have it on
      await admin().query("ALTER DATABASE smartsync_server_test SET smartsync.notify = on");
      await closeAdmin();
    }
    srv = await startServer({ live: { signal, pollIntervalMs: 10 } });
  });
  afterAll(async () => {
    await srv.close();
    if (signal === "notify") {
      await admin().query("ALTER DATABASE smartsync_server_test RESET smartsync.notify");
      await closeAdmin();
    }
  });

  test("a change made by plain SQL reaches the stream; the pull then delivers it", async () => {
    const jwt = await token(phone);
    const first = await call(`${srv.url}/pull`, jwt);
    const live = await openLive(`${srv.url}/live?cursor=${encodeURIComponent(first.body.cursor)}`, jwt);
    try {
      const ready = await live.next();
      expect(ready.event).toBe("ready");
      expect(live.retry).toBe(2000);
      // nothing waiting for this cursor: no poke
      expect(await live.quietFor(300)).toBe(true);

      await admin().query("UPDATE tenant_happy_paws.clients SET name = 'Live Ann B' WHERE id = $1", [clientId]);
      expect(await changed(live)).toEqual({ reason: "change", practices: ["1"] });
      const pulled = await call(`${srv.url}/pull?cursor=${encodeURIComponent(first.body.cursor)}`, jwt);
      expect(pulled.body.changes).toEqual([expect.objectContaining({ entityType: "clients", id: clientId })]);
    } finally {
      await live.close();
    }
  });

  test("one event per transaction, not per row", async () => {
    const live = await openLive(`${srv.url}/live`, await token(phone));
    try {
      expect((await live.next()).event).toBe("ready");
      expect((await changed(live)).reason).toBe("connected");
      await admin().query(
        "INSERT INTO tenant_happy_paws.clients (practice_id, name) SELECT 1, 'bulk ' || g FROM generate_series(1, 50) g",
      );
      expect((await changed(live)).practices).toEqual(["1"]);
      expect(await live.quietFor(300)).toBe(true);
    } finally {
      await live.close();
    }
  });

  test("streams hear only their tenant and practice", async () => {
    const p1 = await openLive(`${srv.url}/live`, await token(phone));
    const p2 = await openLive(`${srv.url}/live`, await token({ ...phone, practice_id: 2, client_id: "p2" }));
    const other = await openLive(`${srv.url}/live`, await token({ ...phone, tenant_id: "other-clinic", client_id: "oc" }));
    try {
      for (const s of [p1, p2, other]) {
        expect((await s.next()).event).toBe("ready");
        await changed(s); // connected
      }
      await admin().query("INSERT INTO tenant_happy_paws.clients (practice_id, name) VALUES (2, 'Bo')");
      expect((await changed(p2)).practices).toEqual(["2"]);
      expect(await p1.quietFor(300)).toBe(true);
      expect(await other.quietFor(50)).toBe(true);
      await admin().query("INSERT INTO tenant_other_clinic.clients (practice_id, name) VALUES (1, 'Cy')");
      expect((await changed(other)).practices).toEqual(["1"]);
      expect(await p1.quietFor(300)).toBe(true);
      expect(await p2.quietFor(50)).toBe(true);
    } finally {
      await Promise.all([p1.close(), p2.close(), other.close()]);
    }
  });
});

describe("reconnection, heartbeats, limits, shutdown", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ live: { signal: "poll", pollIntervalMs: 10, heartbeatMs: 200, maxStreams: 3 } });
  });
  afterAll(async () => {
    await srv.close();
  });

  test("Last-Event-ID: a client that missed nothing is not poked; one that missed a change is", async () => {
    const jwt = await token(phone);
    const live = await openLive(`${srv.url}/live`, jwt);
    expect((await live.next()).event).toBe("ready");
    const ev = await live.next();
    expect(ev.event).toBe("changed");
    await live.close();

    // back before anything changed: no poke
    const again = await openLive(`${srv.url}/live`, jwt, { "last-event-id": ev.id as string });
    expect((await again.next()).event).toBe("ready");
    expect(await again.quietFor(300)).toBe(true);
    await again.close();

    // a change while away: poked at once, so it pulls
    await admin().query("UPDATE tenant_happy_paws.clients SET name = 'away' WHERE id = $1", [clientId]);
    await new Promise((r) => setTimeout(r, 200)); // let the poll see it
    const back = await openLive(`${srv.url}/live`, jwt, { "last-event-id": ev.id as string });
    expect((await back.next()).event).toBe("ready");
    expect((await changed(back)).reason).toBe("reconnected");
    await back.close();

    // an id from another server process: poked
    const stranger = await openLive(`${srv.url}/live`, jwt, { "last-event-id": "zzz-1" });
    expect((await stranger.next()).event).toBe("ready");
    expect((await changed(stranger)).reason).toBe("reconnected");
    await stranger.close();
  });

  test("a cursor with changes waiting is poked at once; a bad cursor gets its error, not a stream", async () => {
    const jwt = await token(phone);
    const first = await call(`${srv.url}/pull`, jwt);
    await admin().query("UPDATE tenant_happy_paws.clients SET name = 'waiting' WHERE id = $1", [clientId]);
    const live = await openLive(`${srv.url}/live?cursor=${encodeURIComponent(first.body.cursor)}`, jwt);
    expect((await live.next()).event).toBe("ready");
    // poked at once: for the waiting cursor, or by the signal if it saw the change first
    expect(["pending", "change"]).toContain((await changed(live)).reason);
    await live.close();

    const bad = await call(`${srv.url}/live?cursor=garbage!`, jwt);
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("SS501");
    const otherTenant = await call(`${srv.url}/live?cursor=${encodeURIComponent(first.body.cursor)}`, await token({ ...phone, tenant_id: "other-clinic" }));
    expect(otherTenant.status).toBe(403);
    expect(otherTenant.body.code).toBe("SS503");
  });

  test("EventSource cannot send headers: the token may come as access_token", async () => {
    const res = await fetch(`${srv.url}/live?access_token=${await token(phone)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    await res.body?.cancel();
  });

  test("heartbeats keep the stream alive", async () => {
    const live = await openLive(`${srv.url}/live`, await token(phone));
    await live.next(); // ready
    await live.next(); // connected
    const hb = await live.next({ heartbeats: true, timeoutMs: 2000 });
    expect(hb.event).toBe("heartbeat");
    expect(typeof JSON.parse(hb.data).time).toBe("number");
    await live.close();
  });

  test("more streams than allowed: 503; a closed stream frees its place", async () => {
    const jwt = await token(phone);
    for (let i = 0; i < 250 && srv.handler.streams > 0; i++) await new Promise((r) => setTimeout(r, 20));
    const open = [];
    for (let i = 0; i < 3; i++) open.push(await openLive(`${srv.url}/live`, jwt));
    await open[2]?.next();
    expect(srv.handler.streams).toBe(3);
    const refused = await call(`${srv.url}/live`, jwt);
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe("SS906");
    await open.pop()?.close();
    for (let i = 0; i < 250 && srv.handler.streams > 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(srv.handler.streams).toBe(2);
    const fourth = await openLive(`${srv.url}/live`, jwt);
    await Promise.all([...open.map((s) => s.close()), fourth.close()]);
  });

  test("metrics count streams and events", async () => {
    const res = await fetch(`${srv.url}/metrics`);
    const text = await res.text();
    expect(res.headers.get("content-type")).toContain("text/plain");
    expect(text).toMatch(/^smartsync_live_streams \d+$/m);
    expect(text).toMatch(/^smartsync_live_events_total [1-9]\d*$/m);
    expect(text).toMatch(/^smartsync_live_signals_total\{source="poll"\} [1-9]\d*$/m);
    expect(text).toMatch(/^smartsync_http_requests_total\{route="\/live",method="GET",status="200"\} [1-9]\d*$/m);
    expect(text).toMatch(/^smartsync_db_pool_connections\{state="total"\} \d+$/m);
  });

  test("shutdown ends every stream and refuses new requests", async () => {
    const s = await startServer({ live: { signal: "poll" } });
    const live = await openLive(`${s.url}/live`, await token(phone));
    await live.next();
    const closing = s.handler.close({ timeoutMs: 1000 });
    await live.ended();
    await closing;
    const res = await s.handler(new Request(`${s.url}/pull`, { headers: { authorization: `Bearer ${await token(phone)}` } }));
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe("SS906");
    await s.server.close();
  });
});

describe("the polled signal waits in the database", () => {
  test("an idle server's poll waits in poll_changes(); a change ends the wait and reaches the stream", async () => {
    const srv = await startServer({ live: { signal: "poll", pollIntervalMs: 2 } });
    const live = await openLive(`${srv.url}/live`, await token(phone));
    try {
      expect((await live.next()).event).toBe("ready");
      expect((await changed(live)).reason).toBe("connected");
      // the signal's connection spends its time in one call that waits (smartsync.poll_wait)
      let waiting: { query: string; wait_event: string; poll_wait: string } | undefined;
      for (let i = 0; i < 100 && waiting === undefined; i++) {
        const r = await admin().query(
          `SELECT query, wait_event FROM pg_stat_activity
            WHERE application_name = 'smartsync-server signal' AND state = 'active' AND wait_event_type = 'Extension'`,
        );
        waiting = r.rows[0];
        if (waiting === undefined) await new Promise((r) => setTimeout(r, 20));
      }
      expect(waiting?.query).toContain("smartsync.poll_changes");
      await admin().query("UPDATE tenant_happy_paws.clients SET name = 'woken' WHERE id = $1", [clientId]);
      expect(await changed(live)).toEqual({ reason: "change", practices: ["1"] });
      expect(await live.quietFor(300)).toBe(true);
    } finally {
      await live.close();
      await srv.close();
    }
  });

  test("a tenant whose first stream opens while a poll waits hears a change committed at once", async () => {
    const srv = await startServer({ live: { signal: "poll", pollIntervalMs: 2 } });
    const a = await openLive(`${srv.url}/live`, await token(phone));
    try {
      expect((await a.next()).event).toBe("ready");
      await changed(a); // connected
      // the poll now waits for happy-paws only; other-clinic's first stream comes while it waits
      const b = await openLive(`${srv.url}/live`, await token({ ...phone, tenant_id: "other-clinic", client_id: "oc-2" }));
      try {
        expect((await b.next()).event).toBe("ready");
        expect((await changed(b)).reason).toBe("connected");
        await admin().query("INSERT INTO tenant_other_clinic.clients (practice_id, name) VALUES (1, 'Di')");
        // reported by the call that asks about the new tenant from the waiting call's watermark
        expect(await changed(b)).toEqual({ reason: "change", practices: ["1"] });
        expect(await a.quietFor(100)).toBe(true);
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
      await srv.close();
    }
  });
});
