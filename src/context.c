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
#include <ctype.h>
#include <math.h>
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
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

/* --- client values ------------------------------------------------------ */

/*
 * A client value for an error message: at most SYNC_QUOTE_CHARS characters,
 * control characters shown as '?', "..." when clipped.  A client value never
 * reaches a message (an HTTP body, a log line) whole.
 */
char *
sync_clip(const char *s, int len)
{
	return sync_clip_n(s, len, SYNC_QUOTE_CHARS);
}

/* sync_clip to at most chars characters. */
char *
sync_clip_n(const char *s, int len, int chars)
{
	int			keep;
	char	   *out;

	if (s == NULL)
		return pstrdup("null");
	if (len < 0)
		len = strlen(s);
	keep = pg_mbcharcliplen(s, len, chars);
	out = palloc(keep + 4);
	for (int i = 0; i < keep; i++)
		out[i] = ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (keep < len)
	{
		memcpy(out + keep, "...", 3);
		keep += 3;
	}
	out[keep] = '\0';
	return out;
}

/* sync_clip of a NUL-terminated string. */
char *
sync_clip_str(const char *s)
{
	return sync_clip(s, s ? (int) strlen(s) : 0);
}

/* The length of s in characters (the database encoding's), as every length limit counts. */
int
sync_char_length(const char *s, int len)
{
	return pg_mbstrlen_with_len(s, len);
}

/*
 * Checks a client (device) id, from a claim, a setting or a payload: 1 to
 * SYNC_ID_MAX characters, no control characters.  Returns NULL when it is
 * valid, else why not.
 */
const char *
sync_client_id_problem(const char *s, int len)
{
	if (len == 0)
		return "it is empty";
	if (pg_mbstrlen_with_len(s, len) > SYNC_ID_MAX)
		return psprintf("it is longer than %d characters", SYNC_ID_MAX);
	for (int i = 0; i < len; i++)
		if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
			return "it holds a control character";
	return NULL;
}

/* True when s[0..len) is a JSON number literal (RFC 8259) of a sane size. */
bool
sync_is_number_text(const char *s, int len)
{
	int			i = 0;
	int			exp_digits = 0;

	if (len == 0 || len > 64)
		return false;
	if (s[i] == '-')
		i++;
	if (i >= len || !isdigit((unsigned char) s[i]))
		return false;
	if (s[i] == '0')
		i++;
	else
		while (i < len && isdigit((unsigned char) s[i]))
			i++;
	if (i < len && s[i] == '.')
	{
		if (++i >= len || !isdigit((unsigned char) s[i]))
			return false;
		while (i < len && isdigit((unsigned char) s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		while (i < len && isdigit((unsigned char) s[i]))
		{
			i++;
			exp_digits++;
		}
		/* no exponent beyond 999: the canonical form stays short */
		if (exp_digits == 0 || exp_digits > 3)
			return false;
	}
	return i == len;
}

/* The canonical text of a numeric: no trailing fractional zeros, no exponent (1.0, 1e0 -> 1). */
char *
sync_numeric_canonical(Numeric n)
{
	if (numeric_is_nan(n) || numeric_is_inf(n))
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));
	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   DirectFunctionCall1(numeric_trim_scale,
																   NumericGetDatum(n))));
}

/*
 * The canonical form of an id that may be a number (a practice id): the
 * canonical text of a JSON number, whether it came as a number or as a string
 * ("1", 1, 1.0 and 1e0 are all "1"); any other text as it is.
 */
char *
sync_canonical_id(const char *s, int len)
{
	Numeric		n;

	if (!sync_is_number_text(s, len))
		return pnstrdup(s, len);
	n = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(pnstrdup(s, len)),
											ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	/* a value beyond 1000 digits stays as sent */
	if (numeric_is_nan(n))
		return pnstrdup(s, len);
	return sync_numeric_canonical(n);
}

/* sync_canonical_id of a jsonb scalar (string or number); NULL for anything else. */
char *
sync_canonical_id_value(JsonbValue *v)
{
	if (v->type == jbvNumeric)
		return sync_numeric_canonical(v->val.numeric);
	if (v->type == jbvString)
		return sync_canonical_id(v->val.string.val, v->val.string.len);
	return NULL;
}

/* --- timestamps ---------------------------------------------------------- */

/*
 * The one parser of client timestamps (push "timestamp" and "clientTimestamp",
 * pull's p_since / lastSyncTimestamp, the kernel's updatedAt / updated_at).
 * Accepted, and nothing else:
 *   - epoch milliseconds: an integer from 0 to 253402300799999 (1970-01-01 to
 *     9999-12-31), as a JSON number (1e12 and 1000.0 are integers too) or as a
 *     string of 1 to 15 digits;
 *   - ISO 8601 with date, time and offset: YYYY-MM-DD, "T" (or "t" or a space),
 *     hh:mm[:ss[.fraction]], then "Z" or +hh[[:]mm] / -hh[[:]mm], in the same
 *     range.  The fraction is rounded to microseconds.
 * PostgreSQL's special words (now, today, epoch, infinity, ...), free-form
 * dates, dates without a time or an offset are refused.
 */

#define SYNC_TS_MAX_MS		INT64CONST(253402300799999)
#define UNIX_EPOCH_PG_USECS	((int64) (UNIX_EPOCH_JDATE - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY)

/* Reads exactly n digits at *p; -1 when they are not digits. */
static int
take_digits(const char **p, const char *end, int n)
{
	int			v = 0;

	if (end - *p < n)
		return -1;
	for (int i = 0; i < n; i++)
	{
		char		c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	return v;
}

/* Epoch milliseconds to a timestamptz, within the sane range. */
static bool
epoch_ms_to_timestamp(int64 ms, TimestampTz *result)
{
	if (ms < 0 || ms > SYNC_TS_MAX_MS)
		return false;
	*result = (TimestampTz) (ms * 1000 + UNIX_EPOCH_PG_USECS);
	return true;
}

/* Parses the ISO 8601 form; false when it is not exactly that. */
static bool
parse_iso8601(const char *p, const char *end, TimestampTz *result)
{
	int			year,
				mon,
				mday,
				hour,
				min,
				sec = 0;
	int64		usec = 0;
	int			off = 0;
	int64		days;
	int64		ts;

	if ((year = take_digits(&p, end, 4)) < 0 || p >= end || *p++ != '-' ||
		(mon = take_digits(&p, end, 2)) < 0 || p >= end || *p++ != '-' ||
		(mday = take_digits(&p, end, 2)) < 0)
		return false;
	if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
		return false;
	p++;
	if ((hour = take_digits(&p, end, 2)) < 0 || p >= end || *p++ != ':' ||
		(min = take_digits(&p, end, 2)) < 0)
		return false;
	if (p < end && *p == ':')
	{
		p++;
		if ((sec = take_digits(&p, end, 2)) < 0)
			return false;
		if (p < end && (*p == '.' || *p == ','))
		{
			int			ndig = 0;
			int64		scale = 100000;
			bool		round_up = false;

			p++;
			while (p < end && *p >= '0' && *p <= '9')
			{
				if (ndig < 6)
				{
					usec += (*p - '0') * scale;
					scale /= 10;
				}
				else if (ndig == 6)
					round_up = (*p >= '5');
				ndig++;
				p++;
			}
			if (ndig == 0 || ndig > 9)
				return false;
			if (round_up)
				usec++;
		}
	}
	/* the offset is required */
	if (p >= end)
		return false;
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		int			sign = (*p == '-') ? -1 : 1;
		int			oh,
					om = 0;

		p++;
		if ((oh = take_digits(&p, end, 2)) < 0)
			return false;
		if (p < end && *p == ':')
		{
			p++;
			if ((om = take_digits(&p, end, 2)) < 0)
				return false;
		}
		else if (p < end && (om = take_digits(&p, end, 2)) < 0)
			return false;
		if (oh > 15 || om > 59)
			return false;
		off = sign * (oh * 3600 + om * 60);
	}
	else
		return false;
	if (p != end)
		return false;

	/* field ranges (a leap second 60 counts into the next minute) */
	if (year < 1 || mon < 1 || mon > 12 || mday < 1 ||
		mday > day_tab[isleap(year)][mon - 1] ||
		hour > 23 || min > 59 || sec > 60)
		return false;
	days = (int64) date2j(year, mon, mday) - POSTGRES_EPOCH_JDATE;
	ts = ((days * HOURS_PER_DAY + hour) * MINS_PER_HOUR + min) * SECS_PER_MINUTE + sec;
	ts = (ts - off) * USECS_PER_SEC + usec;
	if (ts < UNIX_EPOCH_PG_USECS || ts > UNIX_EPOCH_PG_USECS + SYNC_TS_MAX_MS * 1000 + 999)
		return false;
	*result = ts;
	return true;
}

/* Parses a client timestamp given as text (epoch milliseconds or ISO 8601); false when it is neither. */
bool
sync_parse_timestamp(const char *s, int len, TimestampTz *result)
{
	const char *end = s + len;
	int			i;

	if (len <= 0 || len > 64)
		return false;
	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == len)
	{
		int64		ms = 0;

		if (len > 15)
			return false;
		for (i = 0; i < len; i++)
			ms = ms * 10 + (s[i] - '0');
		return epoch_ms_to_timestamp(ms, result);
	}
	return parse_iso8601(s, end, result);
}

/*
 * Parses a client timestamp given as JSON: a number (integer epoch
 * milliseconds) or a string (sync_parse_timestamp); false otherwise.
 */
bool
sync_timestamp_from_json(JsonbValue *v, TimestampTz *result)
{
	if (v->type == jbvString)
		return sync_parse_timestamp(v->val.string.val, v->val.string.len, result);
	if (v->type == jbvNumeric)
	{
		char	   *txt;
		char	   *dot;
		int64		ms = 0;
		int			ndig;

		if (numeric_is_nan(v->val.numeric) || numeric_is_inf(v->val.numeric))
			return false;
		txt = sync_numeric_canonical(v->val.numeric);
		dot = strchr(txt, '.');
		if (dot != NULL || txt[0] == '-')
			return false;		/* a fraction of a millisecond, or before 1970 */
		ndig = strlen(txt);
		if (ndig > 15)
			return false;
		for (int i = 0; i < ndig; i++)
			ms = ms * 10 + (txt[i] - '0');
		return epoch_ms_to_timestamp(ms, result);
	}
	return false;
}

/* A timestamptz as JavaScript epoch milliseconds (rounded down). */
int64
sync_timestamp_epoch_ms(TimestampTz ts)
{
	int64		us = ts - UNIX_EPOCH_PG_USECS;

	return (us >= 0) ? us / 1000 : -((-us + 999) / 1000);
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
 * Checks what the claims and the settings share: the client id obeys the
 * rules of a payload's clientId (SS202 otherwise), and a practice id is kept
 * in its canonical form (1, "1", 1.0 and 1e0 are the same practice).
 */
static void
check_context(SyncContext *ctx, const char *client_source)
{
	if (ctx->client_id != NULL)
	{
		const char *why = sync_client_id_problem(ctx->client_id, strlen(ctx->client_id));

		if (why != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SS_BAD_CONTEXT),
					 errmsg("malformed request context: %s is not a client id: %s", client_source, why),
					 errdetail("A client id is 1 to %d characters without control characters, in the claims, the settings and a push payload alike.",
							   SYNC_ID_MAX)));
	}
	if (ctx->practice_id != NULL)
		ctx->practice_id = sync_canonical_id(ctx->practice_id, strlen(ctx->practice_id));
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
		check_context(ctx, "claim \"client_id\"");
		return;
	}

	ctx->source = "settings";
	ctx->tenant_id = setting_text(smartsync_tenant_id_setting);
	ctx->practice_id = setting_text(smartsync_practice_id_setting);
	ctx->user_id = setting_text(smartsync_user_id_setting);
	ctx->client_id = setting_text(smartsync_client_id_setting);
	check_context(ctx, "smartsync.client_id");
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

/*
 * True when the caller is a direct SQL caller that the administrator trusts
 * with every write: smartsync.trust_direct_sql is on (only a superuser sets
 * it, e.g. ALTER ROLE backoffice SET smartsync.trust_direct_sql = on), the
 * context comes from the smartsync.* settings, never from JWT claims, and
 * names no permission list (a list given is applied as it is).
 */
bool
sync_context_trusted(const SyncContext *ctx)
{
	return smartsync_trust_direct_sql && !ctx->has_permissions &&
		ctx->source != NULL && strcmp(ctx->source, "settings") == 0;
}

/*
 * True when the context may make a write of action (create, update, delete)
 * to entity_type: its permissions grant "<type>:<action>" (or a wildcard), or
 * it is a trusted direct SQL caller.  No permission list grants nothing.
 */
bool
sync_context_may_write(const SyncContext *ctx, const char *entity_type, const char *action)
{
	if (sync_context_trusted(ctx))
		return true;
	return sync_context_has_permission(ctx, psprintf("%s:%s", entity_type, action));
}

/* Returns the schema of a provisioned tenant; raises SS203 when unknown. */
char *
sync_tenant_schema(const char *tenant_id)
{
	char	   *schema = sync_registry_tenant_schema(tenant_id);

	if (schema == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_UNKNOWN_TENANT),
				 errmsg("tenant \"%s\" is not provisioned", sync_clip_str(tenant_id)),
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

/* --- the context for row-level security ----------------------------------- */

/*
 * smartsync.current_tenant_id() and smartsync.current_practice_id(): the
 * request context as the tenant and practice policies read it, once per
 * statement (the policies call them in an InitPlan).  They were SQL functions
 * with a pinned search_path, which PostgreSQL cannot inline and plans again in
 * every statement: 12% of a push through the api.  These are the same
 * answers, exactly:
 *   - request.jwt.claims unset or empty: the smartsync.tenant_id
 *     (smartsync.practice_id) setting, NULL when empty;
 *   - else the claims as jsonb (not JSON: jsonb's own error, 22P02); an
 *     object gives coalesce(c ->> 'tenant_id', c ->> 'tenantId') (practice_id,
 *     practiceId), anything else NULL;
 *   - a practice that is a JSON number literal of at most 64 characters, as
 *     text, is put in canonical form (1, "1", 1.0 and 1e0 are "1").
 * The claims do not change within a request, so the answer for the last
 * claims text is kept (compared byte for byte): a statement pays a strcmp.
 */
PG_FUNCTION_INFO_V1(smartsync_current_tenant_id);
PG_FUNCTION_INFO_V1(smartsync_current_practice_id);

/* what c ->> key answers: NULL for an absent key or JSON null, a container as JSON text */
static char *
claim_as_text(Jsonb *claims, const char *key)
{
	JsonbValue *v = sync_jsonb_get(claims, key);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	return sync_jsonb_scalar_text(v);
}

/* the canonical practice id of a text, as current_practice_id() answers it */
static char *
rls_practice(const char *v)
{
	if (v == NULL)
		return NULL;
	if (sync_is_number_text(v, strlen(v)))
		return sync_canonical_id(v, strlen(v));
	return pstrdup(v);
}

/* the last claims text read, and its answers (TopMemoryContext) */
static char *rls_claims = NULL;
static char *rls_tenant = NULL;
static char *rls_practice_id = NULL;

/*
 * Makes the cache hold the answers for claims_text; returns false when the
 * claims are unset or empty (the settings answer).
 */
static bool
rls_read_claims(void)
{
	const char *claims_text = GetConfigOption("request.jwt.claims", true, false);
	Jsonb	   *claims;
	char	   *tenant = NULL;
	char	   *practice = NULL;
	MemoryContext old;

	if (claims_text == NULL || claims_text[0] == '\0')
		return false;
	if (rls_claims != NULL && strcmp(rls_claims, claims_text) == 0)
		return true;

	claims = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims_text)));
	if (JB_ROOT_IS_OBJECT(claims) && !JB_ROOT_IS_SCALAR(claims))
	{
		tenant = claim_as_text(claims, "tenant_id");
		if (tenant == NULL)
			tenant = claim_as_text(claims, "tenantId");
		practice = claim_as_text(claims, "practice_id");
		if (practice == NULL)
			practice = claim_as_text(claims, "practiceId");
		practice = rls_practice(practice);
	}

	/* replace the cache only once everything has been read without error */
	if (rls_claims != NULL)
		pfree(rls_claims);
	if (rls_tenant != NULL)
		pfree(rls_tenant);
	if (rls_practice_id != NULL)
		pfree(rls_practice_id);
	old = MemoryContextSwitchTo(TopMemoryContext);
	rls_claims = pstrdup(claims_text);
	rls_tenant = tenant != NULL ? pstrdup(tenant) : NULL;
	rls_practice_id = practice != NULL ? pstrdup(practice) : NULL;
	MemoryContextSwitchTo(old);
	return true;
}

Datum
smartsync_current_tenant_id(PG_FUNCTION_ARGS)
{
	const char *v;

	if (rls_read_claims())
		v = rls_tenant;
	else
		v = (smartsync_tenant_id_setting != NULL && smartsync_tenant_id_setting[0] != '\0')
			? smartsync_tenant_id_setting : NULL;
	if (v == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(v));
}

Datum
smartsync_current_practice_id(PG_FUNCTION_ARGS)
{
	char	   *v;

	if (rls_read_claims())
		v = rls_practice_id;
	else
		v = rls_practice((smartsync_practice_id_setting != NULL && smartsync_practice_id_setting[0] != '\0')
						 ? smartsync_practice_id_setting : NULL);
	if (v == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(v));
}
