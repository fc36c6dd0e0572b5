/*
 * changed.c: smartsync.sync_changed(p_cursor), "has anything changed since
 * this cursor?" for clients that poll.
 *
 * It answers exactly what the next sync_pull() with the same cursor would
 * find, for almost nothing: the same cursor checks, the same snapshot logic
 * (the caller's active snapshot against the cursor's), and the pull's own
 * change-log scan, stopped at the first change the pull would deliver.  No
 * page is built and no cursor signed, and its queries run from kept plans,
 * generic ones (the function is declared SET plan_cache_mode =
 * force_generic_plan), so a call plans nothing.  Like the pull it never writes or
 * assigns an xid, so it runs under PostgREST GET (READ ONLY) and on a hot
 * standby.
 *
 *   true   a pull now delivers at least one change, or the cursor is in the
 *          middle of a listing or a drain (the response that gave it said
 *          hasMore), or there is no cursor (the first pull lists everything)
 *   false  a pull now delivers nothing
 *
 * Errors are the pull's: SS501-SS505 for the cursor, SS106/SS508/SS511 for
 * p_entity_types, SS507 for p_practice_id, SS201-SS203 for the context.
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/xid8.h"

#include "smartsync.h"
#include "citus.h"
#include "pull.h"

PG_FUNCTION_INFO_V1(smartsync_sync_changed);

/*
 * The schema of tenant_id (SS203 when it is not provisioned), from a kept
 * plan (context.c's sync_tenant_schema() plans its query on every call).
 */
static char *
changed_tenant_schema(const char *tenant_id)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	char	   *schema = NULL;
	int			rc;

	values[0] = CStringGetTextDatum(tenant_id);
	rc = SPI_execute_plan(pull_plan("SELECT schema_name::text FROM smartsync.tenants WHERE tenant_id = $1",
									   1, argtypes),
						  values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
		schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	SPI_freetuptable(SPI_tuptable);
	if (schema == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_UNKNOWN_TENANT),
				 errmsg("tenant \"%s\" is not provisioned", tenant_id),
				 errhint("Provision it with smartsync.provision_tenant().")));
	return schema;
}

/*
 * True when the pull's change-log scan (in_xip: restricted to the xids of
 * values[4]) has a change the pull would deliver: one with no later change
 * of its entity in the request's practice (change_probe_query() in pull.c,
 * the pull's own scan without its order and limit, so a generic plan reads
 * the new rows lazily and stops at the first one that counts).
 */
static bool
probe_changes(PullRequest *req, bool in_xip, Datum *values)
{
	static Oid	argtypes[CHANGE_NPARAMS] = {XID8OID, INT8OID, XID8OID, XID8ARRAYOID,
		XID8ARRAYOID, TEXTARRAYOID, TEXTOID, TEXTARRAYOID, TEXTOID, TIMESTAMPTZOID, INT8OID,
	TIMESTAMPTZOID};
	char		nulls[CHANGE_NPARAMS];
	char	   *q = change_probe_query(req, in_xip);
	int			rc;
	bool		found;

	memset(nulls, ' ', sizeof(nulls));
	if (!req->practice)
	{
		nulls[6] = 'n';
		nulls[7] = 'n';
	}
	if (!req->client)
		nulls[8] = 'n';
	nulls[9] = 'n';
	nulls[11] = 'n';
	values[1] = Int64GetDatum(PG_INT64_MIN);
	values[10] = Int64GetDatum(PG_INT64_MAX);

	rc = SPI_execute_plan(pull_plan(q, CHANGE_NPARAMS, argtypes), values, nulls, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	found = SPI_processed > 0;
	SPI_freetuptable(SPI_tuptable);
	return found;
}

/*
 * Whether the drain from the cursor's snapshot base to snapshot now (what the
 * next pull delivers) holds a change: first the xids base saw in progress
 * that have committed since, then the xids from base's xmax to now's.
 */
static bool
drain_has_changes(PullRequest *req, const PullSnap *base, const PullSnap *now)
{
	Datum		values[CHANGE_NPARAMS];
	uint64	   *xids = palloc(sizeof(uint64) * Max(base->nxip, 1));
	int			n = 0;

	memset(values, 0, sizeof(values));
	values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(0));
	values[2] = FullTransactionIdGetDatum(FullTransactionIdFromU64(now->xmax));
	values[3] = xid_array(now->xip, now->nxip);
	values[4] = xid_array(NULL, 0);
	values[5] = req->wanted_types;
	if (req->practice)
	{
		values[6] = CStringGetTextDatum(req->practice);
		values[7] = req->global_types;
	}
	if (req->client)
		values[8] = CStringGetTextDatum(req->client);

	for (int i = 0; i < base->nxip; i++)
	{
		if (snap_visible(now, base->xip[i]))
			xids[n++] = base->xip[i];
	}
	if (n > 0)
	{
		values[4] = xid_array(xids, n);
		if (probe_changes(req, true, values))
			return true;
	}
	values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(base->xmax));
	values[4] = xid_array(NULL, 0);
	return probe_changes(req, false, values);
}

/*
 * smartsync.sync_changed(p_cursor, p_entity_types, p_practice_id) returns
 * boolean: whether sync_pull() with the same arguments would deliver
 * anything now (see the file header).
 */
Datum
smartsync_sync_changed(PG_FUNCTION_ARGS)
{
	MemoryContext cxt;
	MemoryContext old;
	SyncContext ctx;
	PullRequest req;
	PullCursor	cur;
	PullSnap	now_snap;
	uint8		key[SECRET_MAX_LEN];
	int			keylen;
	char	   *arg_cursor = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *arg_types = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *arg_practice = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *filter;
	const PullSnap *top;
	List	   *wanted = NIL;
	List	   *global = NIL;
	bool		result;
	Datum		routed;
	uint32		log_epoch;
	bool		log_native;

	if (sync_citus_route(fcinfo, &routed))	/* Citus: ask the tenant's node */
		return routed;
	memset(&req, 0, sizeof(req));
	sync_context_read(&ctx);
	sync_context_require_tenant(&ctx);

	/* practice: as in sync_pull, the context's, never widened (1, "1", 1.0 alike) */
	if (arg_practice != NULL && arg_practice[0] == '\0')
		arg_practice = NULL;
	if (arg_practice != NULL)
		arg_practice = sync_canonical_id(arg_practice, strlen(arg_practice));
	if (arg_practice != NULL && ctx.practice_id != NULL &&
		strcmp(arg_practice, ctx.practice_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PRACTICE_MISMATCH),
				 errmsg("practice \"%s\" is not the practice of the request", sync_clip_str(arg_practice)),
				 errdetail("The request context names practice \"%s\".", ctx.practice_id),
				 errhint("Leave p_practice_id out, or send the context's practice.")));
	req.practice = ctx.practice_id ? ctx.practice_id : arg_practice;
	req.client = ctx.client_id;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "smartsync changed", ALLOCSET_SMALL_SIZES);
	req.cxt = cxt;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	old = MemoryContextSwitchTo(cxt);
	req.schema = changed_tenant_schema(ctx.tenant_id);
	req.quoted_schema = quote_identifier(req.schema);

	load_types(req.schema, &ctx, &req.types);
	filter = apply_type_filter(&req.types, arg_types);
	for (int i = 0; i < req.types.n; i++)
	{
		if (!req.types.t[i].wanted)
			continue;
		wanted = lappend(wanted, req.types.t[i].name);
		if (req.types.t[i].practice_col == NULL)
			global = lappend(global, req.types.t[i].name);
	}
	req.wanted_types = text_array(wanted);
	req.global_types = text_array(global);

	/* no cursor: the first pull lists every live row */
	if (arg_cursor == NULL || arg_cursor[0] == '\0')
	{
		MemoryContextSwitchTo(old);
		SPI_finish();
		MemoryContextDelete(cxt);
		PG_RETURN_BOOL(true);
	}

	current_snap(&now_snap);
	keylen = read_secret(key);
	/* Citus: a log moved here is not this node's until adopted (citus.c) */
	log_native = sync_citus_log_state(req.schema, &log_epoch);
	cursor_decode(arg_cursor, key, keylen, &cur);
	if (cur.tenant_tag != tenant_tag(ctx.tenant_id))
		ereport(ERROR,
				(errcode(ERRCODE_SS_CURSOR_TENANT),
				 errmsg("pull cursor belongs to another tenant"),
				 errdetail("The cursor was issued for another tenant than tenant \"%s\".", ctx.tenant_id),
				 errhint("Each tenant's client keeps its own cursor.")));
	if (cur.origin_tag != origin_tag(log_epoch))
		ereport(ERROR,
				(errcode(ERRCODE_SS_MUST_REFETCH),
				 errmsg("pull cursor must be refetched"),
				 errdetail("The cursor was issued by another cluster or database (restored from a dump or upgraded), or before the tenant moved to another node."),
				 errhint("Pull again without a cursor and replace the local data with the result.")));
	if (cur.scope_tag != scope_tag(req.practice, req.client, filter))
		ereport(ERROR,
				(errcode(ERRCODE_SS_CURSOR_SCOPE),
				 errmsg("pull cursor was issued for another scope"),
				 errdetail("The cursor was issued for another practice, client or set of entity types."),
				 errhint("Send the same p_entity_types and context as the pull that issued the cursor.")));
	if (log_native)
		check_horizon(&req, &cur);

	top = (cur.kind == CK_DRAIN || cur.kind == CK_TIME) ? &cur.upper : &cur.base;
	if ((!log_native && cur.kind != CK_LIST) || !snap_follows(top, &now_snap))
		result = false;			/* a standby behind the cursor, or (Citus) a moved log not yet
								 * adopted: the pull has nothing yet */
	else if (cur.kind != CK_IDLE)
		result = true;			/* a listing or drain still has pages */
	else
		result = drain_has_changes(&req, &cur.base, &now_snap);

	MemoryContextSwitchTo(old);
	SPI_finish();
	MemoryContextDelete(cxt);
	PG_RETURN_BOOL(result);
}
