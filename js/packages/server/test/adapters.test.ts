/**
 * The handler outside Next.js: on node:http (the request's signal aborts when
 * the client goes away) and mounted in Express (before or after a body parser).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterAll, describe, expect, test } from "vitest";
import { createLogger, expressMiddleware, serve } from "../src/index.js";
import { admin, call, closeAdmin, openLive, phone, startServer, tablet, token } from "./helpers.js";

afterAll(async () => {
  await closeAdmin();
});

describe("node:http", () => {
  test("the request's signal aborts when the client closes the socket", async () => {
    let aborted!: () => void;
    const sawAbort = new Promise<void>((resolve) => {
      aborted = resolve;
    });
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const server = await serve(
      (request) =>
        new Promise<Response>((resolve) => {
          entered();
          request.signal.addEventListener("abort", () => {
            aborted();
            resolve(new Response("late"));
          });
        }),
      { port: 0, host: "127.0.0.1" },
    );
    const req = http.get({ host: "127.0.0.1", port: server.port, path: "/slow" });
    req.on("error", () => undefined);
    await inHandler;
    req.destroy();
    await sawAbort;
    await server.close();
  });

  test("a client that goes away in the middle of its body is logged as 499 (SS907), not as a server error", async () => {
    const entries: Record<string, unknown>[] = [];
    let logged!: (entry: Record<string, unknown>) => void;
    const requestLogged = new Promise<Record<string, unknown>>((resolve) => {
      logged = resolve;
    });
    const logger = createLogger({
      level: "info",
      write: (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        entries.push(entry);
        if (entry["msg"] === "request" && entry["route"] === "/push") logged(entry);
      },
    });
    const srv = await startServer({ live: { signal: "none" }, logger });
    try {
      const jwt = await token(tablet);
      const req = http.request(`${srv.url}/push`, {
        method: "POST",
        headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json", "content-length": "1000" },
      });
      req.on("error", () => undefined);
      const received = new Promise((resolve) => srv.server.server.once("request", resolve));
      req.write('{"operations": [');
      await received;
      req.destroy();
      const entry = await requestLogged;
      expect(entry).toMatchObject({ level: "info", status: 499, code: "SS907" });
      expect(entries.filter((e) => e["msg"] === "unexpected error")).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  test("a request body streams in; its size limit is enforced while reading", async () => {
    const srv = await startServer({ live: { signal: "none" }, maxBodyBytes: 1000 });
    try {
      const jwt = await token(tablet);
      // no Content-Length: a chunked body of 2,000 bytes
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(`{"operations": [], "pad": "${"x".repeat(1000)}`));
          c.enqueue(new TextEncoder().encode(`${"y".repeat(1000)}"}`));
          c.close();
        },
      });
      const res = await fetch(`${srv.url}/push`, {
        method: "POST",
        headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
        body,
        duplex: "half",
      } as RequestInit);
      expect(res.status).toBe(413);
      expect(((await res.json()) as { code: string }).code).toBe("SS903");
    } finally {
      await srv.close();
    }
  });
});

describe("node:http without the Fetch API", () => {
  test("createSyncHandler's handler is served from IncomingMessage to ServerResponse; wrapped as a plain Fetch function it answers the same", async () => {
    const srv = await startServer({ live: { signal: "poll", pollIntervalMs: 10 }, maxBodyBytes: 1000 });
    // a plain (Request) => Promise<Response>: served through Request and Response objects
    const plain = await serve((request) => srv.handler(request), { port: 0, host: "127.0.0.1" });
    const urls = [srv.url, `http://127.0.0.1:${plain.port}/api/sync`];
    try {
      const jwt = await token(phone);
      // a row for the live streams below to hear about (its own signal long past when they open)
      const c = await admin().query("INSERT INTO tenant_happy_paws.clients (practice_id, name) VALUES (1, 'Node Ann') RETURNING id");
      const answers = [];
      for (const url of urls) {
        const head = await fetch(`${url}/health`, { method: "HEAD" });
        const stats = await call(`${url}/conflicts/stats`, jwt, { headers: { "x-request-id": "req-7" } });
        const noToken = await call(`${url}/pull`, undefined);
        const tooLarge = await call(`${url}/push`, jwt, { body: `{"pad": "${"x".repeat(2000)}"}` });
        const notJson = await call(`${url}/push`, jwt, { body: "{}", headers: { "content-type": "text/plain" } });
        const method = await call(`${url}/pull`, jwt, { method: "DELETE" });
        const unknown = await call(`${url}/pull?nope=1`, jwt);
        answers.push({
          head: [head.status, head.headers.get("content-type"), Number(head.headers.get("content-length")) > 0, await head.text()],
          stats: [stats.status, stats.headers.get("x-request-id"), stats.headers.get("cache-control"), typeof stats.body],
          noToken: [noToken.status, noToken.body.code, noToken.headers.get("www-authenticate")],
          tooLarge: [tooLarge.status, tooLarge.body.code],
          notJson: [notJson.status, notJson.body.code],
          method: [method.status, method.body.code, method.headers.get("allow")],
          unknown: [unknown.status, unknown.body.code],
        });
      }
      expect(answers[0]).toEqual({
        head: [200, "application/json; charset=utf-8", true, ""],
        stats: [200, "req-7", "no-store", "object"],
        noToken: [401, "PGRST302", "Bearer"],
        tooLarge: [413, "SS903"],
        notJson: [415, "SS904"],
        method: [405, "SS902", "GET, HEAD"],
        unknown: [400, "SS905"],
      });
      expect(answers[1]).toEqual(answers[0]);

      // a live stream either way: a chunked body whose events arrive as they happen
      for (const url of urls) {
        const live = await openLive(`${url}/live`, jwt);
        try {
          expect(live.response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
          expect(live.response.headers.get("transfer-encoding")).toBe("chunked");
          expect((await live.next()).event).toBe("ready");
          expect(JSON.parse((await live.next()).data).reason).toBe("connected");
          await admin().query("UPDATE tenant_happy_paws.clients SET name = $1 WHERE id = $2", [url, c.rows[0].id]);
          const ev = await live.next();
          expect([ev.event, JSON.parse(ev.data)]).toEqual(["changed", { reason: "change", practices: ["1"] }]);
        } finally {
          await live.close();
        }
      }
    } finally {
      await plain.close();
      await srv.close();
    }
  });
});

describe("Express", () => {
  async function listen(app: express.Express): Promise<{ url: string; close: () => Promise<void> }> {
    const server = app.listen(0, "127.0.0.1");
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    const port = (server.address() as AddressInfo).port;
    return {
      url: `http://127.0.0.1:${port}`,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  test("mounted before a body parser: the endpoints answer, other routes go on to next()", async () => {
    const srv = await startServer({ live: { signal: "none" } });
    const app = express();
    app.use(expressMiddleware(srv.handler));
    app.use(express.json());
    app.get("/other", (_req, res) => {
      res.json({ other: true });
    });
    const web = await listen(app);
    try {
      const jwt = await token(tablet);
      expect((await call(`${web.url}/api/sync/conflicts/stats`, jwt)).status).toBe(200);
      const push = await call(`${web.url}/api/sync/push`, jwt, {
        body: { operations: [{ id: 701, operation: "create", entityType: "clients", entityId: "temp_e1", data: { name: "Express Ann" }, timestamp: 1 }] },
      });
      expect(push.body.results[0]).toMatchObject({ success: true, tempId: "temp_e1" });
      expect((await call(`${web.url}/other`, undefined)).body).toEqual({ other: true });
    } finally {
      await web.close();
      await srv.close();
    }
  });

  test("after express.json(): the parsed body is passed on", async () => {
    const srv = await startServer({ live: { signal: "none" } });
    const app = express();
    app.use(express.json());
    app.use(expressMiddleware(srv.handler));
    const web = await listen(app);
    try {
      const push = await call(`${web.url}/api/sync/push`, await token(tablet), {
        body: { operations: [{ id: 702, operation: "create", entityType: "clients", entityId: "temp_e2", data: { name: "Parsed Ann" }, timestamp: 1 }] },
      });
      expect(push.status).toBe(200);
      expect(push.body.results[0]).toMatchObject({ success: true, tempId: "temp_e2" });
    } finally {
      await web.close();
      await srv.close();
    }
  });
});

describe("Fetch API hosts (Next.js route handlers, Hono, Bun)", () => {
  test("the handler is a plain (Request) => Promise<Response>", async () => {
    const srv = await startServer({ live: { signal: "none" } });
    try {
      // what a Next.js app/api/sync/[...path]/route.ts exporting { GET, POST } calls
      const res = await srv.handler(
        new Request("https://clinic.example/api/sync/pull?entityTypes=clients&limit=1", {
          headers: { authorization: `Bearer ${await token(tablet)}` },
        }),
      );
      expect(res.status).toBe(200);
      const body = (await res.json()) as { success: boolean; changes: unknown[] };
      expect(body.success).toBe(true);
      expect(body.changes.length).toBe(1);
    } finally {
      await srv.close();
    }
  });
});
