/**
 * GET /live: server-sent events that tell a client when to pull.
 *
 *   GET /live?cursor=...&entityTypes=...   Authorization: Bearer <jwt>
 *   (or ?access_token=<jwt>, for EventSource, which cannot send headers)
 *
 * Before the stream opens, the request runs api.sync_changed(cursor) as the
 * JWT's role, as every request does: a token the database refuses (unknown
 * tenant, a cursor of another tenant, ...) gets its error status, not a
 * stream. Then the stream sends:
 *
 *   retry: <ms>                        EventSource's reconnection delay
 *   event: changed  id: <epoch>-<n>    data: {"reason", "practices"}
 *                                      pull now, with your cursor. Sent at once when
 *                                      the cursor has changes waiting (or without a
 *                                      cursor, unless Last-Event-ID shows nothing was
 *                                      missed), and on every change signal of the
 *                                      JWT's tenant and practice
 *   event: heartbeat                   data: {"time"}: every heartbeatMs
 *
 * A client that reconnects (EventSource sends Last-Event-ID) and missed
 * events is poked at once, so it simply pulls.
 */
import type pg from "pg";
import type { Answer } from "./answer.js";
import { changedNow, type ApiRouteContext } from "./api-routes.js";
import { HttpError, ServerErrorCode } from "./errors.js";
import type { Claims } from "./jwt.js";
import type { LiveHub } from "./live-hub.js";
import { formatEvent, SseStream } from "./sse-stream.js";

export interface LiveRouteContext extends ApiRouteContext {
  hub: LiveHub;
  retryMs: number;
  maxStreams: number;
  stallTimeoutMs: number;
  now: () => number;
  /** the stream opened or closed (metrics) */
  onStreamCount: (delta: number) => void;
  pool: pg.Pool;
}

/** The claim as text (tenant and practice ids may be numbers in a JWT). */
function claimText(claims: Claims, ...names: string[]): string | null {
  for (const n of names) {
    const v = claims[n];
    if (typeof v === "string" && v !== "") return v;
    if (typeof v === "number" && Number.isFinite(v)) return String(v);
  }
  return null;
}

export async function liveRoute(ctx: LiveRouteContext): Promise<Answer> {
  if (ctx.hub.size >= ctx.maxStreams) {
    throw new HttpError(
      503,
      { code: ServerErrorCode.unavailable, message: "this server has as many live streams as it allows" },
      { headers: { "Retry-After": "5" } },
    );
  }
  const tenant = claimText(ctx.identity.claims, "tenant_id", "tenantId");
  const practice = claimText(ctx.identity.claims, "practice_id", "practiceId");
  const hasCursor = (ctx.url.searchParams.get("cursor") ?? "") !== "";
  const lastEventId = ctx.request.header("last-event-id");

  // subscribed before the check, so a change that commits during it is not missed
  let unsubscribe: () => void = () => undefined;
  const stream = new SseStream({
    highWaterMark: 16 * 1024,
    stallTimeoutMs: ctx.stallTimeoutMs,
    now: ctx.now,
    onClose: () => {
      unsubscribe();
      ctx.onStreamCount(-1);
    },
  });
  const sub = { tenant: tenant ?? "", practice, stream };
  unsubscribe = ctx.hub.subscribe(sub);
  ctx.onStreamCount(1);
  stream.send(formatEvent({ retry: ctx.retryMs, event: "ready", id: ctx.hub.currentId(), data: "{}" }));

  // the database decides whether this identity may read, and whether the cursor is good
  let waiting: boolean;
  try {
    waiting = await changedNow(ctx);
    if (tenant === null) {
      // sync_changed refuses a context without a tenant; this is never reached
      throw new HttpError(401, { code: "SS201", message: "no tenant in the request context" });
    }
  } catch (err) {
    stream.close();
    throw err;
  }
  ctx.request.signal.addEventListener("abort", () => stream.close(), { once: true });
  if (ctx.request.signal.aborted) stream.close();
  if (hasCursor ? waiting : ctx.hub.missedSince(tenant, lastEventId)) {
    ctx.hub.poke(sub, hasCursor ? "pending" : lastEventId === null ? "connected" : "reconnected");
  }
  // node-adapter.ts writes the stream to the socket itself; a Fetch API host reads stream.readable
  return { status: 200, body: "", headers: undefined, stream };
}
