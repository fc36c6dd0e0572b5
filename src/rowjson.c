/*
 * rowjson.c: convert a tracked row to jsonb for the change log.
 *
 * The result equals to_jsonb(row), but the work to_jsonb repeats for every
 * row (categorizing each column's type, formatting integers as text and
 * parsing them back as numeric, sorting the keys) is done once per relation:
 * the plan holds the keys in jsonb's order (length, then bytes) and a
 * converter per column.  Integers, numeric, booleans, text and date/time
 * values are converted directly; every other type (arrays, json, jsonb,
 * composites, domains, floats, user types with casts to json) goes through
 * to_jsonb for that one column, so the result is the same in all cases.
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "rowjson.h"

typedef enum ColKind
{
	COL_INT2,
	COL_INT4,
	COL_INT8,
	COL_NUMERIC,
	COL_BOOL,
	COL_TEXT,					/* text, varchar: the bytes themselves */
	COL_DATETIME,				/* date, timestamp, timestamptz */
	COL_OUTPUT,					/* built-in scalar: its output function as a string */
	COL_TO_JSONB				/* anything else: to_jsonb of the value */
} ColKind;

typedef struct RowJsonCol
{
	AttrNumber	attnum;
	ColKind		kind;
	Oid			typid;
	JsonbValue	key;
	FmgrInfo	fn;				/* output function or to_jsonb */
} RowJsonCol;

struct RowJsonPlan
{
	int			ncols;
	RowJsonCol *cols;			/* in jsonb key order */
};

/* jsonb's key order: shorter first, then bytewise. */
static int
col_key_cmp(const void *a, const void *b)
{
	const RowJsonCol *x = a;
	const RowJsonCol *y = b;

	if (x->key.val.string.len != y->key.val.string.len)
		return x->key.val.string.len > y->key.val.string.len ? 1 : -1;
	return memcmp(x->key.val.string.val, y->key.val.string.val, x->key.val.string.len);
}

/* Chooses the converter of one column type. */
static ColKind
col_kind(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
			return COL_INT2;
		case INT4OID:
			return COL_INT4;
		case INT8OID:
			return COL_INT8;
		case NUMERICOID:
			return COL_NUMERIC;
		case BOOLOID:
			return COL_BOOL;
		case TEXTOID:
		case VARCHAROID:
			return COL_TEXT;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return COL_DATETIME;
		case FLOAT4OID:
		case FLOAT8OID:
		case JSONOID:
		case JSONBOID:
		case RECORDOID:
			return COL_TO_JSONB;
		default:
			break;
	}
	/* user types may have casts to json; domains, arrays and composites have rules of their own */
	if (typid >= FirstGenbkiObjectId || get_typtype(typid) != TYPTYPE_BASE ||
		OidIsValid(get_element_type(typid)))
		return COL_TO_JSONB;
	return COL_OUTPUT;
}

/* Builds the conversion plan of a row type, in CurrentMemoryContext. */
RowJsonPlan *
rowjson_plan_create(TupleDesc desc)
{
	RowJsonPlan *plan = palloc0(sizeof(RowJsonPlan));

	plan->cols = palloc0(sizeof(RowJsonCol) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		RowJsonCol *c;

		if (att->attisdropped)
			continue;
		c = &plan->cols[plan->ncols++];
		c->attnum = att->attnum;
		c->typid = att->atttypid;
		c->kind = col_kind(att->atttypid);
		c->key.type = jbvString;
		c->key.val.string.val = pstrdup(NameStr(att->attname));
		c->key.val.string.len = strlen(c->key.val.string.val);
		if (c->kind == COL_OUTPUT)
		{
			Oid			outfunc;
			bool		varlena;

			getTypeOutputInfo(att->atttypid, &outfunc, &varlena);
			fmgr_info(outfunc, &c->fn);
		}
		else if (c->kind == COL_TO_JSONB)
		{
			/* to_jsonb reads its argument's type from the call expression */
			fmgr_info(F_TO_JSONB, &c->fn);
			c->fn.fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
												  list_make1(makeNullConst(att->atttypid, att->atttypmod,
																		   att->attcollation)),
												  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		}
	}
	qsort(plan->cols, plan->ncols, sizeof(RowJsonCol), col_key_cmp);
	return plan;
}

/* Sets v to a jsonb string of a NUL-terminated C string. */
static inline void
set_cstring(JsonbValue *v, char *s)
{
	v->type = jbvString;
	v->val.string.val = s;
	v->val.string.len = strlen(s);
}

/* The row in slot as jsonb, equal to to_jsonb(row). */
Jsonb *
rowjson_convert(RowJsonPlan *plan, TupleTableSlot *slot)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;

	slot_getallattrs(slot);
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < plan->ncols; i++)
	{
		RowJsonCol *c = &plan->cols[i];
		Datum		d = slot->tts_values[c->attnum - 1];
		JsonbValue	v;

		pushJsonbValue(&st, WJB_KEY, &c->key);
		if (slot->tts_isnull[c->attnum - 1])
		{
			v.type = jbvNull;
			pushJsonbValue(&st, WJB_VALUE, &v);
			continue;
		}
		switch (c->kind)
		{
			case COL_INT2:
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(DatumGetInt16(d));
				break;
			case COL_INT4:
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(DatumGetInt32(d));
				break;
			case COL_INT8:
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(DatumGetInt64(d));
				break;
			case COL_NUMERIC:
				{
					Numeric		n = DatumGetNumeric(d);

					/* NaN and infinities are not JSON numbers: to_jsonb makes them strings */
					if (numeric_is_nan(n) || numeric_is_inf(n))
						set_cstring(&v, DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n))));
					else
					{
						v.type = jbvNumeric;
						v.val.numeric = n;
					}
					break;
				}
			case COL_BOOL:
				v.type = jbvBool;
				v.val.boolean = DatumGetBool(d);
				break;
			case COL_TEXT:
				{
					text	   *t = DatumGetTextPP(d);

					v.type = jbvString;
					v.val.string.val = VARDATA_ANY(t);
					v.val.string.len = VARSIZE_ANY_EXHDR(t);
					break;
				}
			case COL_DATETIME:
				set_cstring(&v, JsonEncodeDateTime(NULL, d, c->typid, NULL));
				break;
			case COL_OUTPUT:
				set_cstring(&v, OutputFunctionCall(&c->fn, d));
				break;
			case COL_TO_JSONB:
				{
					Jsonb	   *j = DatumGetJsonbP(FunctionCall1(&c->fn, d));

					v.type = jbvBinary;
					v.val.binary.data = &j->root;
					v.val.binary.len = VARSIZE(j) - VARHDRSZ;
					break;
				}
		}
		pushJsonbValue(&st, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}
