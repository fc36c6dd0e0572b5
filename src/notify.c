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
 * (and drops on abort).  smartsync.notify (a superuser setting, so ALTER
 * DATABASE ... SET smartsync.notify = off turns it off per database) and the
 * registry's smartsync.tenants.notify (per tenant) switch it off; then capture
 * pays nothing for it.  Prepared transactions (PREPARE TRANSACTION) cannot
 * NOTIFY, so their changes are not signalled.
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
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "smartsync.h"

/* the channel listeners LISTEN on */
#define NOTIFY_CHANNEL "smartsync_changes"

/*
 * Payloads stay well below PostgreSQL's limit (8000 bytes): a longer practice
 * list becomes "every practice".
 */
#define NOTIFY_PAYLOAD_BUDGET 7000

static bool notify_enabled = true;

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

/* Defines smartsync.notify. */
void
sync_notify_init(void)
{
	DefineCustomBoolVariable("smartsync.notify",
							 "Signals committed changes on the channel smartsync_changes.",
							 "One NOTIFY per tenant and transaction that wrote to a change log. "
							 "ALTER DATABASE ... SET smartsync.notify = off turns it off for a database.",
							 &notify_enabled, true,
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
 * The tenant whose schema is nspoid, and whether its signal is on, read from
 * the registry (smartsync.tenants) through its schema_name index.  Returns
 * NULL for a schema of no tenant or a tenant whose signal is off.
 */
static char *
notify_lookup_tenant(Oid nspoid)
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
			tenant = MemoryContextStrdup(TopTransactionContext, TextDatumGetCString(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return tenant;
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

		if (!callback_registered)
		{
			RegisterXactCallback(notify_xact_callback, NULL);
			callback_registered = true;
		}
		old = MemoryContextSwitchTo(TopTransactionContext);
		t = palloc0(sizeof(NotifyTenant));
		t->nspoid = nspoid;
		pending = lappend(pending, t);
		MemoryContextSwitchTo(old);
		t->tenant_id = notify_lookup_tenant(nspoid);
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
