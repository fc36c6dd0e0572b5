/*
 * capture_floor.c: the cheapest change capture there is, to measure the floor
 * under any design that writes its log in the writer's transaction
 * (bench/capture_floor.sh; a benchmark module, not part of smartsync).
 *
 * floor_log() is an AFTER INSERT OR UPDATE row trigger written as tightly as
 * PostgreSQL allows: no JSON, no SPI, no executor.  For each row it takes the
 * next value of a sequence and inserts a 16-byte tuple (seq bigint, entity
 * bigint: the row's first column) into a log table with heap_insert, then one
 * entry into each of the log's indexes with index_insert.  Its arguments are
 * the log's and the sequence's OIDs.  Every index of the log must be a btree
 * on (seq), (entity) or (entity, seq), in that order.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(floor_log);

Datum
floor_log(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	row;
	Oid			logoid;
	Oid			seqoid;
	Relation	log;
	List	   *indexes;
	ListCell   *lc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	bool		isnull;
	HeapTuple	tup;

	if (!CALLED_AS_TRIGGER(fcinfo) || trigdata->tg_trigger->tgnargs != 2)
		elog(ERROR, "floor_log: must be a row trigger with two arguments");
	row = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	logoid = (Oid) strtoul(trigdata->tg_trigger->tgargs[0], NULL, 10);
	seqoid = (Oid) strtoul(trigdata->tg_trigger->tgargs[1], NULL, 10);

	values[0] = Int64GetDatum(nextval_internal(seqoid, false));
	values[1] = heap_getattr(row, 1, RelationGetDescr(trigdata->tg_relation), &isnull);
	if (isnull)
		elog(ERROR, "floor_log: the row's first column is null");

	log = table_open(logoid, RowExclusiveLock);
	tup = heap_form_tuple(RelationGetDescr(log), values, nulls);
	heap_insert(log, tup, GetCurrentCommandId(true), 0, NULL);

	indexes = RelationGetIndexList(log);
	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo  *info = BuildIndexInfo(index);
		Datum		ivalues[2];
		bool		inulls[2] = {false, false};
		int			i;

		for (i = 0; i < info->ii_NumIndexKeyAttrs; i++)
			ivalues[i] = values[info->ii_IndexAttrNumbers[i] - 1];
		index_insert(index, ivalues, inulls, &tup->t_self, log,
					 index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, info);
		index_close(index, NoLock);
	}
	list_free(indexes);
	table_close(log, NoLock);
	heap_freetuple(tup);
	return PointerGetDatum(NULL);
}
