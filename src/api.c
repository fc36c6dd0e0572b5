/*
 * api.c: the api functions PostgREST and @smartsync/server call (README
 * section "PostgREST"), and the HTTP status of every smartsync SQLSTATE.
 *
 * setup_postgrest() makes api.sync_push, api.sync_pull, api.sync_changed and
 * the conflict endpoints C functions (SECURITY DEFINER, owned by
 * smartsync_api) of this file; smartsync._api_* are the same functions under
 * the names an api schema made by 0.2.0 calls.  Each one
 *
 *   - refuses a caller that bypasses row-level security (SS701: the function
 *     must run as smartsync_api) and a request without JWT claims (SS201: the
 *     api never reads the smartsync.* settings);
 *   - merges the spec's parameter names with smartsync's (SS702 when both are
 *     given and differ);
 *   - calls the smartsync function (smartsync.sync_push, ...) through the
 *     function manager, as a SQL call would: its own privileges, its SET
 *     clauses and Citus routing (which names the function it forwards by oid)
 *     stay as they are;
 *   - turns an error of class SS into PostgREST's custom error: SQLSTATE
 *     PGRST, the message the body {code, message, details, hint} with the
 *     smartsync SQLSTATE as code, the detail {status, headers} with the status
 *     of http_status() (400 for a code without one).  Other errors pass
 *     unchanged.
 *
 * The translation catches the error (PG_TRY) only to raise the translated one
 * at once: it reads the error's fields and touches no database state, so no
 * subtransaction is needed, and the push's writes keep the transaction's xid.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "smartsync.h"
#include "push.h"

PG_FUNCTION_INFO_V1(smartsync_http_status);
PG_FUNCTION_INFO_V1(smartsync_api_sync_push);
PG_FUNCTION_INFO_V1(smartsync_api_sync_pull);
PG_FUNCTION_INFO_V1(smartsync_api_sync_changed);
PG_FUNCTION_INFO_V1(smartsync_api_resolve_conflict);
PG_FUNCTION_INFO_V1(smartsync_api_list_conflicts);
PG_FUNCTION_INFO_V1(smartsync_api_conflict_stats);

#define ERRCODE_PGRST	MAKE_SQLSTATE('P','G','R','S','T')

/* --- HTTP statuses --------------------------------------------------------- */

typedef struct HttpStatus
{
	char		code[6];
	int16		status;
} HttpStatus;

/* the README's error table, by status; a code not here has no status (NULL) */
static const HttpStatus http_statuses[] = {
	/* who is calling */
	{"SS201", 401}, {"SS202", 401},
	{"SS203", 403}, {"SS420", 403}, {"SS421", 403}, {"SS426", 403}, {"SS503", 403},
	{"SS507", 403}, {"SS508", 403}, {"SS604", 403}, {"SS610", 403},
	/* an unknown conflict */
	{"SS601", 404},
	/* stale or concurrent state, a merge the data does not allow */
	{"SS425", 409}, {"SS427", 409}, {"SS602", 409}, {"SS603", 409}, {"SS606", 409},
	{"SS608", 409},
	/* must refetch */
	{"SS505", 410},
	/* too large: split the batch, shorten the value */
	{"SS403", 413}, {"SS412", 413}, {"SS429", 413}, {"SS611", 413},
	/* an update or delete without the base version it was made on */
	{"SS428", 428},
	/* the server's configuration, not the request */
	{"SS104", 500}, {"SS110", 500}, {"SS112", 500}, {"SS120", 500}, {"SS121", 500},
	{"SS701", 500}, {"SS852", 500}, {"SS853", 500},
	/* Citus: the tenant moved while the request was on its way: retry */
	{"SS851", 503},
	/* everything else a client sends wrong */
	{"SS101", 400}, {"SS103", 400}, {"SS105", 400}, {"SS106", 400}, {"SS107", 400},
	{"SS108", 400}, {"SS109", 400}, {"SS111", 400}, {"SS113", 400}, {"SS122", 400},
	{"SS123", 400},
	{"SS301", 400}, {"SS302", 400}, {"SS303", 400}, {"SS304", 400}, {"SS305", 400},
	{"SS401", 400}, {"SS402", 400}, {"SS404", 400}, {"SS405", 400}, {"SS406", 400},
	{"SS407", 400}, {"SS408", 400}, {"SS409", 400}, {"SS410", 400}, {"SS411", 400},
	{"SS422", 400}, {"SS423", 400}, {"SS424", 400}, {"SS430", 400},
	{"SS501", 400}, {"SS502", 400}, {"SS504", 400}, {"SS506", 400}, {"SS509", 400},
	{"SS510", 400}, {"SS511", 400},
	{"SS605", 400}, {"SS607", 400}, {"SS609", 400}, {"SS702", 400}, {"SS703", 400},
};

/* Returns the HTTP status of a smartsync SQLSTATE (len bytes), 0 when it has none. */
static int
http_status_of(const char *code, int len)
{
	if (len != 5)
		return 0;
	for (size_t i = 0; i < lengthof(http_statuses); i++)
		if (memcmp(http_statuses[i].code, code, 5) == 0)
			return http_statuses[i].status;
	return 0;
}

/* smartsync.http_status(sqlstate text) -> integer, NULL for a code smartsync does not define */
Datum
smartsync_http_status(PG_FUNCTION_ARGS)
{
	text	   *code = PG_GETARG_TEXT_PP(0);
	int			status = http_status_of(VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code));

	if (status == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(status);
}

/* --- PostgREST's custom error ---------------------------------------------- */

/* Adds "key": "value" to the object being built. */
static void
push_string_pair(JsonbParseState **state, const char *key, const char *value)
{
	push_key(state, key);
	push_str(state, WJB_VALUE, value);
}

/* Returns a jsonb object's text, as jsonb's output function writes it. */
static char *
jsonb_text(JsonbValue *object)
{
	Jsonb	   *jb = JsonbValueToJsonb(object);

	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

/*
 * Raises a smartsync error (code, message, detail, hint) as PostgREST's custom
 * error, exactly as 0.2.0's PL/pgSQL did: the message
 * {"code", "message", "details", "hint"} (details and hint left out when
 * empty), the detail {"status", "headers"} (WWW-Authenticate: Bearer with 401).
 */
static void
api_raise(const char *code, const char *message, const char *detail, const char *hint)
{
	int			status = http_status_of(code, strlen(code));
	JsonbParseState *state = NULL;
	JsonbValue *body;
	JsonbValue *info;
	char	   *body_text;
	char	   *info_text;

	if (status == 0)
		status = 400;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_string_pair(&state, "code", code);
	push_string_pair(&state, "message", message != NULL ? message : "");
	if (detail != NULL && detail[0] != '\0')
		push_string_pair(&state, "details", detail);
	if (hint != NULL && hint[0] != '\0')
		push_string_pair(&state, "hint", hint);
	body = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	body_text = jsonb_text(body);

	state = NULL;
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_key(&state, "status");
	push_int64(&state, status);
	push_key(&state, "headers");
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (status == 401)
		push_string_pair(&state, "WWW-Authenticate", "Bearer");
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	info = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	info_text = jsonb_text(info);

	ereport(ERROR,
			(errcode(ERRCODE_PGRST),
			 errmsg_internal("%s", body_text),
			 errdetail_internal("%s", info_text)));
	pg_unreachable();
}

/*
 * In a PG_CATCH block: re-raises the error being handled, as PostgREST's
 * custom error when its SQLSTATE is of class SS, unchanged otherwise.  cxt is
 * the memory context the function was called in.
 */
static void
api_rethrow(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_TO_CATEGORY(MAKE_SQLSTATE('S','S','0','0','0')))
		PG_RE_THROW();
	FlushErrorState();
	api_raise(unpack_sql_state(edata->sqlerrcode), edata->message, edata->detail, edata->hint);
}

/* --- the calls ------------------------------------------------------------- */

/*
 * Refuses a caller that bypasses row-level security (the api functions must
 * run as smartsync_api) and a request without JWT claims.
 */
static void
api_guard(void)
{
	const char *claims;

	if (has_bypassrls_privilege(GetUserId()))
		api_raise("SS701", "the api runs as a role that bypasses row-level security",
				  "The api functions must run as smartsync_api, a role without SUPERUSER and BYPASSRLS.",
				  "Run smartsync.setup_postgrest() as a superuser to (re)create the api functions.");
	claims = GetConfigOption("request.jwt.claims", true, false);
	if (claims == NULL || claims[0] == '\0')
		api_raise("SS201", "no tenant in the request context",
				  "The api reads the tenant from request.jwt.claims, which is not set.",
				  "Send a JWT with a \"tenant_id\" claim.");
}

/*
 * One parameter given under two names (name and the spec's alias): the value
 * given, NULL when neither is; SS702 when both are given and differ.
 */
static void
api_param(FunctionCallInfo fcinfo, int arg, const char *name, int alias_arg, const char *alias,
		  NullableDatum *out)
{
	NullableDatum value = fcinfo->args[arg];
	NullableDatum alias_value = fcinfo->args[alias_arg];

	if (!value.isnull && !alias_value.isnull)
	{
		text	   *a = DatumGetTextPP(value.value);
		text	   *b = DatumGetTextPP(alias_value.value);

		if (VARSIZE_ANY_EXHDR(a) != VARSIZE_ANY_EXHDR(b) ||
			memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) != 0)
			api_raise("SS702", psprintf("parameters %s and %s disagree", name, alias),
					  psprintf("%s is the spec's name of %s; send one of them.", alias, name),
					  NULL);
	}
	*out = value.isnull ? alias_value : value;
}

#define API_MAX_ARGS 5

/* The smartsync function an api function calls, found once per call site. */
typedef struct ApiTarget
{
	FmgrInfo	flinfo;
} ApiTarget;

/*
 * Returns the function manager's entry of smartsync.<name>(argtypes), kept in
 * the caller's fn_extra; checks that the current user may execute it, as a
 * SQL call of it would.
 */
static FmgrInfo *
api_target(FunctionCallInfo fcinfo, const char *name, int nargs, const Oid *argtypes)
{
	ApiTarget  *target = (ApiTarget *) fcinfo->flinfo->fn_extra;

	if (target == NULL)
	{
		Oid			fn = LookupFuncName(list_make2(makeString("smartsync"), makeString(pstrdup(name))),
										nargs, argtypes, false);
		AclResult	acl = pg_proc_aclcheck_compat(fn, GetUserId(), ACL_EXECUTE);

		if (acl != ACLCHECK_OK)
			aclcheck_error(acl, OBJECT_FUNCTION, name);
		target = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ApiTarget));
		fmgr_info_cxt(fn, &target->flinfo, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = target;
	}
	return &target->flinfo;
}

/*
 * Calls smartsync.<name> with args after the guard, smartsync errors turned
 * into PostgREST's; its result is the api function's.
 */
static Datum
api_call(FunctionCallInfo fcinfo, const char *name, int nargs, const Oid *argtypes,
		 const NullableDatum *args)
{
	MemoryContext cxt = CurrentMemoryContext;
	FmgrInfo   *target = api_target(fcinfo, name, nargs, argtypes);
	LOCAL_FCINFO(call, API_MAX_ARGS);
	volatile Datum result = (Datum) 0;
	volatile bool isnull = false;

	Assert(nargs <= API_MAX_ARGS);
	InitFunctionCallInfoData(*call, target, nargs, fcinfo->fncollation, NULL, NULL);
	for (int i = 0; i < nargs; i++)
	{
		call->args[i] = args[i];
		if (args[i].isnull && target->fn_strict)
			PG_RETURN_NULL();
	}
	PG_TRY();
	{
		result = FunctionCallInvoke(call);
		isnull = call->isnull;
	}
	PG_CATCH();
	{
		api_rethrow(cxt);
	}
	PG_END_TRY();
	fcinfo->isnull = isnull;
	return result;
}

/* api.sync_push(jsonb): smartsync.sync_push */
Datum
smartsync_api_sync_push(PG_FUNCTION_ARGS)
{
	static const Oid argtypes[] = {JSONBOID};

	api_guard();
	return api_call(fcinfo, "sync_push", 1, argtypes, fcinfo->args);
}

/*
 * api.sync_pull(p_since, p_cursor, p_entity_types, p_practice_id, p_limit,
 * lastSyncTimestamp, practiceId, entityTypes): smartsync.sync_pull with the
 * spec's names as aliases (a time is checked by sync_pull's strict parser,
 * SS510, whichever name it came under)
 */
Datum
smartsync_api_sync_pull(PG_FUNCTION_ARGS)
{
	static const Oid argtypes[] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID};
	NullableDatum args[5];

	api_guard();
	api_param(fcinfo, 0, "p_since", 5, "lastSyncTimestamp", &args[0]);
	args[1] = fcinfo->args[1];
	api_param(fcinfo, 2, "p_entity_types", 7, "entityTypes", &args[2]);
	api_param(fcinfo, 3, "p_practice_id", 6, "practiceId", &args[3]);
	args[4] = fcinfo->args[4];
	return api_call(fcinfo, "sync_pull", 5, argtypes, args);
}

/*
 * api.sync_changed(p_cursor, p_entity_types, p_practice_id, entityTypes,
 * practiceId): smartsync.sync_changed with the spec's names as aliases
 */
Datum
smartsync_api_sync_changed(PG_FUNCTION_ARGS)
{
	static const Oid argtypes[] = {TEXTOID, TEXTOID, TEXTOID};
	NullableDatum args[3];

	api_guard();
	args[0] = fcinfo->args[0];
	api_param(fcinfo, 1, "p_entity_types", 3, "entityTypes", &args[1]);
	api_param(fcinfo, 2, "p_practice_id", 4, "practiceId", &args[2]);
	return api_call(fcinfo, "sync_changed", 3, argtypes, args);
}

/* api.resolve_conflict(conflict_id, strategy, resolved_data): smartsync.resolve_conflict */
Datum
smartsync_api_resolve_conflict(PG_FUNCTION_ARGS)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID, JSONBOID};

	api_guard();
	return api_call(fcinfo, "resolve_conflict", 3, argtypes, fcinfo->args);
}

/*
 * api.list_conflicts(p_entity_type, p_severity, p_min_age, p_limit, p_after):
 * smartsync.list_conflicts, 100 conflicts a page when p_limit is NULL
 */
Datum
smartsync_api_list_conflicts(PG_FUNCTION_ARGS)
{
	static const Oid argtypes[] = {TEXTOID, TEXTOID, INTERVALOID, INT4OID, INT8OID};
	NullableDatum args[5];

	api_guard();
	for (int i = 0; i < 5; i++)
		args[i] = fcinfo->args[i];
	if (args[3].isnull)
	{
		args[3].value = Int32GetDatum(100);
		args[3].isnull = false;
	}
	return api_call(fcinfo, "list_conflicts", 5, argtypes, args);
}

/* api.conflict_stats(): smartsync.conflict_stats */
Datum
smartsync_api_conflict_stats(PG_FUNCTION_ARGS)
{
	api_guard();
	return api_call(fcinfo, "conflict_stats", 0, NULL, NULL);
}
