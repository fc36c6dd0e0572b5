/*
 * merge.c: two-way (the spec's attemptMerge) and three-way merges of rows.
 *
 * merge(local, server) combines fields present on one side only and fields
 * equal on both; a field that differs on both sides makes it fail (NULL).
 * merge3(base, local, server) takes each field from the side that changed it
 * since base (a removed key is a change too); it fails only when both sides
 * changed a field to different values.  In both, the metadata fields
 * version, updatedAt and updated_at are the server's (the local ones when
 * the server has none): the server stamps them again when the result is
 * written, so they never conflict.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "smartsync.h"
#include "kernel.h"

PG_FUNCTION_INFO_V1(smartsync_merge);
PG_FUNCTION_INFO_V1(smartsync_merge3);
PG_FUNCTION_INFO_V1(smartsync_merge3_conflicts);

/* Orders C strings bytewise, for list_sort. */
static int
cstring_list_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/* Pushes key: value onto an object under construction. */
static inline void
push_field(JsonbParseState **ps, const SyncField *f)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) f->key;
	k.val.string.len = f->keylen;
	pushJsonbValue(ps, WJB_KEY, &k);
	pushJsonbValue(ps, WJB_VALUE, (JsonbValue *) &f->value);
}

/* The spec's attemptMerge: NULL when a field differs on both sides. */
Jsonb *
sync_merge(Jsonb *local, Jsonb *server)
{
	SyncField  *lf;
	SyncField  *sf;
	int			nl;
	int			ns;
	int			i = 0;
	int			j = 0;
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	sync_require_object(local, "local data");
	sync_require_object(server, "server data");
	nl = sync_object_fields(local, &lf);
	ns = sync_object_fields(server, &sf);

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	while (i < nl || j < ns)
	{
		int			c;

		if (i >= nl)
			c = 1;
		else if (j >= ns)
			c = -1;
		else
			c = sync_key_cmp(lf[i].key, lf[i].keylen, sf[j].key, sf[j].keylen);

		if (c < 0)
			push_field(&ps, &lf[i++]);	/* only local has it */
		else if (c > 0)
			push_field(&ps, &sf[j++]);	/* only the server has it */
		else
		{
			if (sync_is_metadata_field(sf[j].key, sf[j].keylen))
				push_field(&ps, &sf[j]);
			else if (sync_jsonb_equal(&lf[i].value, &sf[j].value))
				push_field(&ps, &lf[i]);
			else
				return NULL;	/* changed on both sides: cannot merge */
			i++;
			j++;
		}
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* Equality of two possibly absent values (NULL is an absent key). */
static inline bool
same_value(const SyncField *a, const SyncField *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return sync_jsonb_equal(&a->value, &b->value);
}

/*
 * Three-way merge against base.  NULL on a true conflict, and then, when
 * conflicting is not NULL, *conflicting lists the truly conflicting fields.
 */
Jsonb *
sync_merge3(Jsonb *base, Jsonb *local, Jsonb *server, List **conflicting)
{
	SyncField  *bf;
	SyncField  *lf;
	SyncField  *sf;
	int			nb;
	int			nl;
	int			ns;
	int			ib = 0;
	int			il = 0;
	int			is = 0;
	List	   *conflicts = NIL;
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	sync_require_object(base, "base data");
	sync_require_object(local, "local data");
	sync_require_object(server, "server data");
	nb = sync_object_fields(base, &bf);
	nl = sync_object_fields(local, &lf);
	ns = sync_object_fields(server, &sf);

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	while (ib < nb || il < nl || is < ns)
	{
		const SyncField *min = NULL;
		const SyncField *b = NULL;
		const SyncField *l = NULL;
		const SyncField *s = NULL;
		const SyncField *take;

		/* the smallest key among the three heads, in jsonb key order */
		if (ib < nb)
			min = &bf[ib];
		if (il < nl && (min == NULL ||
						sync_key_cmp(lf[il].key, lf[il].keylen, min->key, min->keylen) < 0))
			min = &lf[il];
		if (is < ns && (min == NULL ||
						sync_key_cmp(sf[is].key, sf[is].keylen, min->key, min->keylen) < 0))
			min = &sf[is];
		if (ib < nb && sync_key_cmp(bf[ib].key, bf[ib].keylen, min->key, min->keylen) == 0)
			b = &bf[ib++];
		if (il < nl && sync_key_cmp(lf[il].key, lf[il].keylen, min->key, min->keylen) == 0)
			l = &lf[il++];
		if (is < ns && sync_key_cmp(sf[is].key, sf[is].keylen, min->key, min->keylen) == 0)
			s = &sf[is++];

		if (sync_is_metadata_field(min->key, min->keylen))
			take = s ? s : l;	/* the server's stamp */
		else if (same_value(l, s))
			take = l;			/* unchanged, or the same change on both sides */
		else if (same_value(l, b))
			take = s;			/* only the server changed it */
		else if (same_value(s, b))
			take = l;			/* only the client changed it */
		else
		{
			conflicts = lappend(conflicts, pnstrdup(min->key, min->keylen));
			continue;
		}
		if (take != NULL && conflicts == NIL)
			push_field(&ps, take);
	}

	if (conflicts != NIL)
	{
		if (conflicting != NULL)
		{
			list_sort(conflicts, cstring_list_cmp);
			*conflicting = conflicts;
		}
		return NULL;
	}
	if (conflicting != NULL)
		*conflicting = NIL;
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* SQL: smartsync.merge(local_data jsonb, server_data jsonb) RETURNS jsonb */
Datum
smartsync_merge(PG_FUNCTION_ARGS)
{
	Jsonb	   *local = PG_GETARG_JSONB_P(0);
	Jsonb	   *server = PG_GETARG_JSONB_P(1);
	Jsonb	   *result;

	sync_require_object(local, "local_data");
	sync_require_object(server, "server_data");
	result = sync_merge(local, server);
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}

/* Checks the three arguments of merge3 and merge3_conflicts. */
static inline void
check_merge3_args(Jsonb *base, Jsonb *local, Jsonb *server)
{
	sync_require_object(base, "base_data");
	sync_require_object(local, "local_data");
	sync_require_object(server, "server_data");
}

/* SQL: smartsync.merge3(base_data jsonb, local_data jsonb, server_data jsonb) RETURNS jsonb */
Datum
smartsync_merge3(PG_FUNCTION_ARGS)
{
	Jsonb	   *base = PG_GETARG_JSONB_P(0);
	Jsonb	   *local = PG_GETARG_JSONB_P(1);
	Jsonb	   *server = PG_GETARG_JSONB_P(2);
	Jsonb	   *result;

	check_merge3_args(base, local, server);
	result = sync_merge3(base, local, server, NULL);
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}

/* SQL: smartsync.merge3_conflicts(base_data, local_data, server_data jsonb) RETURNS text[] */
Datum
smartsync_merge3_conflicts(PG_FUNCTION_ARGS)
{
	Jsonb	   *base = PG_GETARG_JSONB_P(0);
	Jsonb	   *local = PG_GETARG_JSONB_P(1);
	Jsonb	   *server = PG_GETARG_JSONB_P(2);
	List	   *conflicts = NIL;
	Datum	   *elems;
	int			n = 0;
	ListCell   *lc;

	check_merge3_args(base, local, server);
	sync_merge3(base, local, server, &conflicts);
	elems = palloc(sizeof(Datum) * Max(list_length(conflicts), 1));
	foreach(lc, conflicts)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}
