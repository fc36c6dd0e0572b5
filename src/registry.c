/*
 * registry.c: per-backend copies of the registry tables, smartsync.tenants
 * (tenant id -> schema) and smartsync.entity_types, so that a push, a pull or
 * a resolution does not read them with SQL on every call.
 *
 * A copy is dropped whenever its table changes: a statement trigger on each
 * table queues a relcache invalidation of the table (smartsync.entity_types:
 * smartsync._registry_changed; smartsync.tenants: the change signal's
 * smartsync._notify_registry_changed, src/notify.c, which sends the same
 * invalidation), which PostgreSQL sends to every backend when the transaction commits
 * (and applies at once in the changing backend, and again if it rolls back);
 * a relcache callback then marks the copy stale.  DDL on the tables, or their
 * drop with the extension, invalidates them the same way.  Before a copy is
 * used, pending invalidations are read (AcceptInvalidationMessages), so a
 * change committed before the call is seen as a statement's snapshot would
 * see it.  Tenants are cached one by one as they are asked for (a tenant not
 * found is not cached), entity types all together.  What a caller gets is
 * copied into its memory context: an invalidation in the middle of a call
 * frees nothing the call uses.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "smartsync.h"

PG_FUNCTION_INFO_V1(smartsync_registry_changed);

/* Longest tenant id the cache keeps (bytes); a longer one is looked up each time. */
#define REGISTRY_TENANT_KEY	256
/* Most tenants one backend keeps; then the cache starts again. */
#define REGISTRY_TENANTS_MAX 10000

/* A cached tenant. */
typedef struct RegistryTenant
{
	char		tenant_id[REGISTRY_TENANT_KEY]; /* hash key */
	char		schema[NAMEDATALEN];
} RegistryTenant;

static MemoryContext registry_cxt = NULL;
static bool callback_registered = false;

/*
 * Each copy with the table's oid and a generation, counted up by every
 * invalidation of the table: a copy read while an invalidation arrived is
 * not kept.
 */
static HTAB *tenants = NULL;	/* tenant id -> schema */
static Oid	tenants_relid = InvalidOid;
static uint64 tenants_generation = 0;
static bool tenants_valid = false;

static SyncEntityTypeRow *types = NULL; /* the registered types */
static int	ntypes = 0;
static MemoryContext types_cxt = NULL;
static Oid	types_relid = InvalidOid;
static uint64 types_generation = 0;
static bool types_valid = false;

/*
 * Marks the copies of an invalidated table stale (relid InvalidOid: every
 * table).  Nothing is freed here: the next lookup does it, never under a
 * running call.
 */
static void
registry_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == tenants_relid)
	{
		tenants_valid = false;
		tenants_generation++;
	}
	if (relid == InvalidOid || relid == types_relid)
	{
		types_valid = false;
		types_generation++;
	}
}

/* The cache's memory context and the invalidation callback, made once per backend. */
static void
registry_init(void)
{
	if (!callback_registered)
	{
		registry_cxt = AllocSetContextCreate(CacheMemoryContext, "smartsync registry",
											 ALLOCSET_SMALL_SIZES);
		sync_register_relcache_callback(registry_invalidate, (Datum) 0);
		callback_registered = true;
	}
	AcceptInvalidationMessages();
}

/* The oid of a registry table (smartsync.<name>), InvalidOid when missing. */
static Oid
registry_relid(const char *name)
{
	Oid			nsp = get_namespace_oid("smartsync", true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/*
 * Whether the current user may read a registry table.  A copy is only handed
 * to a caller who could have read the table: anyone else reads it with SQL,
 * and gets PostgreSQL's error (a pooled connection changes roles per request).
 */
static bool
may_read(Oid relid)
{
	return OidIsValid(relid) && pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
}

/*
 * The schema of a provisioned tenant, palloc'd in the caller's context, or
 * NULL when the tenant is not provisioned.
 */
char *
sync_registry_tenant_schema(const char *tenant_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	RegistryTenant *t;
	char	   *schema = NULL;
	bool		cacheable = strlen(tenant_id) < REGISTRY_TENANT_KEY;
	uint64		generation;
	bool		found;
	int			rc;

	registry_init();
	if (!tenants_valid || (tenants != NULL && hash_get_num_entries(tenants) >= REGISTRY_TENANTS_MAX))
	{
		HASHCTL		ctl;

		if (tenants != NULL)
			hash_destroy(tenants);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = REGISTRY_TENANT_KEY;
		ctl.entrysize = sizeof(RegistryTenant);
		ctl.hcxt = registry_cxt;
		tenants = hash_create("smartsync tenants", 16, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		tenants_relid = registry_relid("tenants");
		tenants_valid = true;
	}
	if (cacheable && may_read(tenants_relid))
	{
		t = hash_search(tenants, tenant_id, HASH_FIND, NULL);
		if (t != NULL)
			return pstrdup(t->schema);
	}

	/* a saved plan: parsed and planned once per backend, replanned when the table changes */
	generation = tenants_generation;
	values[0] = CStringGetTextDatum(tenant_id);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT schema_name::pg_catalog.text FROM smartsync.tenants "
									"WHERE tenant_id OPERATOR(pg_catalog.=) $1", 1, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		plan = p;
	}
	rc = SPI_execute_plan(plan, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading smartsync.tenants failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		schema = SPI_palloc(strlen(s) + 1);
		strcpy(schema, s);
	}
	SPI_finish();

	/* keep it unless an invalidation arrived while it was read (a tenant not found is not kept) */
	AcceptInvalidationMessages();
	if (schema != NULL && cacheable && tenants_valid && generation == tenants_generation &&
		strlen(schema) < NAMEDATALEN)
	{
		t = hash_search(tenants, tenant_id, HASH_ENTER, &found);
		strlcpy(t->schema, schema, sizeof(t->schema));
	}
	return schema;
}

/* A copy of the n entity types in the current memory context. */
static SyncEntityTypeRow *
copy_types(const SyncEntityTypeRow *from, int n)
{
	SyncEntityTypeRow *to = palloc0(sizeof(SyncEntityTypeRow) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		to[i].entity_type = pstrdup(from[i].entity_type);
		to[i].table_name = pstrdup(from[i].table_name);
		to[i].pk_column = pstrdup(from[i].pk_column);
		to[i].practice_column = from[i].practice_column ? pstrdup(from[i].practice_column) : NULL;
		to[i].strategy = pstrdup(from[i].strategy);
		to[i].sort_order = from[i].sort_order;
		to[i].reference_fields = palloc(VARSIZE(from[i].reference_fields));
		memcpy(to[i].reference_fields, from[i].reference_fields, VARSIZE(from[i].reference_fields));
		to[i].field_classes = palloc(VARSIZE(from[i].field_classes));
		memcpy(to[i].field_classes, from[i].field_classes, VARSIZE(from[i].field_classes));
		to[i].timestamp_detection = from[i].timestamp_detection;
	}
	return to;
}

/*
 * The registered entity types, ordered by name, copied into the caller's
 * memory context; *n their number.
 */
SyncEntityTypeRow *
sync_registry_entity_types(int *n)
{
	static SPIPlanPtr plan = NULL;
	SyncEntityTypeRow *rows;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext cxt;
	uint64		generation;
	int			count;
	int			rc;

	registry_init();
	if (types_valid && may_read(types_relid))
	{
		*n = ntypes;
		return copy_types(types, ntypes);
	}

	generation = types_generation;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT entity_type, table_name::pg_catalog.text, pk_column::pg_catalog.text, "
									"practice_column::pg_catalog.text, default_strategy, sort_order, "
									"reference_fields, field_classes, timestamp_detection "
									"FROM smartsync.entity_types ORDER BY entity_type", 0, NULL);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		plan = p;
	}
	rc = SPI_execute_plan(plan, NULL, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading smartsync.entity_types failed: %s", SPI_result_code_string(rc));

	/* read into a context of its own: the cache keeps it, or the caller gets a copy */
	cxt = AllocSetContextCreate(registry_cxt, "smartsync entity types", ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(cxt);
	count = SPI_processed;
	rows = palloc0(sizeof(SyncEntityTypeRow) * Max(count, 1));
	for (int k = 0; k < count; k++)
	{
		HeapTuple	tup = SPI_tuptable->vals[k];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		rows[k].entity_type = SPI_getvalue(tup, desc, 1);
		rows[k].table_name = SPI_getvalue(tup, desc, 2);
		rows[k].pk_column = SPI_getvalue(tup, desc, 3);
		rows[k].practice_column = SPI_getvalue(tup, desc, 4);
		rows[k].strategy = SPI_getvalue(tup, desc, 5);
		rows[k].sort_order = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		rows[k].reference_fields = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 7, &isnull));
		rows[k].field_classes = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 8, &isnull));
		rows[k].timestamp_detection = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull)) && !isnull;
	}
	MemoryContextSwitchTo(callcxt);
	SPI_finish();
	MemoryContextSwitchTo(callcxt);

	/* keep it unless an invalidation arrived while it was read: then it may be stale */
	AcceptInvalidationMessages();
	if (generation == types_generation)
	{
		if (types_cxt != NULL)
			MemoryContextDelete(types_cxt);
		types_cxt = cxt;
		types = rows;
		ntypes = count;
		types_relid = registry_relid("entity_types");
		types_valid = true;
		*n = count;
		return copy_types(rows, count);
	}
	*n = count;
	rows = copy_types(rows, count);
	MemoryContextDelete(cxt);
	return rows;
}

/*
 * smartsync._registry_changed(): statement trigger of smartsync.entity_types.
 * Queues a relcache invalidation of the table, so every backend drops its
 * copy of it when the change commits.
 */
Datum
smartsync_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync._registry_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
