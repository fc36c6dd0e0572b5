/*
 * context.c: the request context (tenant, practice, user, client, permissions).
 *
 * One entry point, sync_context_read(), used by everything else.  When
 * PostgREST has set request.jwt.claims the context comes from those claims and
 * only from them; otherwise from the smartsync.* settings a direct SQL caller
 * sets.  Values in a push payload are never taken as the context.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include <math.h>
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/varlena.h"

#include "smartsync.h"

PG_FUNCTION_INFO_V1(smartsync_context);

/* Returns the value of key in a jsonb object, or NULL when absent. */
JsonbValue *
sync_jsonb_get(Jsonb *jb, const char *key)
{
	return getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);
}

/* Returns a string or number jsonb scalar as text; NULL for JSON null. */
char *
sync_jsonb_scalar_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return NULL;
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/*
 * Converts JavaScript epoch milliseconds (the spec's timestamps) to a
 * timestamptz; false for NaN, infinities and values outside PostgreSQL's range.
 */
bool
sync_epoch_ms_timestamp(Numeric n, TimestampTz *result)
{
	double		ms;
	double		us;

	if (numeric_is_nan(n) || numeric_is_inf(n))
		return false;
	ms = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(n)));
	us = ms * 1000.0 - (double) ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
	if (isnan(us) || us < (double) MIN_TIMESTAMP || us >= (double) END_TIMESTAMP)
		return false;
	*result = (TimestampTz) us;
	return true;
}

/* Reads one identity claim (string or number) under any of its names. */
static char *
claim_text(Jsonb *claims, const char *const *names, const char *what)
{
	for (int i = 0; names[i] != NULL; i++)
	{
		JsonbValue *v = sync_jsonb_get(claims, names[i]);

		if (v == NULL || v->type == jbvNull)
			continue;
		if (v->type != jbvString && v->type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_SS_BAD_CONTEXT),
					 errmsg("malformed request context: claim \"%s\" must be a string or a number",
							names[i]),
					 errdetail("The %s is read from request.jwt.claims.", what)));
		if (v->type == jbvString && v->val.string.len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_SS_BAD_CONTEXT),
					 errmsg("malformed request context: claim \"%s\" is empty", names[i])));
		return sync_jsonb_scalar_text(v);
	}
	return NULL;
}

/* Reads the permissions claim: an array of strings or a space-separated string. */
static void
claim_permissions(Jsonb *claims, SyncContext *ctx)
{
	JsonbValue *v = sync_jsonb_get(claims, "permissions");

	if (v == NULL || v->type == jbvNull)
		return;
	ctx->has_permissions = true;
	if (v->type == jbvString)
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);
		char	   *tok;
		char	   *save = NULL;

		for (tok = strtok_r(s, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save))
			ctx->permissions = lappend(ctx->permissions, pstrdup(tok));
		return;
	}
	if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
		JsonbValue	elem;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (elem.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_SS_BAD_CONTEXT),
						 errmsg("malformed request context: claim \"permissions\" must hold only strings")));
			ctx->permissions = lappend(ctx->permissions,
									   pnstrdup(elem.val.string.val, elem.val.string.len));
		}
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_SS_BAD_CONTEXT),
			 errmsg("malformed request context: claim \"permissions\" must be an array of strings")));
}

/* Returns a setting's value, or NULL when it is empty. */
static char *
setting_text(const char *value)
{
	if (value == NULL || value[0] == '\0')
		return NULL;
	return pstrdup(value);
}

/*
 * Reads the caller's context into ctx.  Absent parts are NULL; malformed
 * claims raise SS202.  Does not require a tenant: see
 * sync_context_require_tenant().
 */
void
sync_context_read(SyncContext *ctx)
{
	const char *claims_text = GetConfigOption("request.jwt.claims", true, false);

	memset(ctx, 0, sizeof(*ctx));

	if (claims_text != NULL && claims_text[0] != '\0')
	{
		static const char *const tenant_names[] = {"tenant_id", "tenantId", NULL};
		static const char *const practice_names[] = {"practice_id", "practiceId", NULL};
		static const char *const user_names[] = {"user_id", "userId", "sub", NULL};
		static const char *const client_names[] = {"client_id", "clientId", "device_id", "deviceId", NULL};
		Jsonb	   *claims;
		JsonLexContext *lex;

		/* validate first, so bad JSON gets our own SQLSTATE without a subtransaction */
		lex = makeJsonLexContextCstringLen_compat((char *) claims_text, strlen(claims_text),
												  GetDatabaseEncoding(), true);
		if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
			ereport(ERROR,
					(errcode(ERRCODE_SS_BAD_CONTEXT),
					 errmsg("malformed request context: request.jwt.claims is not valid JSON")));
		claims = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													CStringGetDatum(claims_text)));

		if (!JB_ROOT_IS_OBJECT(claims) || JB_ROOT_IS_SCALAR(claims))
			ereport(ERROR,
					(errcode(ERRCODE_SS_BAD_CONTEXT),
					 errmsg("malformed request context: request.jwt.claims is not a JSON object")));

		ctx->source = "jwt";
		ctx->tenant_id = claim_text(claims, tenant_names, "tenant");
		ctx->practice_id = claim_text(claims, practice_names, "practice");
		ctx->user_id = claim_text(claims, user_names, "user");
		ctx->client_id = claim_text(claims, client_names, "client");
		claim_permissions(claims, ctx);
		return;
	}

	ctx->source = "settings";
	ctx->tenant_id = setting_text(smartsync_tenant_id_setting);
	ctx->practice_id = setting_text(smartsync_practice_id_setting);
	ctx->user_id = setting_text(smartsync_user_id_setting);
	ctx->client_id = setting_text(smartsync_client_id_setting);
	if (smartsync_permissions_setting && smartsync_permissions_setting[0] != '\0')
	{
		char	   *s = pstrdup(smartsync_permissions_setting);
		char	   *tok;
		char	   *save = NULL;

		ctx->has_permissions = true;
		for (tok = strtok_r(s, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save))
			ctx->permissions = lappend(ctx->permissions, pstrdup(tok));
	}
}

/* Raises SS201 unless the context names a tenant. */
void
sync_context_require_tenant(const SyncContext *ctx)
{
	if (ctx->tenant_id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_NO_CONTEXT),
				 errmsg("no tenant in the request context"),
				 errdetail("Neither request.jwt.claims nor smartsync.tenant_id names a tenant."),
				 errhint("Send a JWT with a \"tenant_id\" claim, or SET smartsync.tenant_id.")));
}

/*
 * Returns true when the context's permission list grants perm ("type:action"):
 * the permission itself, "type:*", "*:action" or "*" (the same wildcards pull
 * applies to "type:read").
 */
bool
sync_context_has_permission(const SyncContext *ctx, const char *perm)
{
	const char *colon = strchr(perm, ':');
	ListCell   *lc;

	foreach(lc, ctx->permissions)
	{
		const char *p = (const char *) lfirst(lc);

		if (strcmp(p, perm) == 0 || strcmp(p, "*") == 0)
			return true;
		if (colon == NULL)
			continue;
		/* "type:*" */
		if (strncmp(p, perm, colon - perm + 1) == 0 && strcmp(p + (colon - perm) + 1, "*") == 0)
			return true;
		/* "*:action" */
		if (p[0] == '*' && p[1] == ':' && strcmp(p + 2, colon + 1) == 0)
			return true;
	}
	return false;
}

/* Returns the schema of a provisioned tenant; raises SS203 when unknown. */
char *
sync_tenant_schema(const char *tenant_id)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	char	   *schema = NULL;
	int			rc;

	values[0] = CStringGetTextDatum(tenant_id);
	SPI_connect();
	rc = SPI_execute_with_args("SELECT schema_name::text FROM smartsync.tenants WHERE tenant_id = $1",
							   1, argtypes, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		schema = SPI_palloc(strlen(s) + 1);
		strcpy(schema, s);
	}
	SPI_finish();
	if (schema == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_UNKNOWN_TENANT),
				 errmsg("tenant \"%s\" is not provisioned", tenant_id),
				 errhint("Provision it with smartsync.provision_tenant().")));
	return schema;
}

/* Text-or-null datum for a jsonb build. */
static void
push_text_pair(JsonbParseState **st, const char *key, const char *val)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.len = strlen(key);
	k.val.string.val = (char *) key;
	pushJsonbValue(st, WJB_KEY, &k);
	if (val == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.len = strlen(val);
		v.val.string.val = (char *) val;
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * smartsync.context() returns jsonb: the request context as smartsync sees it,
 * with the tenant's schema.  Raises SS201/SS202/SS203 as a push would.
 */
Datum
smartsync_context(PG_FUNCTION_ARGS)
{
	SyncContext ctx;
	JsonbParseState *st = NULL;
	JsonbValue *res;
	JsonbValue	k;
	char	   *schema;
	ListCell   *lc;

	sync_context_read(&ctx);
	sync_context_require_tenant(&ctx);
	schema = sync_tenant_schema(ctx.tenant_id);

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	push_text_pair(&st, "tenantId", ctx.tenant_id);
	push_text_pair(&st, "schema", schema);
	push_text_pair(&st, "practiceId", ctx.practice_id);
	push_text_pair(&st, "userId", ctx.user_id);
	push_text_pair(&st, "clientId", ctx.client_id);
	k.type = jbvString;
	k.val.string.val = "permissions";
	k.val.string.len = strlen("permissions");
	pushJsonbValue(&st, WJB_KEY, &k);
	if (!ctx.has_permissions)
	{
		JsonbValue	n;

		n.type = jbvNull;
		pushJsonbValue(&st, WJB_VALUE, &n);
	}
	else
	{
		pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
		foreach(lc, ctx.permissions)
		{
			JsonbValue	e;

			e.type = jbvString;
			e.val.string.val = (char *) lfirst(lc);
			e.val.string.len = strlen(e.val.string.val);
			pushJsonbValue(&st, WJB_ELEM, &e);
		}
		pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	}
	push_text_pair(&st, "source", ctx.source);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}
