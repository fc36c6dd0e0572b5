/*
 * notify.c: the change signal.  When a transaction that wrote to a tenant's
 * change log commits, listeners learn it: one NOTIFY on the channel
 * smartsync_changes per tenant the transaction wrote to (normally one), sent
 * once per transaction, not once per row, with the payload
 *
 *     {"tenant": "<tenant id>", "practices": ["1", "2"]}
 *
 * "practices" lists the practices of the rows written, or is null when a row
 * reaches every practice (an entity type without a practice column, a row of
 * no practice) or when the list would not fit the payload.  The signal only
 * says "pull now": the pull stays the only source of data, so a spurious
 * signal (a rolled-back subtransaction) costs one empty pull and a lost one
 * costs latency, never data.
 *
 * Capture calls sync_notify_capture() once per statement; it notes the
 * tenant and practices in transaction memory.  A pre-commit transaction
 * callback turns them into notifications, which PostgreSQL delivers at commit
 * (and drops on abort).  Prepared transactions (PREPARE TRANSACTION) cannot
 * NOTIFY, so their changes are not signalled.
 *
 * NOTIFY serializes committing notifiers (PostgreSQL takes one lock for the
 * whole cluster from the queue insertion to the end of the commit), which
 * costs writers throughput (README, "The change signal"), so the signal is
 * off by default: smartsync.notify (a superuser setting; ALTER DATABASE ...
 * SET smartsync.notify = on) turns it on per database, and the registry's
 * smartsync.tenants.notify off again per tenant.  While it is off capture
 * pays nothing for it.  Servers that do not LISTEN poll instead (poll.c).
 *
 * Which tenant a schema belongs to, and whether its signal is on, is cached
 * per backend; a trigger on smartsync.tenants (smartsync._notify_registry_
 * changed) invalidates every backend's cache when the registry changes.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/parallel.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "smartsync.h"

PG_FUNCTION_INFO_V1(smartsync_notify_registry_changed);

/* the channel listeners LISTEN on */
#define NOTIFY_CHANNEL "smartsync_changes"

/*
 * Payloads stay well below PostgreSQL's limit (8000 bytes): a longer practice
 * list becomes "every practice".
 */
#define NOTIFY_PAYLOAD_BUDGET 7000

static bool notify_enabled = false;

/* What one transaction wrote to one tenant schema. */
typedef struct NotifyTenant
{
	Oid			nspoid;
	char	   *tenant_id;		/* NULL: not a tenant, or its signal is off */
	bool		all_practices;
	List	   *practices;		/* of char *, distinct */
	Size		practices_len;	/* their length as JSON, roughly */
} NotifyTenant;

/* in TopTransactionContext; NIL outside a transaction that captured */
static List *pending = NIL;
static bool callback_registered = false;

/* per backend: schema -> its tenant, when the tenant's signal is on */
typedef struct TenantCacheEntry
{
	Oid			nspoid;			/* hash key */
	char	   *tenant_id;		/* in tenant_cache_cxt; NULL: no tenant, or signal off */
} TenantCacheEntry;

static HTAB *tenant_cache = NULL;
static MemoryContext tenant_cache_cxt = NULL;
static Oid	tenants_relid = InvalidOid;

/* Forgets every cached tenant. */
static void
tenant_cache_reset(void)
{
	if (tenant_cache_cxt != NULL)
		MemoryContextDelete(tenant_cache_cxt);
	tenant_cache_cxt = NULL;
	tenant_cache = NULL;
	tenants_relid = InvalidOid;
}

/* Relcache callback: the registry (or everything) was invalidated. */
static void
tenant_cache_relcache_callback(Datum arg, Oid relid)
{
	if (tenant_cache != NULL && (!OidIsValid(relid) || relid == tenants_relid))
		tenant_cache_reset();
}

/* Syscache callback: a schema was dropped or renamed. */
static void
tenant_cache_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	if (tenant_cache != NULL)
		tenant_cache_reset();
}

/* Defines smartsync.notify. */
void
sync_notify_init(void)
{
	DefineCustomBoolVariable("smartsync.notify",
							 "Signals committed changes on the channel smartsync_changes.",
							 "One NOTIFY per tenant and transaction that wrote to a change log. "
							 "Set it per database: ALTER DATABASE ... SET smartsync.notify = on.",
							 &notify_enabled, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/* Sends the notifications of the committing transaction. */
static void
notify_send(void)
{
	ListCell   *lc;

	foreach(lc, pending)
	{
		NotifyTenant *t = lfirst(lc);
		StringInfoData p;

		if (t->tenant_id == NULL)
			continue;
		initStringInfo(&p);
		appendStringInfoString(&p, "{\"tenant\": ");
		escape_json(&p, t->tenant_id);
		appendStringInfoString(&p, ", \"practices\": ");
		if (t->all_practices)
			appendStringInfoString(&p, "null");
		else
		{
			ListCell   *pc;

			appendStringInfoChar(&p, '[');
			foreach(pc, t->practices)
			{
				if (pc != list_head(t->practices))
					appendStringInfoString(&p, ", ");
				escape_json(&p, (char *) lfirst(pc));
			}
			appendStringInfoChar(&p, ']');
		}
		appendStringInfoChar(&p, '}');
		Async_Notify(NOTIFY_CHANNEL, p.data);
	}
}

/* Transaction callback: notifies before commit; forgets at the end. */
static void
notify_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (pending != NIL)
				notify_send();
			pending = NIL;
			break;
		case XACT_EVENT_PRE_PREPARE:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* the memory goes with TopTransactionContext */
			pending = NIL;
			break;
	}
}

/*
 * The tenant whose schema is nspoid, read from the registry
 * (smartsync.tenants) through its schema_name index.  Returns NULL for a
 * schema of no tenant or a tenant whose signal is off.
 */
static char *
notify_read_tenant(Oid nspoid)
{
	Oid			sync_nsp = get_namespace_oid("smartsync", true);
	Oid			relid;
	Oid			indexid;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	NameData	nspname;
	char	   *name = get_namespace_name(nspoid);
	char	   *tenant = NULL;

	if (!OidIsValid(sync_nsp) || name == NULL)
		return NULL;
	relid = get_relname_relid("tenants", sync_nsp);
	indexid = get_relname_relid("tenants_schema_name_key", sync_nsp);
	if (!OidIsValid(relid) || !OidIsValid(indexid))
		return NULL;
	tenants_relid = relid;
	namestrcpy(&nspname, name);

	rel = table_open(relid, AccessShareLock);
	ScanKeyInit(&key, get_attnum(relid, "schema_name"), BTEqualStrategyNumber, F_NAMEEQ,
				NameGetDatum(&nspname));
	scan = systable_beginscan(rel, indexid, true,
							  ActiveSnapshotSet() ? GetActiveSnapshot() : NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		AttrNumber	notify_att = get_attnum(relid, "notify");
		bool		isnull;
		Datum		d;
		bool		on = true;

		if (notify_att != InvalidAttrNumber)
		{
			d = heap_getattr(tup, notify_att, desc, &isnull);
			on = isnull || DatumGetBool(d);
		}
		d = heap_getattr(tup, get_attnum(relid, "tenant_id"), desc, &isnull);
		if (on && !isnull)
			tenant = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return tenant;
}

/* The tenant whose schema is nspoid (NULL: none, or its signal is off), cached. */
static const char *
notify_tenant(Oid nspoid)
{
	TenantCacheEntry *e;
	bool		found;
	char	   *tenant;

	if (tenant_cache == NULL)
	{
		HASHCTL		ctl;
		static bool registered = false;

		if (!registered)
		{
			sync_register_relcache_callback(tenant_cache_relcache_callback, (Datum) 0);
			CacheRegisterSyscacheCallback(NAMESPACEOID, tenant_cache_syscache_callback, (Datum) 0);
			registered = true;
		}
		tenant_cache_cxt = AllocSetContextCreate(CacheMemoryContext, "smartsync notify tenants",
												 ALLOCSET_SMALL_SIZES);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TenantCacheEntry);
		ctl.hcxt = tenant_cache_cxt;
		tenant_cache = hash_create("smartsync notify tenants", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(tenant_cache, &nspoid, HASH_FIND, NULL);
	if (e != NULL)
		return e->tenant_id;

	/* reading the registry may process invalidations, which reset the cache */
	tenant = notify_read_tenant(nspoid);
	if (tenant_cache == NULL)
		return tenant;
	e = hash_search(tenant_cache, &nspoid, HASH_ENTER, &found);
	e->tenant_id = tenant ? MemoryContextStrdup(tenant_cache_cxt, tenant) : NULL;
	return e->tenant_id;
}

/*
 * smartsync._notify_registry_changed(): AFTER STATEMENT trigger of
 * smartsync.tenants; makes every backend forget its cached tenants (at its
 * next transaction), so a new tenant or a changed notify takes effect.
 */
Datum
smartsync_notify_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync._notify_registry_changed() must be called as a trigger")));
	td = (TriggerData *) fcinfo->context;
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}

/* Notes practice value d (text form) for t; too many becomes "every practice". */
static void
notify_add_practice(NotifyTenant *t, const char *practice)
{
	ListCell   *lc;
	MemoryContext old;

	foreach(lc, t->practices)
	{
		if (strcmp((char *) lfirst(lc), practice) == 0)
			return;
	}
	t->practices_len += strlen(practice) * 6 + 4;	/* worst-case JSON escaping */
	if ((int64) t->practices_len + (int64) strlen(t->tenant_id) * 6 + 64 > NOTIFY_PAYLOAD_BUDGET)
	{
		t->all_practices = true;
		return;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	t->practices = lappend(t->practices, pstrdup(practice));
	MemoryContextSwitchTo(old);
}

/* Notes the practices of the rows in one transition table. */
static void
notify_scan_practices(NotifyTenant *t, Relation rel, Tuplestorestate *ts, AttrNumber att)
{
	Form_pg_attribute a = TupleDescAttr(RelationGetDescr(rel), att - 1);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);
	Oid			outfunc;
	bool		varlena;
	FmgrInfo	out;
	Datum		last = (Datum) 0;
	bool		have_last = false;

	getTypeOutputInfo(a->atttypid, &outfunc, &varlena);
	fmgr_info(outfunc, &out);
	/* the table may have been read already (by capture): read it from the start */
	tuplestore_rescan(ts);
	while (!t->all_practices && tuplestore_gettupleslot(ts, true, false, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, att, &isnull);

		if (isnull)
		{
			t->all_practices = true;	/* a row of no practice reaches every practice */
			break;
		}
		if (have_last && datumIsEqual(d, last, a->attbyval, a->attlen))
			continue;
		notify_add_practice(t, OutputFunctionCall(&out, d));
		if (have_last && !a->attbyval)
			pfree(DatumGetPointer(last));
		last = datumCopy(d, a->attbyval, a->attlen);
		have_last = true;
	}
	ExecDropSingleTupleTableSlot(slot);
	/* leave the table as a first reader finds it */
	tuplestore_rescan(ts);
}

/*
 * Called by capture once per statement that logged rows: notes the tenant of
 * the statement's table and the practices of its rows (old and new rows of an
 * update, when the trigger has both), for the signal sent at commit.
 */
void
sync_notify_capture(TriggerData *td)
{
	Relation	rel = td->tg_relation;
	Oid			nspoid = RelationGetNamespace(rel);
	NotifyTenant *t = NULL;
	ListCell   *lc;
	const char *practice_col;
	AttrNumber	att;

	if (!notify_enabled || IsParallelWorker())
		return;

	foreach(lc, pending)
	{
		if (((NotifyTenant *) lfirst(lc))->nspoid == nspoid)
		{
			t = lfirst(lc);
			break;
		}
	}
	if (t == NULL)
	{
		MemoryContext old;
		const char *tenant;

		if (!callback_registered)
		{
			RegisterXactCallback(notify_xact_callback, NULL);
			callback_registered = true;
		}
		tenant = notify_tenant(nspoid);

		old = MemoryContextSwitchTo(TopTransactionContext);
		t = palloc0(sizeof(NotifyTenant));
		t->nspoid = nspoid;
		t->tenant_id = tenant ? pstrdup(tenant) : NULL;
		pending = lappend(pending, t);
		MemoryContextSwitchTo(old);
	}
	if (t->tenant_id == NULL || t->all_practices)
		return;

	/* the capture trigger's third argument names the practice column */
	practice_col = td->tg_trigger->tgnargs >= 3 ? td->tg_trigger->tgargs[2] : "";
	att = practice_col[0] != '\0' ? get_attnum(RelationGetRelid(rel), practice_col) : InvalidAttrNumber;
	if (att == InvalidAttrNumber)
	{
		t->all_practices = true;
		return;
	}
	if (td->tg_newtable != NULL)
		notify_scan_practices(t, rel, td->tg_newtable, att);
	if (td->tg_oldtable != NULL)
		notify_scan_practices(t, rel, td->tg_oldtable, att);
}
