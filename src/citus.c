/*
 * citus.c: smartsync on Citus schema-based sharding (README "Scaling out").
 *
 * With Citus, every tenant schema is a distributed schema: its tables (entity
 * tables, change log, id map, ledger, conflicts) form one co-located group of
 * single-shard tables on one node, and citus_schema_move moves the group.  The
 * registry (smartsync.tenants, smartsync.entity_types) and the pull secret are
 * reference tables, copied on every node (src/sql/85_citus.sql).  Everything
 * Citus-specific in C is here; the rest of smartsync calls it through the hooks
 * of citus.h, which do nothing when the citus extension is not installed.
 *
 *   routing    sync_citus_route(): a push, pull, sync_changed, resolution or conflict listing
 *              called on a node that does not hold the request's tenant becomes
 *              one Citus router query over the tenant's sync_log_origin table,
 *                SELECT smartsync._citus_call(context, function, ARRAY[arguments])
 *                  FROM tenant.sync_log_origin
 *              which Citus runs on the tenant's node inside the caller's
 *              (distributed) transaction.  There smartsync._citus_call() sets
 *              the request context the caller had (request.jwt.claims, the
 *              smartsync.* settings, TimeZone), takes the shard metadata lock
 *              that a shard move's cut-over waits for, checks that the tenant is
 *              still on this node (SS851 if it moved meanwhile) and calls the
 *              function itself: the pull's snapshot, its cursor and the change
 *              log's transaction ids all belong to one node.  A call made on the
 *              tenant's node itself holds the tenant the same way.
 *   shards     while a call holds its tenant, a planner hook gives its statements
 *              the tenant's local shards instead of the logical tables, so Citus'
 *              planner and local executor stay out of them (shard_planner).
 *   capture    a capture trigger fires on the shard (clients_102009): the shard
 *              stands for its logical table, the rows go to the co-located shard
 *              of sync_changes, numbered by the node's identity sequence.
 *   adoption   a change log carries the transaction ids of the node that wrote
 *              it.  After citus_schema_move they mean nothing on the new node,
 *              so before the first change is logged there, the log is adopted:
 *              its rows get transaction id 1 (older than any snapshot) and
 *              sequence numbers below every number the node gives, in order,
 *              and sync_log_origin records the node and a new epoch.  The epoch is
 *              part of every pull cursor's origin: a cursor from before the move
 *              gets must-refetch (SS505), never a gap.  Between the move and the
 *              adoption a pull lists rows but delivers no change from the log.
 *   secret     the pull secret is read from the local shard of its reference
 *              table, so every node signs and checks cursors alike.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_sequence.h"
#include "catalog/dependency.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "smartsync.h"
#include "citus.h"

PG_FUNCTION_INFO_V1(smartsync_citus_call);
PG_FUNCTION_INFO_V1(smartsync_citus_adopt);

/* the tables of a tenant schema this file works with */
#define LOG_TABLE		"sync_changes"
#define ORIGIN_TABLE	"sync_log_origin"
#define HORIZON_TABLE	"sync_pull_horizon"

/*
 * Citus' shard metadata lock (its resource_lock.h: an advisory lock tag of
 * class ADV_LOCKTAG_CLASS_CITUS_SHARD_METADATA): a shard move takes it in
 * ExclusiveLock mode on every node before its cut-over, writers through Citus
 * take it in ShareLock mode.
 */
#define CITUS_SHARD_METADATA_LOCK_CLASS 4

/* functions _citus_call runs: each reads or writes one tenant's data and returns jsonb (sync_changed: boolean) */
static const char *const routable[] = {
	"sync_push", "sync_pull", "sync_changed", "resolve_conflict", "list_conflicts", "conflict_stats", NULL
};

static void hold_tenant(void);

/* > 0 while smartsync._citus_call runs a routed call on this node, or a call runs here under hold_tenant() */
static int	routed_depth = 0;

/* the tenant schema the running call holds on this node (hold_tenant), or InvalidOid */
static Oid	held_schema = InvalidOid;

/* --- Citus and its catalogs ------------------------------------------------ */

/*
 * True when the citus extension is installed in this database.  Its library
 * is loaded first (shared_preload_libraries), so a server without it answers
 * from its settings alone; in a database, the extension's catalog table
 * pg_dist_partition exists exactly while the extension does (a cached lookup).
 */
static bool
citus_installed(void)
{
	if (GetConfigOption("citus.version", true, false) == NULL)
		return false;
	return OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE));
}

/* Connects SPI; raises on failure. */
static void
spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Runs a read-only catalog query with int8 / oid / text arguments. */
static void
spi_query(const char *sql, int nargs, Oid *argtypes, Datum *values, long limit)
{
	int			rc = SPI_execute_with_args(sql, nargs, argtypes, values, NULL, true, limit);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
}

/* The relation a Citus shard_name() text names, or InvalidOid. */
static Oid
relid_from_name(const char *qualified)
{
	List	   *names = stringToQualifiedNameList_compat(qualified);

	return RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
}

/*
 * The local shard of a single-shard Citus table (reference or distributed
 * single-shard), or InvalidOid when the table is not one or has no shard on
 * this node.  Cached per table; an invalidation of either relation (Citus
 * invalidates a table when its placements change) drops the entry.
 */
typedef struct ShardEntry
{
	Oid			table;			/* hash key */
	Oid			shard;
	int64		shardid;
	bool		citus;			/* a Citus table (with any number of shards) */
	bool		reference;		/* ... a reference table (a copy on every node) */
	int8		layout;			/* shard's columns as the table's: 1 yes, -1 no, 0 not known yet */
} ShardEntry;

static HTAB *shard_cache = NULL;

static void
shard_cache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	ShardEntry *e;

	if (shard_cache == NULL)
		return;
	hash_seq_init(&status, shard_cache);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || e->table == relid || e->shard == relid)
			hash_search(shard_cache, &e->table, HASH_REMOVE, NULL);
	}
}

static ShardEntry *
shard_entry(Oid table)
{
	ShardEntry *e;
	bool		found;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	Oid			shard = InvalidOid;
	int64		id = 0;
	bool		citus;
	bool		reference = false;

	if (shard_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(ShardEntry);
		shard_cache = hash_create("smartsync citus shards", 64, &ctl, HASH_ELEM | HASH_BLOBS);
		sync_register_relcache_callback(shard_cache_callback, (Datum) 0);
	}
	e = hash_search(shard_cache, &table, HASH_FIND, &found);
	if (found)
		return e;
	/* (not a Citus table: cached too; distributing it invalidates the table) */

	values[0] = ObjectIdGetDatum(table);
	spi_connect();
	spi_query("SELECT s.shardid, pg_catalog.shard_name(s.logicalrelid, s.shardid),"
			  " EXISTS (SELECT FROM pg_catalog.pg_dist_partition p"
			  "  WHERE p.logicalrelid = s.logicalrelid AND p.repmodel = 't')"
			  " FROM pg_catalog.pg_dist_shard s WHERE s.logicalrelid = $1",
			  1, argtypes, values, 2);
	if (SPI_processed == 1)
	{
		bool		isnull;

		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		shard = relid_from_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
		reference = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	}
	citus = SPI_processed > 0;
	SPI_finish();

	e = hash_search(shard_cache, &table, HASH_ENTER, &found);
	e->shard = shard;
	e->shardid = id;
	e->citus = citus;
	e->reference = reference;
	e->layout = 0;
	return e;
}

static Oid
local_shard(Oid table, int64 *shardid)
{
	ShardEntry *e = shard_entry(table);

	if (shardid)
		*shardid = e->shardid;
	return e->shard;
}

/* Where a tenant's data is, by its change log (sync_changes). */
typedef struct TenantPlacement
{
	bool		distributed;	/* the log is a Citus table */
	bool		local;			/* ... with its shard on this node */
	int64		shardid;
} TenantPlacement;

/*
 * Placements by change-log table, cached: Citus invalidates a distributed
 * table's relation cache when its placement changes (a move), which drops the
 * entry here too (placement_cache_callback).
 */
typedef struct PlacementEntry
{
	Oid			log;			/* hash key */
	TenantPlacement p;
} PlacementEntry;

static HTAB *placement_cache = NULL;

static void
placement_cache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	PlacementEntry *e;

	if (placement_cache == NULL)
		return;
	hash_seq_init(&status, placement_cache);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || e->log == relid)
			hash_search(placement_cache, &e->log, HASH_REMOVE, NULL);
	}
}

/* A plan kept for the backend's life (catalog queries of this file). */
static SPIPlanPtr
kept_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

/*
 * Reads the placement of schema's change log.  latest: from Citus' catalog
 * as committed now (after a lock), not from the cache or the transaction's
 * snapshot.
 */
static void
tenant_placement(const char *schema, bool latest, TenantPlacement *p)
{
	static SPIPlanPtr plan = NULL;
	Oid			nsp = get_namespace_oid(schema, true);
	Oid			log = OidIsValid(nsp) ? get_relname_relid(LOG_TABLE, nsp) : InvalidOid;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	PlacementEntry *e;
	bool		found;
	int			rc;

	memset(p, 0, sizeof(*p));
	if (!OidIsValid(log))
		return;
	if (placement_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(PlacementEntry);
		placement_cache = hash_create("smartsync citus placements", 64, &ctl, HASH_ELEM | HASH_BLOBS);
		sync_register_relcache_callback(placement_cache_callback, (Datum) 0);
	}
	if (!latest)
	{
		e = hash_search(placement_cache, &log, HASH_FIND, &found);
		if (found)
		{
			*p = e->p;
			return;
		}
	}

	values[0] = ObjectIdGetDatum(log);
	spi_connect();
	kept_plan(&plan, "SELECT s.shardid, bool_or(p.groupid = (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g))"
			  " FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement p ON p.shardid = s.shardid"
			  " WHERE s.logicalrelid = $1 GROUP BY s.shardid",
			  1, argtypes);
	if (latest)
		rc = SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(), InvalidSnapshot,
								  true, false, 2);
	else
		rc = SPI_execute_plan(plan, values, NULL, true, 2);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		bool		isnull;

		p->distributed = true;
		p->shardid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		p->local = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
	if (!latest)
	{
		e = hash_search(placement_cache, &log, HASH_ENTER, &found);
		e->p = *p;
	}
}

/*
 * Tenant schemas by tenant id, cached: a tenant keeps its schema once
 * provisioned (SS107), so an entry is only checked to name a schema that still
 * exists.
 */
typedef struct SchemaEntry
{
	char		tenant_id[256];	/* hash key (provisioning allows up to 255 characters) */
	char		schema[NAMEDATALEN];
} SchemaEntry;

static HTAB *schema_cache = NULL;

/* The schema of a provisioned tenant, or NULL (the caller's function reports unknown tenants). */
static char *
tenant_schema_or_null(const char *tenant_id)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	char	   *schema = NULL;
	SchemaEntry *e;
	bool		found;
	int			rc;

	if (strlen(tenant_id) >= sizeof(e->tenant_id))
		return NULL;
	if (schema_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(e->tenant_id);
		ctl.entrysize = sizeof(SchemaEntry);
		schema_cache = hash_create("smartsync citus tenants", 64, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	e = hash_search(schema_cache, tenant_id, HASH_FIND, &found);
	if (found && OidIsValid(get_namespace_oid(e->schema, true)))
		return pstrdup(e->schema);

	values[0] = CStringGetTextDatum(tenant_id);
	spi_connect();
	rc = SPI_execute_plan(kept_plan(&plan, "SELECT schema_name::pg_catalog.text FROM smartsync.tenants WHERE tenant_id = $1",
									1, argtypes),
						  values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		schema = SPI_palloc(strlen(s) + 1);
		strcpy(schema, s);
	}
	SPI_finish();
	if (schema != NULL && strlen(schema) < NAMEDATALEN)
	{
		e = hash_search(schema_cache, tenant_id, HASH_ENTER, &found);
		strlcpy(e->schema, schema, NAMEDATALEN);
	}
	return schema;
}

/* Raises SS851: the tenant's data is on another node. */
static void
tenant_elsewhere(const char *tenant_id, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_SS_CITUS_ELSEWHERE),
			 errmsg("the data of tenant \"%s\" is not on this node", tenant_id),
			 errdetail("%s", why),
			 errhint("Retry the request: it is routed to the node that holds the tenant now.")));
}

/* --- the request context, carried to the tenant's node ---------------------- */

/* Adds one "name": "value" pair (value NULL: JSON null). */
static void
push_pair(JsonbParseState **st, const char *name, const char *value)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.val = (char *) name;
	k.val.string.len = strlen(name);
	pushJsonbValue(st, WJB_KEY, &k);
	if (value == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) value;
		v.val.string.len = strlen(value);
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* The GUC variables (their count in *n). */
static struct config_generic **
guc_variables(int *n)
{
#if PG_VERSION_NUM >= 160000
	return get_guc_variables(n);
#else
	*n = GetNumConfigOptions();
	return get_guc_variables();
#endif
}

/*
 * The settings that make the caller's request context: request.jwt.claims,
 * TimeZone, and every smartsync.* setting a user may set that is not at its
 * default (tenant, practice, user, client, permissions, limits); a superuser's
 * superuser-only ones too (smartsync.trust_direct_sql).  The routed call runs
 * as the same user, so it may set them all; settings a role has by ALTER ROLE
 * reach the worker's session anyway (Citus propagates them).
 */
static Jsonb *
context_settings(void)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	struct config_generic **vars;
	int			n;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	push_pair(&st, "request.jwt.claims", GetConfigOption("request.jwt.claims", true, false));
	push_pair(&st, "TimeZone", GetConfigOption("TimeZone", false, false));
	vars = guc_variables(&n);
	for (int i = 0; i < n; i++)
	{
		struct config_generic *g = vars[i];

		if (strncmp(g->name, "smartsync.", 10) != 0 ||
			!(g->context == PGC_USERSET || (g->context == PGC_SUSET && superuser())) ||
			(g->flags & GUC_CUSTOM_PLACEHOLDER) || g->source <= PGC_S_DEFAULT)
			continue;
		push_pair(&st, g->name, GetConfigOption(g->name, false, false));
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* Sets the settings of context_settings() for the current GUC nest level. */
static void
apply_context_settings(Jsonb *settings)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;
	GucContext	ctx = superuser() ? PGC_SUSET : PGC_USERSET;

	if (!JB_ROOT_IS_OBJECT(settings))
		elog(ERROR, "smartsync._citus_call: the context is not a JSON object");
	it = JsonbIteratorInit(&settings->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && name != NULL)
		{
			const char *value = v.type == jbvString ? pnstrdup(v.val.string.val, v.val.string.len) : "";

			if (strcmp(name, "request.jwt.claims") != 0 && strcmp(name, "TimeZone") != 0 &&
				strncmp(name, "smartsync.", 10) != 0)
				elog(ERROR, "smartsync._citus_call: setting \"%s\" is not part of a request context", name);
			(void) set_config_option(name, value, ctx, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
			name = NULL;
		}
	}
}

/* --- routing --------------------------------------------------------------- */

/*
 * The result of a routed call, and its jsonb arguments (a push's payload),
 * travel as the bytes of their jsonb (a bytea), so neither node prints and
 * parses them as JSON text: every node of a cluster runs the same PostgreSQL
 * major version, hence the same jsonb format.  Makes the bytes a jsonb,
 * checking its root header: in place when they have a 4-byte header and are
 * aligned as a jsonb is (as a bytea copied out of a tuple, or in an array, is),
 * else in a copy.
 */
static Jsonb *
jsonb_from_bytes(bytea *b)
{
	Size		len = VARSIZE_ANY_EXHDR(b);
	Jsonb	   *jb;

	if (len < sizeof(uint32))
		elog(ERROR, "smartsync: a routed call returned %zu bytes, not a jsonb", len);
	if (VARATT_IS_4B_U(b) && (uintptr_t) b % ALIGNOF_INT == 0)
		jb = (Jsonb *) b;
	else
	{
		jb = palloc(VARHDRSZ + len);
		SET_VARSIZE(jb, VARHDRSZ + len);
		memcpy(VARDATA(jb), VARDATA_ANY(b), len);
	}
	if ((jb->root.header & (JB_FOBJECT | JB_FARRAY)) == 0 ||
		((jb->root.header & JB_FSCALAR) && !(jb->root.header & JB_FARRAY)))
		elog(ERROR, "smartsync: a routed call returned bytes that are not a jsonb");
	return jb;
}

/*
 * Receives the router query's one row: its value copied out once, into the
 * caller's memory context (SPI would copy the row into its own table first).
 */
typedef struct RouteReceiver
{
	DestReceiver pub;
	MemoryContext cxt;
	uint64		rows;
	bool		isnull;
	Datum		value;
} RouteReceiver;

static bool
route_receive(TupleTableSlot *slot, DestReceiver *self)
{
	RouteReceiver *r = (RouteReceiver *) self;

	if (r->rows++ == 0)
	{
		Datum		d = slot_getattr(slot, 1, &r->isnull);

		if (!r->isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(r->cxt);

			/* (a varlena with a 4-byte header, detoasted) */
			r->value = PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
			MemoryContextSwitchTo(old);
		}
	}
	return true;
}

static void
route_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
route_shutdown(DestReceiver *self)
{
}

static void
route_destroy(DestReceiver *self)
{
}

/*
 * Router-query plans by tenant schema and number of arguments, kept (at most
 * ROUTE_PLANS, then all dropped).  Each argument is a parameter of its own,
 * gathered into the bytea[] of _citus_call on the tenant's node (ARRAY[$3,
 * ...]): Citus sends parameters as text, and a bytea's text (hex) is made and
 * read at memory speed, where a bytea[]'s is scanned for quoting and escaped
 * on one node and parsed on the other.
 */
typedef struct RouteKey
{
	char		schema[NAMEDATALEN];
	int			nargs;
} RouteKey;

typedef struct RouteEntry
{
	RouteKey	key;			/* hash key */
	SPIPlanPtr	plan;
} RouteEntry;

#define ROUTE_PLANS 1024

static HTAB *route_cache = NULL;

/* The kept plan of schema's router query for a function of nargs arguments (call inside SPI). */
static SPIPlanPtr
route_plan(const char *schema, int nargs)
{
	RouteKey	key;
	RouteEntry *e;
	bool		found;
	SPIPlanPtr	plan;
	StringInfoData q;
	Oid		   *argtypes;

	if (route_cache != NULL && hash_get_num_entries(route_cache) >= ROUTE_PLANS)
	{
		HASH_SEQ_STATUS status;

		hash_seq_init(&status, route_cache);
		while ((e = hash_seq_search(&status)) != NULL)
			SPI_freeplan(e->plan);
		hash_destroy(route_cache);
		route_cache = NULL;
	}
	if (route_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(RouteKey);
		ctl.entrysize = sizeof(RouteEntry);
		route_cache = hash_create("smartsync citus routes", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	memset(&key, 0, sizeof(key));
	strlcpy(key.schema, schema, NAMEDATALEN);
	key.nargs = nargs;
	e = hash_search(route_cache, &key, HASH_FIND, &found);
	if (found)
		return e->plan;

	argtypes = palloc(sizeof(Oid) * (2 + nargs));
	argtypes[0] = JSONBOID;
	argtypes[1] = TEXTOID;
	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT smartsync._citus_call($1, $2, ");
	if (nargs == 0)
		appendStringInfoString(&q, "'{}'::pg_catalog.bytea[]");
	else
	{
		appendStringInfoString(&q, "ARRAY[");
		for (int i = 0; i < nargs; i++)
		{
			argtypes[2 + i] = BYTEAOID;
			appendStringInfo(&q, "%s$%d", i > 0 ? ", " : "", 3 + i);
		}
		appendStringInfoString(&q, "]::pg_catalog.bytea[]");
	}
	appendStringInfo(&q, ") FROM %s." ORIGIN_TABLE, quote_identifier(schema));
	plan = SPI_prepare(q.data, 2 + nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	e = hash_search(route_cache, &key, HASH_ENTER, &found);
	e->plan = plan;
	return plan;
}

/*
 * Runs the call fcinfo describes here, on the node that holds its tenant,
 * holding the tenant (hold_tenant: its statements address the tenant's shards)
 * until the call returns.
 */
static bool
run_here(FunctionCallInfo fcinfo, Datum *result)
{
	Oid			saved_schema = held_schema;

	routed_depth++;
	held_schema = InvalidOid;
	PG_TRY();
	{
		hold_tenant();
		fcinfo->isnull = false;
		*result = FunctionCallInvoke(fcinfo);
	}
	PG_FINALLY();
	{
		routed_depth--;
		held_schema = saved_schema;
	}
	PG_END_TRY();
	return true;
}

/*
 * Runs the call fcinfo describes on the node holding the request's tenant,
 * when that is another node: returns true with the call's result in *result.
 * When the tenant's shards are here, runs the call here holding the tenant
 * (run_here), true too.  False when the call is to run here as on a single
 * server: Citus not installed, no tenant or an unknown one (the function
 * reports it), a tenant not distributed.
 */
bool
sync_citus_route(FunctionCallInfo fcinfo, Datum *result)
{
	Oid			fn = fcinfo->flinfo->fn_oid;
	SyncContext ctx;
	char	   *schema;
	TenantPlacement where;
	Oid		   *argtypes;
	int			nargs;
	Datum	   *qvalues;
	char	   *qnulls;
	ParamListInfo params;
	SPIExecuteOptions options;
	RouteReceiver rcv;
	int			rc;
	MemoryContext callcxt = CurrentMemoryContext;

	if (routed_depth > 0 || !citus_installed())
		return false;
	sync_context_read(&ctx);
	if (ctx.tenant_id == NULL || (schema = tenant_schema_or_null(ctx.tenant_id)) == NULL)
		return false;
	tenant_placement(schema, false, &where);
	if (!where.distributed)
		return false;
	if (where.local)
		return run_here(fcinfo, result);

	/* the arguments, one bytea parameter each: a jsonb as its bytes, anything else as its text */
	(void) get_func_signature(fn, &argtypes, &nargs);
	qvalues = palloc0(sizeof(Datum) * (2 + nargs));
	qnulls = palloc(2 + nargs + 1);
	memset(qnulls, ' ', 2 + nargs);
	qnulls[2 + nargs] = '\0';
	for (int i = 0; i < nargs; i++)
	{
		if (i >= PG_NARGS() || PG_ARGISNULL(i))
		{
			qnulls[2 + i] = 'n';
			continue;
		}
		if (argtypes[i] == JSONBOID)
			qvalues[2 + i] = PointerGetDatum(PG_DETOAST_DATUM(PG_GETARG_DATUM(i)));
		else
		{
			Oid			out;
			bool		varlena;

			getTypeOutputInfo(argtypes[i], &out, &varlena);
			qvalues[2 + i] = CStringGetTextDatum(OidOutputFunctionCall(out, PG_GETARG_DATUM(i)));
		}
	}
	qvalues[0] = JsonbPGetDatum(context_settings());
	qvalues[1] = CStringGetTextDatum(format_procedure_qualified(fn));

	params = makeParamList(2 + nargs);
	params->numParams = 2 + nargs;
	for (int i = 0; i < 2 + nargs; i++)
	{
		params->params[i].value = qvalues[i];
		params->params[i].isnull = qnulls[i] == 'n';
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = i == 0 ? JSONBOID : i == 1 ? TEXTOID : BYTEAOID;
	}

	/* one Citus router query: runs on the tenant's node, in this transaction */
	memset(&rcv, 0, sizeof(rcv));
	rcv.pub.receiveSlot = route_receive;
	rcv.pub.rStartup = route_startup;
	rcv.pub.rShutdown = route_shutdown;
	rcv.pub.rDestroy = route_destroy;
	rcv.pub.mydest = DestNone;
	rcv.cxt = callcxt;
	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = func_volatile(fn) != PROVOLATILE_VOLATILE;
	options.dest = (DestReceiver *) &rcv;
	spi_connect();
	rc = SPI_execute_plan_extended(route_plan(schema, nargs), &options);
	/* (a SELECT into a receiver labelled DestNone, as this one is, answers SPI_OK_UTILITY) */
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute_plan_extended failed: %s", SPI_result_code_string(rc));
	SPI_finish();
	if (rcv.rows != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SS_CITUS_SETUP),
				 errmsg("tenant schema \"%s\" has no routing row", schema),
				 errdetail("%s.%s must hold exactly one row.", schema, ORIGIN_TABLE),
				 errhint("Run smartsync.citus_setup() on the coordinator.")));
	if (rcv.isnull)
		*result = (Datum) 0;
	else
	{
		Oid			rettype = get_func_rettype(fn);

		if (rettype == JSONBOID)
			*result = PointerGetDatum(jsonb_from_bytes((bytea *) DatumGetPointer(rcv.value)));
		else
		{
			Oid			in;
			Oid			ioparam;

			getTypeInputInfo(rettype, &in, &ioparam);
			*result = OidInputFunctionCall(in, TextDatumGetCString(rcv.value), ioparam, -1);
		}
	}
	fcinfo->isnull = rcv.isnull;
	return true;
}

/*
 * Lets the queries of a routed call reach this node's shards from within the
 * Citus task that runs the call (for the current GUC nest level).  Citus
 * refuses nested distributed execution because a shard could move meanwhile;
 * hold_tenant() keeps the tenant's shards here until the transaction ends.
 */
static void
allow_nested_execution(void)
{
	(void) set_config_option("citus.allow_nested_distributed_execution", "on",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

/* Takes the shard metadata lock of a shard (what a move's cut-over waits for). */
static void
lock_shard_metadata(int64 shardid, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (shardid >> 32), (uint32) shardid,
						 CITUS_SHARD_METADATA_LOCK_CLASS);
	(void) LockAcquire(&tag, mode, false, false);
}

/* Routable functions by signature, cached while the function exists. */
typedef struct FunctionEntry
{
	char		signature[256];	/* hash key */
	Oid			fn;
} FunctionEntry;

static HTAB *function_cache = NULL;

/* The routable smartsync function a signature names; raises on anything else. */
static Oid
routable_function(const char *signature)
{
	Oid			fn = InvalidOid;
	HeapTuple	tup;
	FunctionEntry *e = NULL;
	bool		found = false;
	Form_pg_proc proc;
	bool		ok = false;

	if (function_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(e->signature);
		ctl.entrysize = sizeof(FunctionEntry);
		function_cache = hash_create("smartsync citus functions", 16, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	if (strlen(signature) < sizeof(e->signature))
	{
		e = hash_search(function_cache, signature, HASH_FIND, &found);
		if (found && SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(e->fn)))
			fn = e->fn;
	}
	if (!OidIsValid(fn))
	{
		LOCAL_FCINFO(lookup, 1);
		Datum		d;

		InitFunctionCallInfoData(*lookup, NULL, 1, InvalidOid, NULL, NULL);
		lookup->args[0].value = CStringGetTextDatum(signature);
		lookup->args[0].isnull = false;
		d = to_regprocedure(lookup);
		fn = lookup->isnull ? InvalidOid : DatumGetObjectId(d);
	}

	if (!OidIsValid(fn) || get_func_namespace(fn) != get_namespace_oid("smartsync", false))
		elog(ERROR, "smartsync._citus_call: %s is not a smartsync function", signature);
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", fn);
	proc = (Form_pg_proc) GETSTRUCT(tup);
	for (int i = 0; routable[i] != NULL; i++)
		ok |= strcmp(NameStr(proc->proname), routable[i]) == 0;
	ok &= proc->prolang == ClanguageId && !proc->proretset &&
		(proc->prorettype == JSONBOID || proc->prorettype == BOOLOID);
	ReleaseSysCache(tup);
	if (!ok)
		elog(ERROR, "smartsync._citus_call: %s cannot be routed", signature);
	if (strlen(signature) < sizeof(e->signature))
	{
		e = hash_search(function_cache, signature, HASH_ENTER, &found);
		e->fn = fn;
	}
	if (pg_proc_aclcheck_compat(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(fn));
	return fn;
}

/* --- statements of a held tenant, on its shards ------------------------------ */

/*
 * While a call holds its tenant here (hold_tenant: the shard metadata lock, the
 * placement checked), the statements it runs on the tenant's tables need no
 * Citus planning: the tables' shards are on this node and cannot move away
 * before the transaction ends.  So the planner hook below gives such a
 * statement, already parsed and rewritten for the logical tables (row-level
 * security, defaults and the identity sequence as usual), the tables' local
 * shards instead, when every Citus table it names is one of the held tenant's
 * and each shard has its table's columns (same number, names, types, dropped
 * ones): Citus' planner then sees no Citus table and leaves the statement to
 * PostgreSQL's, instead of planning it, deparsing it for the shard and
 * planning it again (its local execution), or running an INSERT ... SELECT
 * through an intermediate result.  A statement that only reads (no write, no
 * row lock) reads the reference tables it names (the registry) from their
 * local copies too, as Citus' local execution would.  The shards' triggers
 * fire as under Citus' local execution (capture on shards).  The plan depends
 * on the logical tables too (relationOids), so Citus' invalidation of a table
 * whose placement changes (a move) replans it.  A statement with any other
 * Citus table (another tenant's, a reference table written) is left to Citus.
 */
typedef struct ShardSwap
{
	Oid			schema;			/* the held tenant's */
	bool		ok;				/* no Citus table left after the swap */
	bool		writes;			/* the statement writes or locks rows */
	bool		reference;		/* ... and reads a reference table */
	List	   *rtes;			/* RangeTblEntry to give their shards */
	List	   *queries;		/* ... the Query of each */
	List	   *shards;			/* ... those shards, in the same order */
} ShardSwap;

static planner_hook_type prev_planner = NULL;
static bool shard_planner_installed = false;

/* Whether shard has table's columns, attribute by attribute (cached in the shard entry). */
static bool
same_layout(ShardEntry *e)
{
	Relation	t;
	Relation	s;
	TupleDesc	td;
	TupleDesc	sd;
	bool		same;
	Oid			table = e->table;
	Oid			shard = e->shard;

	if (e->layout != 0)
		return e->layout > 0;
	/* (opening may take invalidations that drop cache entries: e is only written last) */
	t = relation_open(table, AccessShareLock);
	s = relation_open(shard, AccessShareLock);
	td = RelationGetDescr(t);
	sd = RelationGetDescr(s);
	same = td->natts == sd->natts && t->rd_rel->relkind == s->rd_rel->relkind;
	for (int i = 0; same && i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);
		Form_pg_attribute b = TupleDescAttr(sd, i);

		same = a->attisdropped == b->attisdropped &&
			(a->attisdropped ||
			 (a->atttypid == b->atttypid && a->atttypmod == b->atttypmod &&
			  a->attcollation == b->attcollation && strcmp(NameStr(a->attname), NameStr(b->attname)) == 0)) &&
			a->attlen == b->attlen && a->attalign == b->attalign;
	}
	relation_close(s, AccessShareLock);
	relation_close(t, AccessShareLock);
	if ((e = hash_search(shard_cache, &table, HASH_FIND, NULL)) != NULL && e->shard == shard)
		e->layout = same ? 1 : -1;
	return same;
}

/* Looks at one relation of a statement (q: the query whose range table has it). */
static void
shard_swap_rte(RangeTblEntry *rte, Query *q, ShardSwap *w)
{
	Oid			nsp;
	ShardEntry *e;
	Oid			shard;
	bool		reference;

	if (rte->rtekind != RTE_RELATION || (nsp = get_rel_namespace(rte->relid)) == PG_CATALOG_NAMESPACE)
		return;
	e = shard_entry(rte->relid);
	if (!e->citus)
		return;					/* an ordinary relation: as it is */
	shard = e->shard;
	reference = e->reference;
	if ((nsp == w->schema || reference) && OidIsValid(shard) &&
		(rte->relkind == RELKIND_RELATION || rte->relkind == RELKIND_PARTITIONED_TABLE) &&
		same_layout(e))
	{
		w->reference |= reference;
		w->rtes = lappend(w->rtes, rte);
		w->queries = lappend(w->queries, q);
		w->shards = lappend_oid(w->shards, shard);
	}
	else
		w->ok = false;			/* a Citus table that stays: Citus plans the statement */
}

static bool
shard_swap_walker(Node *node, ShardSwap *w)
{
	if (node == NULL || !w->ok)
		return false;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;
		ListCell   *lc;

		w->writes |= q->commandType != CMD_SELECT || q->rowMarks != NIL || q->hasModifyingCTE;
		foreach(lc, q->rtable)
			shard_swap_rte((RangeTblEntry *) lfirst(lc), q, w);
		/* (subqueries, CTEs and sublinks: walked as queries of their own) */
		return query_tree_walker(q, shard_swap_walker, (void *) w, 0);
	}
	return expression_tree_walker(node, shard_swap_walker, (void *) w);
}

/*
 * Gives the held tenant's tables in parse their local shards (see above), when
 * every Citus table in it is one; returns the logical tables swapped (NIL: none).
 */
static List *
swap_to_shards(Query *parse)
{
	ShardSwap	w;
	List	   *tables = NIL;
	ListCell   *r;
	ListCell   *q;
	ListCell   *s;

	memset(&w, 0, sizeof(w));
	w.schema = held_schema;
	w.ok = true;
	(void) shard_swap_walker((Node *) parse, &w);
	/* (a write of a reference table goes to every node's copy: Citus') */
	if (!w.ok || w.rtes == NIL || (w.writes && w.reference))
		return NIL;
	forthree(r, w.rtes, q, w.queries, s, w.shards)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(r);
		Oid			shard = lfirst_oid(s);

		/* the executor expects every relation of a plan locked by its planning */
		LockRelationOid(shard, rte->rellockmode);
		tables = list_append_unique_oid(tables, rte->relid);
#if PG_VERSION_NUM >= 160000
		/* the privileges are checked on the shard (Citus gives it its table's grants) */
		if (rte->perminfoindex != 0)
			getRTEPermissionInfo(((Query *) lfirst(q))->rteperminfos, rte)->relid = shard;
#else
		(void) q;
#endif
		rte->relid = shard;
	}
	return tables;
}

static PlannedStmt *
shard_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	List	   *tables = NIL;
	PlannedStmt *stmt;

	if (routed_depth > 0 && OidIsValid(held_schema))
		tables = swap_to_shards(parse);
	if (prev_planner)
		stmt = prev_planner(parse, query_string, cursorOptions, boundParams);
	else
		stmt = standard_planner(parse, query_string, cursorOptions, boundParams);
	if (tables != NIL)
		stmt->relationOids = list_concat_unique_oid(stmt->relationOids, tables);
	return stmt;
}

/* Installs shard_planner (once, when a call first holds a tenant: Citus' planner hook is installed by then). */
static void
install_shard_planner(void)
{
	if (shard_planner_installed)
		return;
	prev_planner = planner_hook;
	planner_hook = shard_planner;
	shard_planner_installed = true;
}

/*
 * Keeps the request's tenant on this node until the transaction ends: takes
 * the shard metadata lock of its change log, then checks (in Citus' catalog
 * as committed now) that the log's shard is here.  SS851 when it is not.
 */
static void
hold_tenant(void)
{
	SyncContext ctx;
	char	   *schema;
	TenantPlacement where;

	sync_context_read(&ctx);
	if (ctx.tenant_id == NULL || (schema = tenant_schema_or_null(ctx.tenant_id)) == NULL)
		return;					/* the function reports it */
	tenant_placement(schema, false, &where);
	if (!where.distributed)
		return;
	/* (a standby, where only a pull can run, takes no such lock; its cursors tell moves apart) */
	if (!RecoveryInProgress())
		lock_shard_metadata(where.shardid, ShareLock);
	tenant_placement(schema, true, &where);
	if (!where.local)
		tenant_elsewhere(ctx.tenant_id, "The tenant moved to another node while the request was on its way.");
	held_schema = get_namespace_oid(schema, false);
	install_shard_planner();
}

/*
 * smartsync._citus_call(context jsonb, function text, arguments bytea[]) RETURNS
 * bytea: the other half of sync_citus_route(), run by Citus on the node that
 * holds the tenant.  Sets the context's settings for the call, keeps the tenant
 * here, and calls the function (one of the routable ones, with the caller's
 * EXECUTE privilege checked) with the arguments (a jsonb's bytes, or another
 * type's text read in its parameter type); returns the bytes of the jsonb it
 * returns (sync_changed: the text of its boolean).
 */
Datum
smartsync_citus_call(PG_FUNCTION_ARGS)
{
	Jsonb	   *settings;
	Oid			fn;
	ArrayType  *arr;
	Datum	   *elems = NULL;
	bool	   *elemnulls = NULL;
	int			nelems = 0;
	Oid		   *argtypes;
	int			nargs;
	FmgrInfo	flinfo;
	LOCAL_FCINFO(call, FUNC_MAX_ARGS);
	Datum		result;
	int			nest;
	Oid			rettype;
	Oid			saved_schema;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		elog(ERROR, "smartsync._citus_call: arguments must not be null");
	settings = PG_GETARG_JSONB_P(0);
	fn = routable_function(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	arr = PG_GETARG_ARRAYTYPE_P(2);
	(void) get_func_signature(fn, &argtypes, &nargs);
	if (ARR_NDIM(arr) > 1 || ARR_ELEMTYPE(arr) != BYTEAOID)
		elog(ERROR, "smartsync._citus_call: arguments must be a bytea array");
	deconstruct_array(arr, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &elemnulls, &nelems);
	if (nelems != nargs)
		elog(ERROR, "smartsync._citus_call: %d arguments for a function of %d", nelems, nargs);

	nest = NewGUCNestLevel();
	apply_context_settings(settings);
	allow_nested_execution();
	saved_schema = held_schema;
	held_schema = InvalidOid;
	hold_tenant();

	fmgr_info(fn, &flinfo);
	rettype = get_func_rettype(fn);
	InitFunctionCallInfoData(*call, &flinfo, nargs, InvalidOid, NULL, NULL);
	for (int i = 0; i < nargs; i++)
	{
		call->args[i].isnull = elemnulls[i];
		call->args[i].value = (Datum) 0;
		if (elemnulls[i])
			continue;
		if (argtypes[i] == JSONBOID)
			call->args[i].value = PointerGetDatum(jsonb_from_bytes(DatumGetByteaPP(elems[i])));
		else
		{
			Oid			in;
			Oid			ioparam;

			getTypeInputInfo(argtypes[i], &in, &ioparam);
			call->args[i].value = OidInputFunctionCall(in, TextDatumGetCString(elems[i]), ioparam, -1);
		}
	}

	routed_depth++;
	PG_TRY();
	{
		bool		strict_null = false;

		if (flinfo.fn_strict)
			for (int i = 0; i < nargs; i++)
				strict_null |= call->args[i].isnull;
		if (strict_null)
		{
			result = (Datum) 0;
			call->isnull = true;
		}
		else
			result = FunctionCallInvoke(call);
	}
	PG_FINALLY();
	{
		routed_depth--;
		held_schema = saved_schema;
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nest);
	if (call->isnull)
		PG_RETURN_NULL();
	/* the jsonb's bytes, as they are (jsonb_from_bytes on the calling node); another type's text */
	if (rettype != JSONBOID)
	{
		Oid			out;
		bool		varlena;

		getTypeOutputInfo(rettype, &out, &varlena);
		PG_RETURN_BYTEA_P((bytea *) cstring_to_text(OidOutputFunctionCall(out, result)));
	}
	PG_RETURN_BYTEA_P((bytea *) PG_DETOAST_DATUM(result));
}

/* --- capture on shards ---------------------------------------------------- */

/* The Citus table whose local shard rel is, or InvalidOid. */
static Oid
shard_table(Relation rel)
{
	const char *name = RelationGetRelationName(rel);
	const char *us = strrchr(name, '_');
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	Oid			table = InvalidOid;
	int64		shardid;
	char	   *end;

	if (us == NULL || us[1] == '\0' || strspn(us + 1, "0123456789") != strlen(us + 1))
		return InvalidOid;
	errno = 0;
	shardid = strtoll(us + 1, &end, 10);
	if (errno != 0 || shardid <= 0)
		return InvalidOid;
	values[0] = Int64GetDatum(shardid);
	spi_connect();
	spi_query("SELECT s.logicalrelid::pg_catalog.oid, pg_catalog.shard_name(s.logicalrelid, s.shardid)"
			  " FROM pg_catalog.pg_dist_shard s WHERE s.shardid = $1",
			  1, argtypes, values, 1);
	if (SPI_processed == 1 &&
		relid_from_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)) == RelationGetRelid(rel))
	{
		bool		isnull;

		table = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	return table;
}

/* The local shard of table name in rel's schema; raises when there is none. */
static Oid
colocated_shard(Relation rel, const char *name, Oid *table)
{
	const char *schema = get_namespace_name(RelationGetNamespace(rel));
	Oid			shard;

	*table = get_relname_relid(name, RelationGetNamespace(rel));
	shard = OidIsValid(*table) ? local_shard(*table, NULL) : InvalidOid;
	if (!OidIsValid(shard))
		ereport(ERROR,
				(errcode(ERRCODE_SS_CITUS_SETUP),
				 errmsg("tenant schema \"%s\" has no shard of %s on this node", schema, name),
				 errdetail("A capture trigger fired on shard \"%s\"; its change log must be co-located with it.",
						   RelationGetRelationName(rel)),
				 errhint("Distribute tenant schemas with smartsync.citus_setup() or smartsync.provision_tenant().")));
	return shard;
}

bool
sync_citus_capture_target(Relation rel, const char **table_name, Oid *log_shard,
						  Oid *log_table, Oid *origin_shard)
{
	Oid			table;
	Oid			origin_table;

	if (!citus_installed() || !OidIsValid(table = shard_table(rel)))
		return false;
	*table_name = get_rel_name(table);
	*log_shard = colocated_shard(rel, LOG_TABLE, log_table);
	*origin_shard = colocated_shard(rel, ORIGIN_TABLE, &origin_table);
	return true;
}

/* --- adoption of a moved change log --------------------------------------- */

/* The row of a tenant's sync_log_origin shard. */
typedef struct LogOrigin
{
	bool		found;
	bool		native;			/* written by this node */
	uint32		epoch;
} LogOrigin;

/* Reads the origin row (heap scan of the one-row shard, in the active snapshot). */
static void
read_origin(Oid origin_shard, LogOrigin *o)
{
	Relation	rel = table_open(origin_shard, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	node_att = get_attnum(origin_shard, "node_id");
	AttrNumber	epoch_att = get_attnum(origin_shard, "epoch");
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	HeapTuple	tup;

	memset(o, 0, sizeof(*o));
	if (node_att == InvalidAttrNumber || epoch_att == InvalidAttrNumber)
		elog(ERROR, "relation \"%s\" is not a change-log origin", RelationGetRelationName(rel));
	if ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		node = heap_getattr(tup, node_att, desc, &isnull);

		o->found = true;
		o->native = !isnull && DatumGetInt64(node) == (int64) GetSystemIdentifier();
		o->epoch = (uint32) DatumGetInt32(heap_getattr(tup, epoch_att, desc, &isnull));
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* Raises SS852 for a tenant schema without its origin row. */
static void
origin_missing(Oid origin_shard)
{
	ereport(ERROR,
			(errcode(ERRCODE_SS_CITUS_SETUP),
			 errmsg("change-log origin \"%s\" has no row", get_rel_name(origin_shard)),
			 errhint("Run smartsync.citus_setup() on the coordinator.")));
}

/* The smallest number the identity sequence of log_table's seq column gives on this node. */
static int64
sequence_min(Oid log_table)
{
	Relation	rel = table_open(log_table, AccessShareLock);
	Oid			seq = getIdentitySequence_compat(rel, get_attnum(log_table, "seq"), false);
	HeapTuple	tup;
	int64		min;

	table_close(rel, AccessShareLock);
	tup = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seq));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for sequence %u", seq);
	min = ((Form_pg_sequence) GETSTRUCT(tup))->seqmin;
	ReleaseSysCache(tup);
	return min;
}

/*
 * Adopts the change log whose origin shard is given (the caller found it not
 * this node's).  In the caller's transaction, serialized by the origin row's
 * lock: the origin records this node and epoch + 1; the log's rows get
 * transaction id 1 and sequence numbers below every earlier one and below every
 * number this node's sequence gives, in their order; the retention horizon
 * (transaction ids of the old node) is reset.  Returns the new epoch, 0 when a
 * concurrent transaction adopted the log first.  Runs as the bootstrap
 * superuser: fixed statements on the tenant's own shards, which row-level
 * security must not filter.
 */
static uint32
adopt(Oid origin_shard)
{
	Oid			nsp = get_rel_namespace(origin_shard);
	const char *qnsp = quote_identifier(get_namespace_name(nsp));
	Oid			log_table = get_relname_relid(LOG_TABLE, nsp);
	Oid			horizon_table = get_relname_relid(HORIZON_TABLE, nsp);
	Oid			log_shard = OidIsValid(log_table) ? local_shard(log_table, NULL) : InvalidOid;
	Oid			horizon_shard = OidIsValid(horizon_table) ? local_shard(horizon_table, NULL) : InvalidOid;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	Oid			saved_user;
	int			saved_sec;
	int			rc;
	uint32		epoch = 0;

	if (!OidIsValid(log_shard))
		elog(ERROR, "the change log of schema %s has no shard on this node", qnsp);
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, saved_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		spi_connect();
		values[0] = Int64GetDatum((int64) GetSystemIdentifier());
		rc = SPI_execute_with_args(psprintf("UPDATE %s.%s SET node_id = $1, epoch = epoch + 1,"
											" adopted_at = pg_catalog.now()"
											" WHERE node_id IS DISTINCT FROM $1 RETURNING epoch",
											qnsp, quote_identifier(get_rel_name(origin_shard))),
								   1, argtypes, values, NULL, false, 0);
		if (rc != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
		if (SPI_processed > 0)
		{
			const char *qlog = quote_identifier(get_rel_name(log_shard));
			bool		isnull;

			epoch = (uint32) DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

			/* below every row's number and every number this node's sequence gives */
			values[0] = Int64GetDatum(sequence_min(log_table));
			rc = SPI_execute_with_args(psprintf("UPDATE %1$s.%2$s AS l SET xid = '1'::pg_catalog.xid8, seq = r.seq"
												" FROM (SELECT c.xid, c.seq AS old,"
												"  m.lo - m.n - 1 + pg_catalog.row_number() OVER (ORDER BY c.seq) AS seq"
												"  FROM %1$s.%2$s c, (SELECT LEAST(pg_catalog.min(seq), $1) AS lo,"
												"   pg_catalog.count(*) AS n FROM %1$s.%2$s) m) r"
												" WHERE l.xid = r.xid AND l.seq = r.old", qnsp, qlog),
									   1, argtypes, values, NULL, false, 0);
			if (rc != SPI_OK_UPDATE)
				elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
			if (OidIsValid(horizon_shard))
			{
				rc = SPI_execute(psprintf("UPDATE %s.%s SET max_pruned_xid = '1'::pg_catalog.xid8",
										  qnsp, quote_identifier(get_rel_name(horizon_shard))),
								 false, 0);
				if (rc != SPI_OK_UPDATE)
					elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
			}
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_sec);
	}
	PG_END_TRY();
	CommandCounterIncrement();
	return epoch;
}

/* The log's epoch after adopting it unless this node's already (0: another transaction did just now). */
static uint32
adopt_log(Oid origin_shard)
{
	LogOrigin	o;

	read_origin(origin_shard, &o);
	if (!o.found)
		origin_missing(origin_shard);
	return o.native ? o.epoch : adopt(origin_shard);
}

void
sync_citus_adopt_log(Oid origin_shard)
{
	(void) adopt_log(origin_shard);
}

/*
 * smartsync._citus_adopt(tenant_id text) RETURNS integer: adopts the tenant's
 * change log on this node (run on the tenant's node through a router query by
 * smartsync.citus_adopt_log); returns the log's epoch.
 */
Datum
smartsync_citus_adopt(PG_FUNCTION_ARGS)
{
	char	   *tenant_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			nest = NewGUCNestLevel();
	char	   *schema;
	TenantPlacement where;
	Oid			origin_table;
	Oid			origin_shard;
	LogOrigin	o;
	uint32		epoch;

	allow_nested_execution();
	schema = sync_tenant_schema(tenant_id);
	tenant_placement(schema, false, &where);
	if (!where.distributed)
	{
		AtEOXact_GUC(true, nest);
		PG_RETURN_NULL();
	}
	lock_shard_metadata(where.shardid, ShareLock);
	tenant_placement(schema, true, &where);
	if (!where.local)
		tenant_elsewhere(tenant_id, "The tenant moved to another node while the request was on its way.");
	origin_table = get_relname_relid(ORIGIN_TABLE, get_namespace_oid(schema, false));
	origin_shard = OidIsValid(origin_table) ? local_shard(origin_table, NULL) : InvalidOid;
	if (!OidIsValid(origin_shard))
		ereport(ERROR,
				(errcode(ERRCODE_SS_CITUS_SETUP),
				 errmsg("tenant schema \"%s\" has no %s shard on this node", schema, ORIGIN_TABLE),
				 errhint("Run smartsync.citus_setup() on the coordinator.")));
	epoch = adopt_log(origin_shard);
	if (epoch == 0)
	{
		/* adopted by a concurrent transaction: its epoch, as committed */
		PushActiveSnapshot(GetLatestSnapshot());
		read_origin(origin_shard, &o);
		PopActiveSnapshot();
		epoch = o.epoch;
	}
	AtEOXact_GUC(true, nest);
	PG_RETURN_INT32((int32) epoch);
}

/* --- pull ------------------------------------------------------------------ */

bool
sync_citus_log_state(const char *schema, uint32 *epoch)
{
	Oid			nsp;
	Oid			origin_table;
	Oid			origin_shard;
	LogOrigin	o;

	*epoch = 0;
	if (!citus_installed())
		return true;
	nsp = get_namespace_oid(schema, false);
	origin_table = get_relname_relid(ORIGIN_TABLE, nsp);
	if (!OidIsValid(origin_table))
		return true;			/* not a Citus tenant */
	origin_shard = local_shard(origin_table, NULL);
	if (!OidIsValid(origin_shard))
		return true;			/* not distributed (yet) */
	read_origin(origin_shard, &o);
	if (!o.found)
		origin_missing(origin_shard);
	/* before adoption: the epoch adoption here will give */
	*epoch = o.native ? o.epoch : o.epoch + 1;
	return o.native;
}

/* --- the change signal ---------------------------------------------------- */

void
sync_citus_refuse_poll(const char *schema)
{
	TenantPlacement where;

	if (!citus_installed())
		return;
	tenant_placement(schema, false, &where);
	if (where.distributed)
		ereport(ERROR,
				(errcode(ERRCODE_SS_CITUS_POLL),
				 errmsg("poll_changes cannot watch tenant schema \"%s\": Citus holds its change log on a worker", schema),
				 errdetail("A poll compares one node's snapshots with the transaction ids of the change log."),
				 errhint("On Citus, run smartsync-server with --signal none and let clients ask sync_changed(), which runs on the tenant's node (README \"Scaling out\").")));
}

/* --- the pull secret ------------------------------------------------------- */

bool
sync_citus_installed(void)
{
	return citus_installed();
}

Oid
sync_citus_local_relation(Oid relid)
{
	Oid			shard;

	if (!citus_installed())
		return relid;
	shard = local_shard(relid, NULL);
	return OidIsValid(shard) ? shard : relid;
}
