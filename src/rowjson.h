/*
 * rowjson.h: a row as jsonb, the same value to_jsonb(row) gives, built from a
 * per-relation plan (keys presorted, per-column converters chosen once) and
 * written straight into jsonb's binary format.
 */
#ifndef SMARTSYNC_ROWJSON_H
#define SMARTSYNC_ROWJSON_H

#include "postgres.h"
#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "utils/jsonb.h"

typedef struct RowJsonPlan RowJsonPlan;

extern RowJsonPlan *rowjson_plan_create(TupleDesc desc);
extern Jsonb *rowjson_convert(RowJsonPlan *plan, TupleTableSlot *slot);
extern Jsonb *rowjson_convert_columns(RowJsonPlan *plan, const Datum *values, const bool *isnull,
									  const bool *include);

#endif							/* SMARTSYNC_ROWJSON_H */
