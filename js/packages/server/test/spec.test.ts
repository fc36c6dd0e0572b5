/**
 * The spec's API end to end over HTTP: POST /api/sync/push and GET
 * /api/sync/pull with the spec's request and response bodies, unchanged.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { admin, call, closeAdmin, startServer, token, type TestServer } from "./helpers.js";

// the spec's device: tenant "tenant_1", practice 1, user 42
const device = {
  role: "web_user",
  tenant_id: "tenant_1",
  practice_id: 1,
  sub: "42",
  client_id: "spec-device",
  permissions: ["appointments:create", "appointments:update", "*:read"],
};

// another device of the practice, which pulls what the first one pushed
const reader = { ...device, client_id: "spec-reader", permissions: ["*:read"] };

let srv: TestServer;
let jwt: string;
let readerJwt: string;
let petId: number;

beforeAll(async () => {
  srv = await startServer();
  jwt = await token(device);
  readerJwt = await token(reader);
  // the back office has a client and a pet (written by plain SQL)
  const c = await admin().query("INSERT INTO tenant_tenant_1.clients (practice_id, name) VALUES (1, 'Ann') RETURNING id");
  const p = await admin().query("INSERT INTO tenant_tenant_1.pets (practice_id, client_id, name) VALUES (1, $1, 'Rex') RETURNING id", [
    c.rows[0].id,
  ]);
  petId = Number(p.rows[0].id);
});

afterAll(async () => {
  await srv.close();
  await closeAdmin();
});

describe("POST /api/sync/push", () => {
  test("the spec's request gets the spec's response: the temporary id mapped to a real one", async () => {
    const res = await call(`${srv.url}/push`, jwt, {
      body: {
        operations: [
          {
            id: 123,
            operation: "create",
            entityType: "appointments",
            entityId: "temp_12345",
            data: { title: "Annual checkup", petId, date: "2024-11-10T12:00:00Z" },
            timestamp: 1699000000000,
            tenantId: "tenant_1",
            practiceId: 1,
            userId: 42,
          },
        ],
        clientTimestamp: 1699000005000,
      },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.body).toMatchObject({
      success: true,
      processed: 1,
      failed: 0,
      conflicts: 0,
      results: [{ operationId: 123, success: true, tempId: "temp_12345", entityType: "appointments" }],
    });
    const realId = res.body.results[0].realId;
    expect(typeof realId).toBe("number");
    const row = await admin().query("SELECT title, pet_id FROM tenant_tenant_1.appointments WHERE id = $1", [realId]);
    expect(row.rows).toEqual([{ title: "Annual checkup", pet_id: String(petId) }]);

    // the same push again is answered from the ledger, nothing written twice
    const again = await call(`${srv.url}/push`, jwt, {
      body: {
        operations: [
          {
            id: 123,
            operation: "create",
            entityType: "appointments",
            entityId: "temp_12345",
            data: { title: "Annual checkup", petId, date: "2024-11-10T12:00:00Z" },
            timestamp: 1699000000000,
          },
        ],
      },
    });
    expect(again.body.results[0].realId).toBe(realId);
    const count = await admin().query("SELECT count(*)::int AS n FROM tenant_tenant_1.appointments WHERE title = 'Annual checkup'");
    expect(count.rows[0].n).toBe(1);
  });

  test("a conflict is a 200 with the spec's conflict response", async () => {
    const a = await admin().query(
      "INSERT INTO tenant_tenant_1.appointments (practice_id, pet_id, title, date) VALUES (1, $1, 'Dental', '2024-12-01T09:00:00Z') RETURNING id",
      [petId],
    );
    const id = Number(a.rows[0].id);
    // the front desk moves it (version 2); the device edits version 1 offline
    await admin().query("UPDATE tenant_tenant_1.appointments SET date = '2024-12-02T09:00:00Z' WHERE id = $1", [id]);
    const res = await call(`${srv.url}/push`, jwt, {
      body: {
        operations: [
          {
            id: 124,
            operation: "update",
            entityType: "appointments",
            entityId: id,
            data: { date: "2024-12-03T09:00:00Z" },
            version: 1,
            timestamp: 1699000001000,
          },
        ],
        clientTimestamp: 1699000005000,
      },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      success: false,
      conflicts: 1,
      results: [
        {
          operationId: 124,
          success: false,
          conflict: true,
          conflictData: { localData: { date: "2024-12-03T09:00:00Z" }, affectedFields: ["date"] },
        },
      ],
    });
    const cd = res.body.results[0].conflictData;
    expect(cd.serverData).toMatchObject({ id, title: "Dental", version: 2 });
    expect(typeof cd.conflictType).toBe("string");
  });

  test("a body that is not JSON is PostgreSQL's 22P02, 400, in PostgREST's body", async () => {
    const res = await call(`${srv.url}/push`, jwt, { body: "{not json" });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "22P02" });
    expect(Object.keys(res.body).sort()).toEqual(["code", "details", "hint", "message"]);
  });

  test("the body reaches the database as its UTF-8 bytes: text beyond ASCII unchanged, a BOM dropped, other bytes 400", async () => {
    const push = (bytes: Uint8Array<ArrayBuffer>) =>
      fetch(`${srv.url}/push`, {
        method: "POST",
        headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
        body: bytes,
      });
    const appointment = (id: number, title: string) =>
      JSON.stringify({
        operations: [{ id, operation: "create", entityType: "appointments", entityId: `temp_utf8_${id}`, data: { title, petId, date: "2024-11-11T12:00:00Z" }, timestamp: 1699000000000 }],
      });
    const utf8 = new TextEncoder();
    const plain = await push(utf8.encode(appointment(125, "Zoë's check-up 🐕, Ñandú")));
    expect(plain.status).toBe(200);
    expect(await plain.json()).toMatchObject({ processed: 1, failed: 0 });
    const withBom = await push(new Uint8Array([0xef, 0xbb, 0xbf, ...utf8.encode(appointment(126, "after a BOM"))]));
    expect(withBom.status).toBe(200);
    expect(await withBom.json()).toMatchObject({ processed: 1, failed: 0 });
    const titles = await admin().query(
      "SELECT title FROM tenant_tenant_1.appointments WHERE title IN ('Zoë''s check-up 🐕, Ñandú', 'after a BOM') ORDER BY title",
    );
    expect(titles.rows).toEqual([{ title: "Zoë's check-up 🐕, Ñandú" }, { title: "after a BOM" }]);
    // a lone continuation byte, and a surrogate encoded in UTF-8: not UTF-8
    for (const bad of [[0x80], [0xed, 0xa0, 0x80]]) {
      const body = utf8.encode(appointment(127, "x"));
      const res = await push(new Uint8Array([...body.slice(0, 20), ...bad, ...body.slice(20)]));
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ code: "SS905", message: "request body is not valid UTF-8", details: null, hint: null });
    }
    const blank = await push(utf8.encode(" \n\t\u00a0"));
    expect(blank.status).toBe(400);
    expect(await blank.json()).toMatchObject({ code: "SS905", message: "the push body is empty" });
  });

  test("smartsync's own errors keep their SQLSTATE and http_status() status", async () => {
    const notObject = await call(`${srv.url}/push`, jwt, { body: "[1, 2]" });
    expect(notObject.status).toBe(400);
    expect(notObject.body.code).toBe("SS401");
    const tooMany = await call(`${srv.url}/push`, jwt, {
      body: {
        operations: Array.from({ length: 51 }, (_, i) => ({
          id: 1000 + i,
          operation: "create",
          entityType: "appointments",
          entityId: `temp_${i}`,
          data: {},
          timestamp: 1,
        })),
      },
    });
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.code).toBe("SS403");
  });
});

describe("GET /api/sync/pull", () => {
  test("the spec's query gets the spec's response", async () => {
    const res = await call(`${srv.url}/pull?lastSyncTimestamp=1699000000000&practiceId=1&entityTypes=appointments,pets`, readerJwt);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, hasMore: false });
    expect(typeof res.body.timestamp).toBe("number");
    expect(res.body.changes.length).toBeGreaterThan(0);
    for (const c of res.body.changes) {
      expect(Object.keys(c)).toEqual(expect.arrayContaining(["entityType", "operation", "id", "data", "updatedAt"]));
      expect(["appointments", "pets"]).toContain(c.entityType);
      expect(c.data.practice_id).toBe(1);
    }
    expect(res.body.changes.map((c: { data: { title?: string } }) => c.data.title)).toContain("Annual checkup");
    // the device that pushed it is not sent its own write back
    const own = await call(`${srv.url}/pull?lastSyncTimestamp=1699000000000&practiceId=1&entityTypes=appointments`, jwt);
    expect(own.body.changes.map((c: { data: { title?: string } }) => c.data.title)).not.toContain("Annual checkup");
  });

  test("the cursor of each page continues exactly: a listing in pages, then changes", async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const res = await call(`${srv.url}/pull?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, jwt);
      expect(res.status).toBe(200);
      pages++;
      for (const c of res.body.changes) seen.push(`${c.entityType}:${c.id}`);
      cursor = res.body.cursor;
      if (!res.body.hasMore) break;
    }
    expect(pages).toBeGreaterThan(1);
    expect(new Set(seen).size).toBe(seen.length);

    // nothing new: /changed says so, and an empty page
    const idle = await call(`${srv.url}/changed?cursor=${encodeURIComponent(cursor as string)}`, jwt);
    expect(idle).toMatchObject({ status: 200, body: { changed: false } });
    await admin().query("UPDATE tenant_tenant_1.pets SET name = 'Rex II' WHERE id = $1", [petId]);
    const busy = await call(`${srv.url}/changed?cursor=${encodeURIComponent(cursor as string)}`, jwt);
    expect(busy.body).toEqual({ changed: true });
    const next = await call(`${srv.url}/pull?cursor=${encodeURIComponent(cursor as string)}`, jwt);
    expect(next.body.changes).toEqual([expect.objectContaining({ entityType: "pets", id: petId, operation: "update" })]);
    expect(next.body.changes[0].data.name).toBe("Rex II");
  });

  test("errors: a practice that is not the JWT's is 403, a bad cursor 400, a bad limit 400", async () => {
    const other = await call(`${srv.url}/pull?practiceId=2`, jwt);
    expect(other.status).toBe(403);
    expect(other.body.code).toBe("SS507");
    const bad = await call(`${srv.url}/pull?cursor=not-a-cursor!`, jwt);
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("SS501");
    const limit = await call(`${srv.url}/pull?limit=ten`, jwt);
    expect(limit.status).toBe(400);
    expect(limit.body.code).toBe("22P02");
    const unknown = await call(`${srv.url}/pull?since=1`, jwt);
    expect(unknown.status).toBe(400);
    expect(unknown.body.code).toBe("SS905");
  });

  test("a cursor older than the change-log retention is 410: pull again without it", async () => {
    const first = await call(`${srv.url}/pull?entityTypes=pets`, jwt);
    await admin().query("UPDATE tenant_tenant_1.pets SET name = 'Rex III' WHERE id = $1", [petId]);
    await admin().query("UPDATE tenant_tenant_1.sync_changes SET changed_at = changed_at - interval '1 year'");
    await admin().query("SELECT smartsync.prune_changes('tenant_1', interval '30 days')");
    const res = await call(`${srv.url}/pull?entityTypes=pets&cursor=${encodeURIComponent(first.body.cursor)}`, jwt);
    expect(res.status).toBe(410);
    expect(res.body.code).toBe("SS505");
  });
});
