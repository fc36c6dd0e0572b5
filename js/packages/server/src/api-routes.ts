/**
 * The endpoints that call one api function each, with the spec's request and
 * response bodies (push and pull exactly as the spec has them):
 *
 *   POST /push                      api.sync_push(body)          READ WRITE
 *   GET  /pull?lastSyncTimestamp=&practiceId=&entityTypes=&cursor=&limit=
 *                                   api.sync_pull(...)           READ ONLY
 *   GET  /changed?cursor=&entityTypes=&practiceId=
 *                                   api.sync_changed(...)        READ ONLY  -> {"changed": bool}
 *   GET  /conflicts?entityType=&severity=&minAge=&limit=
 *                                   api.list_conflicts(...)      READ ONLY
 *   GET  /conflicts/stats           api.conflict_stats()         READ ONLY
 *   POST /conflicts/{id}/resolve    api.resolve_conflict(id, strategy, resolvedData)  READ WRITE
 *
 * The api function's jsonb result is the response body, unchanged: its text
 * goes from the database's answer to the socket without being parsed.
 */
import type pg from "pg";
import { jsonAnswer, type Answer } from "./answer.js";
import { apiCall, apiCallWithBody, runRequest, type ApiArgument, type RequestIdentity } from "./database.js";
import { invalidParameter, queryParams, readBody, readBodyText, type SyncRequest } from "./request-input.js";

export interface ApiRouteContext {
  request: SyncRequest;
  url: URL;
  identity: RequestIdentity;
  pool: pg.Pool;
  apiSchema: string;
  statementTimeoutMs: number;
  maxBodyBytes: number;
}

/** Calls one api function in one request transaction; returns its result text. */
async function call(
  ctx: ApiRouteContext,
  readOnly: boolean,
  make: () => { text: string; values: ApiArgument[] },
): Promise<string> {
  return runRequest(
    ctx.pool,
    ctx.apiSchema,
    ctx.identity,
    { readOnly, statementTimeoutMs: ctx.statementTimeoutMs },
    make(),
  );
}

/** Query parameters mapped to the api function's parameter names, in order. */
function argsFrom(params: Map<string, string>, names: Record<string, string>): Array<[string, string]> {
  const args: Array<[string, string]> = [];
  for (const [query, param] of Object.entries(names)) {
    const v = params.get(query);
    if (v !== undefined) args.push([param, v]);
  }
  return args;
}

/** POST /push: the body, as sent, is the push payload (its bytes go to the database undecoded). */
export async function pushRoute(ctx: ApiRouteContext): Promise<Answer> {
  queryParams(ctx.url, []);
  const body = await readBodyText(ctx.request, ctx.maxBodyBytes);
  if (typeof body === "string" && body.trim() === "") throw invalidParameter("the push body is empty", "Send the spec's {\"operations\": [...]} as JSON.");
  return jsonAnswer(await call(ctx, false, () => apiCallWithBody(ctx.apiSchema, "sync_push", body)));
}

const PULL_PARAMS = {
  lastSyncTimestamp: "lastSyncTimestamp",
  practiceId: "practiceId",
  entityTypes: "entityTypes",
  cursor: "p_cursor",
  limit: "p_limit",
};

/** GET /pull: the spec's query parameters, plus cursor and limit. */
export async function pullRoute(ctx: ApiRouteContext): Promise<Answer> {
  const args = argsFrom(queryParams(ctx.url, Object.keys(PULL_PARAMS)), PULL_PARAMS);
  return jsonAnswer(await call(ctx, true, () => apiCall(ctx.apiSchema, "sync_pull", args)));
}

const CHANGED_PARAMS = { cursor: "p_cursor", entityTypes: "entityTypes", practiceId: "practiceId" };

/** GET /changed: whether a pull with the cursor would deliver anything now. */
export async function changedRoute(ctx: ApiRouteContext): Promise<Answer> {
  return jsonAnswer((await changedNow(ctx)) ? '{"changed":true}' : '{"changed":false}');
}

/** api.sync_changed() with the request's cursor (GET /changed, and GET /live before its stream opens). */
export async function changedNow(ctx: ApiRouteContext): Promise<boolean> {
  const args = argsFrom(queryParams(ctx.url, Object.keys(CHANGED_PARAMS)), CHANGED_PARAMS);
  return (await call(ctx, true, () => apiCall(ctx.apiSchema, "sync_changed", args))) === "true";
}

const CONFLICT_PARAMS = { entityType: "p_entity_type", severity: "p_severity", minAge: "p_min_age", limit: "p_limit" };

/** GET /conflicts: the open conflicts of the JWT's tenant (and practice). */
export async function conflictsRoute(ctx: ApiRouteContext): Promise<Answer> {
  const args = argsFrom(queryParams(ctx.url, Object.keys(CONFLICT_PARAMS)), CONFLICT_PARAMS);
  return jsonAnswer(await call(ctx, true, () => apiCall(ctx.apiSchema, "list_conflicts", args)));
}

/** GET /conflicts/stats */
export async function conflictStatsRoute(ctx: ApiRouteContext): Promise<Answer> {
  queryParams(ctx.url, []);
  return jsonAnswer(await call(ctx, true, () => apiCall(ctx.apiSchema, "conflict_stats", [])));
}

/** POST /conflicts/{id}/resolve with {strategy, resolvedData}. */
export async function resolveRoute(ctx: ApiRouteContext, id: string): Promise<Answer> {
  queryParams(ctx.url, []);
  const text = await readBody(ctx.request, ctx.maxBodyBytes);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalidParameter("the body is not JSON", 'Send {"strategy": "...", "resolvedData": {...}}.');
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalidParameter("the body is not a JSON object", 'Send {"strategy": "...", "resolvedData": {...}}.');
  }
  const fields = body as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (key !== "strategy" && key !== "resolvedData") {
      throw invalidParameter(`unknown field ${JSON.stringify(key)}`, "The body takes strategy and resolvedData.");
    }
  }
  if (typeof fields.strategy !== "string") {
    throw invalidParameter(
      "strategy is missing or not a string",
      "One of server-wins, client-wins, merge, last-write-wins, manual.",
    );
  }
  const resolved = fields.resolvedData === undefined ? null : JSON.stringify(fields.resolvedData);
  const strategy = fields.strategy;
  return jsonAnswer(
    await call(ctx, false, () =>
      apiCall(ctx.apiSchema, "resolve_conflict", [
        ["conflict_id", id],
        ["strategy", strategy],
        ["resolved_data", resolved],
      ]),
    ),
  );
}
