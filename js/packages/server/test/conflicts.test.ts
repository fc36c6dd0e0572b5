/**
 * The conflict endpoints, and tenant isolation over HTTP: what a tenant's
 * token reaches is that tenant's data, whatever the request names.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { admin, call, closeAdmin, startServer, tablet, token, type TestServer } from "./helpers.js";

let srv: TestServer;
let jwt: string;
let clientId: number;

beforeAll(async () => {
  srv = await startServer({ live: { signal: "none" } });
  jwt = await token(tablet);
  const c = await admin().query(
    "INSERT INTO tenant_happy_paws.clients (practice_id, name, email) VALUES (1, 'Conflicted Ann', 'ann@example.com') RETURNING id",
  );
  clientId = Number(c.rows[0].id);
  // the office changes the e-mail; the tablet's offline edit of version 1 conflicts
  await admin().query("UPDATE tenant_happy_paws.clients SET email = 'ann@office.example' WHERE id = $1", [clientId]);
});
afterAll(async () => {
  await srv.close();
  await closeAdmin();
});

describe("conflicts", () => {
  let conflictId: number;

  test("a conflicting push is stored; GET /conflicts lists it, GET /conflicts/stats counts it", async () => {
    const push = await call(`${srv.url}/push`, jwt, {
      body: {
        operations: [
          { id: 501, operation: "update", entityType: "clients", entityId: clientId, data: { email: "ann@tablet.example" }, version: 1, timestamp: 1 },
        ],
      },
    });
    expect(push.status).toBe(200);
    expect(push.body.results[0]).toMatchObject({ conflict: true, severity: "high" });
    conflictId = push.body.results[0].conflictId;

    const list = await call(`${srv.url}/conflicts?severity=high&entityType=clients&limit=10`, jwt);
    expect(list.status).toBe(200);
    expect(list.body.conflicts).toEqual(
      expect.arrayContaining([expect.objectContaining({ conflictId, entityId: clientId, affectedFields: ["email"] })]),
    );
    const stats = await call(`${srv.url}/conflicts/stats`, jwt);
    expect(stats.status).toBe(200);
    expect(stats.body.open).toBeGreaterThanOrEqual(1);
    expect(stats.body.bySeverity.high).toBeGreaterThanOrEqual(1);
  });

  test("POST /conflicts/{id}/resolve with {strategy}; again is 409", async () => {
    const res = await call(`${srv.url}/conflicts/${conflictId}/resolve`, jwt, { body: { strategy: "client-wins" } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ conflictId, status: "resolved", strategy: "client-wins", written: true });
    const row = await admin().query("SELECT email FROM tenant_happy_paws.clients WHERE id = $1", [clientId]);
    expect(row.rows[0].email).toBe("ann@tablet.example");
    const again = await call(`${srv.url}/conflicts/${conflictId}/resolve`, jwt, { body: { strategy: "client-wins" } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("SS602");
  });

  test("manual resolution takes resolvedData", async () => {
    await admin().query("UPDATE tenant_happy_paws.clients SET phone = '555-0100' WHERE id = $1", [clientId]);
    const v = await admin().query("SELECT version FROM tenant_happy_paws.clients WHERE id = $1", [clientId]);
    const push = await call(`${srv.url}/push`, jwt, {
      body: {
        operations: [
          {
            id: 502,
            operation: "update",
            entityType: "clients",
            entityId: clientId,
            data: { phone: "555-0199" },
            version: Number(v.rows[0].version) - 1,
            timestamp: 2,
          },
        ],
      },
    });
    const id = push.body.results[0].conflictId;
    const res = await call(`${srv.url}/conflicts/${id}/resolve`, jwt, {
      body: { strategy: "manual", resolvedData: { phone: "555-0123" } },
    });
    expect(res.status).toBe(200);
    const row = await admin().query("SELECT phone FROM tenant_happy_paws.clients WHERE id = $1", [clientId]);
    expect(row.rows[0].phone).toBe("555-0123");
  });

  test("errors: an unknown conflict 404, a bad strategy 400, a malformed body 400", async () => {
    const unknown = await call(`${srv.url}/conflicts/999999/resolve`, jwt, { body: { strategy: "server-wins" } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("SS601");
    const strategy = await call(`${srv.url}/conflicts/${conflictId}/resolve`, jwt, { body: { strategy: "coin-toss" } });
    expect(strategy.status).toBe(400);
    const noStrategy = await call(`${srv.url}/conflicts/${conflictId}/resolve`, jwt, { body: { resolvedData: {} } });
    expect(noStrategy.status).toBe(400);
    expect(noStrategy.body.code).toBe("SS905");
    const extra = await call(`${srv.url}/conflicts/${conflictId}/resolve`, jwt, { body: { strategy: "merge", tenantId: "x" } });
    expect(extra.status).toBe(400);
    expect(extra.body.message).toBe('unknown field "tenantId"');
    const notNumber = await call(`${srv.url}/conflicts/abc/resolve`, jwt, { body: { strategy: "merge" } });
    expect(notNumber.status).toBe(400);
    expect(notNumber.body.code).toBe("22P02");
    const badFilter = await call(`${srv.url}/conflicts?severity=apocalyptic`, jwt);
    expect(badFilter.status).toBe(400);
    expect(badFilter.body.code).toBe("SS609");
  });
});

describe("tenant isolation over HTTP", () => {
  test("a token of another tenant sees none of this tenant's rows, conflicts or cursors", async () => {
    const other = await token({ ...tablet, tenant_id: "other-clinic", client_id: "oc-tablet" });
    await admin().query("INSERT INTO tenant_other_clinic.clients (practice_id, name) VALUES (1, 'Other Ann')");

    const mine = await call(`${srv.url}/pull?entityTypes=clients`, jwt);
    const theirs = await call(`${srv.url}/pull?entityTypes=clients`, other);
    const names = (r: { body: { changes: Array<{ data: { name: string } }> } }) => r.body.changes.map((c) => c.data.name);
    expect(names(mine)).toContain("Conflicted Ann");
    expect(names(mine)).not.toContain("Other Ann");
    expect(names(theirs)).toContain("Other Ann");
    expect(names(theirs)).not.toContain("Conflicted Ann");

    // this tenant's cursor with the other tenant's token: 403
    const stolen = await call(`${srv.url}/pull?entityTypes=clients&cursor=${encodeURIComponent(mine.body.cursor)}`, other);
    expect(stolen.status).toBe(403);
    expect(stolen.body.code).toBe("SS503");
    // this tenant's conflict, resolved with the other token: unknown (404)
    const conflicts = await call(`${srv.url}/conflicts`, jwt);
    const someId = conflicts.body.conflicts[0]?.conflictId ?? 1;
    const foreign = await call(`${srv.url}/conflicts/${someId}/resolve`, other, { body: { strategy: "server-wins" } });
    expect(foreign.status).toBe(404);
    const otherStats = await call(`${srv.url}/conflicts/stats`, other);
    expect(otherStats.body.open).toBe(0);
  });

  test("a push naming another tenant in its body changes nothing there: the JWT decides", async () => {
    const res = await call(`${srv.url}/push`, jwt, {
      body: {
        operations: [
          {
            id: 601,
            operation: "create",
            entityType: "clients",
            entityId: "temp_x",
            data: { name: "Smuggled" },
            tenantId: "other-clinic",
            timestamp: 1,
          },
        ],
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({ success: false, code: "SS420" });
    const there = await admin().query("SELECT count(*)::int AS n FROM tenant_other_clinic.clients WHERE name = 'Smuggled'");
    const here = await admin().query("SELECT count(*)::int AS n FROM tenant_happy_paws.clients WHERE name = 'Smuggled'");
    expect([there.rows[0].n, here.rows[0].n]).toEqual([0, 0]);
  });

  test("a practice's token does not see another practice's rows", async () => {
    await admin().query("INSERT INTO tenant_happy_paws.clients (practice_id, name) VALUES (2, 'Practice Two Bo')");
    const p1 = await call(`${srv.url}/pull?entityTypes=clients`, jwt);
    expect(p1.body.changes.map((c: { data: { name: string } }) => c.data.name)).not.toContain("Practice Two Bo");
    const p2 = await call(`${srv.url}/pull?entityTypes=clients`, await token({ ...tablet, practice_id: 2, client_id: "p2" }));
    expect(p2.body.changes.map((c: { data: { name: string } }) => c.data.name)).toContain("Practice Two Bo");
  });
});
