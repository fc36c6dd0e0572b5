/**
 * What the tests share: a server on a free loopback port, tokens, a small
 * server-sent events reader, and SQL as the superuser (a "back office" that
 * writes to tenant tables directly).
 */
import { SignJWT } from "jose";
import pg from "pg";
import { inject } from "vitest";
import { createSyncHandler, serve, silentLogger, type SyncHandler, type SyncHandlerOptions } from "../src/index.js";
import type { NodeServer } from "../src/node-adapter.js";

export const SECRET = "reallyreallyreallyreallyverysafe";

/** Signs claims with the test secret (HS256), valid for an hour unless said otherwise. */
export async function token(claims: Record<string, unknown>, options: { expiresIn?: string | number; secret?: string } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "1h")
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

/** The tablet of the spec: tenant happy-paws, practice 1, user 42. */
export const tablet = {
  role: "web_user",
  tenant_id: "happy-paws",
  practice_id: 1,
  sub: "42",
  client_id: "tablet-1",
  permissions: ["clients:create", "pets:create", "appointments:create", "appointments:update", "clients:update", "*:read"],
};

/** A phone of the same practice that only reads. */
export const phone = { role: "web_user", tenant_id: "happy-paws", practice_id: 1, sub: "7", client_id: "phone-9", permissions: ["*:read"] };

export interface TestServer {
  url: string;
  handler: SyncHandler;
  server: NodeServer;
  close(): Promise<void>;
}

/** A handler served on 127.0.0.1 with a free port, logged in as authenticator. */
export async function startServer(overrides: Partial<SyncHandlerOptions> = {}): Promise<TestServer> {
  const db = inject("db");
  const handler = createSyncHandler({
    connection: db.authenticator,
    jwt: { secret: SECRET },
    logger: silentLogger,
    processMetrics: false,
    ...overrides,
  });
  await handler.ready;
  const server = await serve(handler, { port: 0, host: "127.0.0.1" });
  const url = `http://127.0.0.1:${server.port}/api/sync`;
  return {
    url,
    handler,
    server,
    close: async () => {
      const closed = server.close();
      await handler.close({ timeoutMs: 2000 });
      server.server.closeAllConnections();
      await closed;
    },
  };
}

/** The superuser's pool (for writes "by the back office" and for checks). */
let adminPool: pg.Pool | undefined;
export function admin(): pg.Pool {
  adminPool ??= new pg.Pool({ ...inject("db").admin, max: 3 });
  return adminPool;
}
export async function closeAdmin(): Promise<void> {
  await adminPool?.end();
  adminPool = undefined;
}

/** One server-sent event. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Reads server-sent events from a fetch response. */
export class SseReader {
  readonly response: Response;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer = "";
  readonly #decoder = new TextDecoder();
  /** a read still under way (kept across a timeout, so no chunk is lost) */
  #reading: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  retry: number | undefined;

  constructor(response: Response) {
    this.response = response;
    if (response.body === null) throw new Error("no body");
    this.#reader = response.body.getReader();
  }

  /** The next event (skipping heartbeats unless asked), or throws after timeoutMs. */
  async next(options: { timeoutMs?: number; heartbeats?: boolean } = {}): Promise<SseEvent> {
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    for (;;) {
      const sep = this.#buffer.indexOf("\n\n");
      if (sep >= 0) {
        const block = this.#buffer.slice(0, sep);
        this.#buffer = this.#buffer.slice(sep + 2);
        const ev: SseEvent = { event: "message", data: "" };
        const data: string[] = [];
        for (const line of block.split("\n")) {
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "id") ev.id = value;
          else if (field === "event") ev.event = value;
          else if (field === "data") data.push(value);
          else if (field === "retry") this.retry = Number(value);
        }
        ev.data = data.join("\n");
        if (ev.event === "heartbeat" && options.heartbeats !== true) continue;
        return ev;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a server-sent event");
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.#reading ??= this.#reader.read();
      const chunk = await Promise.race([
        this.#reading,
        new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), left);
        }),
      ]);
      clearTimeout(timer);
      if (chunk === "timeout") throw new Error("timed out waiting for a server-sent event");
      this.#reading = undefined;
      if (chunk.done) throw new Error("the stream ended");
      this.#buffer += this.#decoder.decode(chunk.value, { stream: true });
    }
  }

  /** True when no event (other than heartbeats) arrives within ms. */
  async quietFor(ms: number): Promise<boolean> {
    try {
      await this.next({ timeoutMs: ms });
      return false;
    } catch (err) {
      if ((err as Error).message.startsWith("timed out")) return true;
      throw err;
    }
  }

  /** Resolves when the server ends the stream. */
  async ended(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.next({ timeoutMs: Math.max(1, deadline - Date.now()), heartbeats: true });
      } catch (err) {
        if ((err as Error).message === "the stream ended") return;
        throw err;
      }
    }
  }

  async close(): Promise<void> {
    await this.#reader.cancel().catch(() => undefined);
  }
}

/** Opens a live stream. */
export async function openLive(url: string, jwt: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${jwt}`, accept: "text/event-stream", ...headers } });
  if (res.status !== 200) throw new Error(`live stream refused: ${res.status} ${await res.text()}`);
  return new SseReader(res);
}

/** fetch with a bearer token; returns status, headers and parsed JSON body. */
export async function call(
  url: string,
  jwt: string | undefined,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (jwt !== undefined) headers.authorization = `Bearer ${jwt}`;
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(url, {
    method: init.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}
