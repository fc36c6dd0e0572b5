/*
 * rowjson.c: convert a tracked row to jsonb for the change log and pull.
 *
 * The result equals to_jsonb(row), but the work to_jsonb repeats for every
 * row (categorizing each column's type, formatting integers as text and
 * parsing them back as numeric, sorting the keys, building a JsonbValue tree
 * and converting it) is done once per relation or not at all: the plan holds
 * the keys in jsonb's order (length, then bytes) and a converter per column,
 * and the row is written straight into jsonb's binary format, one pass into
 * one buffer.  Integers, numeric, booleans, text and date/time values, and
 * one-dimensional arrays of those, are converted directly; every other type
 * (json, jsonb, composites, domains, floats, user types with casts to json,
 * other arrays) goes through to_jsonb for that one column, so the result is
 * the same in all cases.
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
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
	COL_ARRAY,					/* one-dimensional array of a direct kind */
	COL_TO_JSONB				/* anything else: to_jsonb of the value */
} ColKind;

typedef struct RowJsonCol
{
	AttrNumber	attnum;
	ColKind		kind;
	Oid			typid;
	char	   *key;
	int			keylen;
	FmgrInfo	fn;				/* output function (scalar or array element) or to_jsonb */
	/* arrays */
	ColKind		elemkind;
	Oid			elemtype;
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
} RowJsonCol;

struct RowJsonPlan
{
	int			ncols;
	RowJsonCol *cols;			/* in jsonb key order */
	int			estimate;		/* largest document written so far */
};

/* jsonb's key order: shorter first, then bytewise. */
static int
col_key_cmp(const void *a, const void *b)
{
	const RowJsonCol *x = a;
	const RowJsonCol *y = b;

	if (x->keylen != y->keylen)
		return x->keylen > y->keylen ? 1 : -1;
	return memcmp(x->key, y->key, x->keylen);
}

/* Chooses the direct converter of a scalar type, or COL_TO_JSONB. */
static ColKind
scalar_kind(Oid typid)
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

/* Prepares column c of type typid (and typmod, collation for to_jsonb). */
static void
col_prepare(RowJsonCol *c, Oid typid, int32 typmod, Oid collation)
{
	Oid			elemtype = get_element_type(typid);

	c->typid = typid;
	c->kind = scalar_kind(typid);
	if (OidIsValid(elemtype) && get_typtype(typid) == TYPTYPE_BASE && typid < FirstGenbkiObjectId)
	{
		ColKind		ek = scalar_kind(elemtype);

		/* arrays of integers, numeric, booleans, text, dates and times: element by element */
		if (ek != COL_TO_JSONB && ek != COL_OUTPUT)
		{
			c->kind = COL_ARRAY;
			c->elemkind = ek;
			c->elemtype = elemtype;
			get_typlenbyvalalign(elemtype, &c->elemlen, &c->elembyval, &c->elemalign);
		}
	}
	if (c->kind == COL_OUTPUT)
	{
		Oid			outfunc;
		bool		varlena;

		getTypeOutputInfo(typid, &outfunc, &varlena);
		fmgr_info(outfunc, &c->fn);
	}
	else if (c->kind == COL_TO_JSONB || c->kind == COL_ARRAY)
	{
		/* to_jsonb (arrays: of more than one dimension) reads its argument's type from the call expression */
		fmgr_info(F_TO_JSONB, &c->fn);
		c->fn.fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
											  list_make1(makeNullConst(typid, typmod, collation)),
											  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	}
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
		c->key = pstrdup(NameStr(att->attname));
		c->keylen = strlen(c->key);
		col_prepare(c, att->atttypid, att->atttypmod, att->attcollation);
	}
	qsort(plan->cols, plan->ncols, sizeof(RowJsonCol), col_key_cmp);
	plan->estimate = 64 + 32 * plan->ncols;
	return plan;
}

/* --- the binary writer ----------------------------------------------------- */

/*
 * jsonb's on-disk format (utils/jsonb.h): a container is a uint32 header
 * (count and kind), one JEntry per child (an object's keys first, then its
 * values), then the children's data.  Every JB_OFFSET_STRIDE'th JEntry holds
 * the end offset of its child instead of its length.  Numerics and nested
 * containers are padded to 4-byte boundaries (relative to the varlena start);
 * the padding counts in their length.
 */
typedef struct JbCont
{
	int			base;			/* buffer offset where the container begins (before padding) */
	int			jentries;		/* buffer offset of its JEntry array */
	int			n;				/* children written */
	uint32		totallen;		/* data bytes written so far */
} JbCont;

/* appendBinaryStringInfo, inlined: most values are a few bytes */
static inline void
jb_append(StringInfo buf, const void *data, int len)
{
	if (buf->len + len >= buf->maxlen)
		enlargeStringInfo(buf, len);
	memcpy(buf->data + buf->len, data, len);
	buf->len += len;
}

static int
jb_pad(StringInfo buf)
{
	int			pad = INTALIGN(buf->len) - buf->len;

	if (pad > 0)
	{
		enlargeStringInfo(buf, pad);
		memset(buf->data + buf->len, 0, pad);
		buf->len += pad;
	}
	return pad;
}

/* Starts a container with count children (pairs for an object). */
static void
jb_begin(StringInfo buf, JbCont *c, bool object, int count)
{
	uint32		header = (uint32) count | (object ? JB_FOBJECT : JB_FARRAY);
	int			nentries = object ? count * 2 : count;

	c->base = buf->len;
	jb_pad(buf);
	jb_append(buf, &header, sizeof(uint32));
	c->jentries = buf->len;
	enlargeStringInfo(buf, sizeof(JEntry) * nentries);
	buf->len += sizeof(JEntry) * nentries;
	c->n = 0;
	c->totallen = 0;
}

/* Records the JEntry of the child just written (meta = type | length). */
static void
jb_entry(StringInfo buf, JbCont *c, uint32 meta)
{
	c->totallen += JBE_OFFLENFLD(meta);
	if (c->totallen > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("total size of jsonb object elements exceeds the maximum of %d bytes",
						JENTRY_OFFLENMASK)));
	if ((c->n % JB_OFFSET_STRIDE) == 0)
		meta = (meta & JENTRY_TYPEMASK) | c->totallen | JENTRY_HAS_OFF;
	memcpy(buf->data + c->jentries + sizeof(JEntry) * c->n, &meta, sizeof(JEntry));
	c->n++;
}

/* The JEntry of a finished nested container. */
static uint32
jb_end(StringInfo buf, JbCont *c)
{
	if (buf->len - c->base > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("total size of jsonb object elements exceeds the maximum of %d bytes",
						JENTRY_OFFLENMASK)));
	return JENTRY_ISCONTAINER | (uint32) (buf->len - c->base);
}

static uint32
jb_string(StringInfo buf, const char *s, int len)
{
	jb_append(buf, s, len);
	return JENTRY_ISSTRING | (uint32) len;
}

static uint32
jb_numeric(StringInfo buf, Numeric num)
{
	int			pad = jb_pad(buf);
	int			len = VARSIZE(num);

	jb_append(buf, num, len);
	return JENTRY_ISNUMERIC | (uint32) (pad + len);
}

/*
 * An integer as a jsonb numeric, written in place: the bytes int64_to_numeric
 * makes (numeric's short format: base-10000 digits without leading or
 * trailing zero digits, display scale 0), without a palloc per value.
 */
static uint32
jb_int(StringInfo buf, int64 v)
{
	uint64		u = v < 0 ? -(uint64) v : (uint64) v;
	int16		digits[5];		/* 2^64 < 10000^5 */
	int			n = 0;
	int			weight;
	int			first = 0;
	uint16		header;
	int			pad = jb_pad(buf);
	int			len;

	/* base-10000 digits, least significant first */
	while (u > 0)
	{
		digits[n++] = (int16) (u % 10000);
		u /= 10000;
	}
	weight = n - 1;
	/* trailing zero digits (the least significant) are dropped */
	while (first < n && digits[first] == 0)
		first++;
	if (n == 0)
		weight = 0;				/* zero: no digits, weight 0, positive */
	header = 0x8000				/* NUMERIC_SHORT */
		| (v < 0 ? 0x2000 : 0)	/* NUMERIC_SHORT_SIGN_MASK */
		| (weight & 0x003F);	/* weight >= 0, display scale 0 */
	len = VARHDRSZ + sizeof(uint16) + sizeof(int16) * (n - first);
	if (buf->len + len >= buf->maxlen)
		enlargeStringInfo(buf, len);
	SET_VARSIZE(buf->data + buf->len, len);
	memcpy(buf->data + buf->len + VARHDRSZ, &header, sizeof(uint16));
	/* most significant digit first */
	for (int i = n - 1, k = 0; i >= first; i--, k++)
		memcpy(buf->data + buf->len + VARHDRSZ + sizeof(uint16) + sizeof(int16) * k,
			   &digits[i], sizeof(int16));
	buf->len += len;
	return JENTRY_ISNUMERIC | (uint32) (pad + len);
}

/* Writes a jsonb scalar value (string, numeric, bool, null). */
static uint32
jb_scalar(StringInfo buf, const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return jb_string(buf, v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return jb_numeric(buf, v->val.numeric);
		case jbvBool:
			return v->val.boolean ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
		default:
			return JENTRY_ISNULL;
	}
}

/* Copies a jsonb document in as a value (a scalar document as its scalar). */
static uint32
jb_document(StringInfo buf, Jsonb *doc)
{
	JsonbValue	scalar;
	int			pad;
	int			len;

	if (JB_ROOT_IS_SCALAR(doc) && JsonbExtractScalar(&doc->root, &scalar))
		return jb_scalar(buf, &scalar);
	pad = jb_pad(buf);
	len = VARSIZE(doc) - VARHDRSZ;
	jb_append(buf, &doc->root, len);
	return JENTRY_ISCONTAINER | (uint32) (pad + len);
}

/* Writes n decimal digits of v (zero-padded) at p. */
static inline char *
put_digits(char *p, int v, int n)
{
	for (int i = n - 1; i >= 0; i--)
	{
		p[i] = '0' + v % 10;
		v /= 10;
	}
	return p + n;
}

/*
 * A timestamp or timestamptz as JsonEncodeDateTime writes it (ISO 8601,
 * "YYYY-MM-DDTHH:MM:SS[.ffffff][+HH:MM[:SS]]", fractional digits without
 * trailing zeros, the offset of the session time zone), written directly for
 * years 1 to 9999; false for anything else (infinities, BC, later years: the
 * caller asks JsonEncodeDateTime).
 */
static bool
fast_timestamp(char *buf, Datum d, bool with_tz)
{
	Timestamp	t = DatumGetTimestamp(d);
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz = 0;
	const char *tzn;
	char	   *p = buf;

	if (TIMESTAMP_NOT_FINITE(t))
		return false;
	if (with_tz ? timestamp2tm(t, &tz, &tm, &fsec, &tzn, NULL) != 0
		: timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		return false;
	if (tm.tm_year <= 0 || tm.tm_year > 9999 || fsec < 0)
		return false;
	p = put_digits(p, tm.tm_year, 4);
	*p++ = '-';
	p = put_digits(p, tm.tm_mon, 2);
	*p++ = '-';
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_sec, 2);
	if (fsec != 0)
	{
		int			ndig = MAX_TIMESTAMP_PRECISION;
		int			f = fsec;

		if (f >= 1000000)
			return false;
		while (f % 10 == 0)		/* no trailing zeros */
		{
			f /= 10;
			ndig--;
		}
		*p++ = '.';
		p = put_digits(p, f, ndig);
	}
	if (with_tz)
	{
		int			sec = tz < 0 ? -tz : tz;
		int			min = sec / SECS_PER_MINUTE;
		int			hour;

		sec -= min * SECS_PER_MINUTE;
		hour = min / MINS_PER_HOUR;
		min -= hour * MINS_PER_HOUR;
		if (hour > 99)
			return false;
		*p++ = (tz <= 0 ? '+' : '-');	/* tz is seconds west of Greenwich */
		p = put_digits(p, hour, 2);
		*p++ = ':';
		p = put_digits(p, min, 2);
		if (sec != 0)
		{
			*p++ = ':';
			p = put_digits(p, sec, 2);
		}
	}
	*p = '\0';
	return true;
}

/* Writes one non-null value of a direct kind. */
static uint32
jb_direct(StringInfo buf, ColKind kind, Oid typid, Datum d)
{
	switch (kind)
	{
		case COL_INT2:
			return jb_int(buf, DatumGetInt16(d));
		case COL_INT4:
			return jb_int(buf, DatumGetInt32(d));
		case COL_INT8:
			return jb_int(buf, DatumGetInt64(d));
		case COL_NUMERIC:
			{
				Numeric		n = DatumGetNumeric(d);

				/* NaN and infinities are not JSON numbers: to_jsonb makes them strings */
				if (numeric_is_nan(n) || numeric_is_inf(n))
				{
					char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));

					return jb_string(buf, s, strlen(s));
				}
				return jb_numeric(buf, n);
			}
		case COL_BOOL:
			return DatumGetBool(d) ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
		case COL_TEXT:
			{
				text	   *t = DatumGetTextPP(d);

				return jb_string(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			}
		case COL_DATETIME:
			{
				char		s[MAXDATELEN + 1];

				if (typid == DATEOID ||
					!fast_timestamp(s, d, typid == TIMESTAMPTZOID))
					JsonEncodeDateTime(s, d, typid, NULL);
				return jb_string(buf, s, strlen(s));
			}
		default:
			elog(ERROR, "rowjson: not a direct kind: %d", (int) kind);
			return JENTRY_ISNULL;	/* keep compiler quiet */
	}
}

/* Writes one non-null column value. */
static uint32
jb_value(StringInfo buf, RowJsonCol *c, Datum d)
{
	switch (c->kind)
	{
		case COL_OUTPUT:
			{
				char	   *s = OutputFunctionCall(&c->fn, d);

				return jb_string(buf, s, strlen(s));
			}
		case COL_TO_JSONB:
			return jb_document(buf, DatumGetJsonbP(FunctionCall1(&c->fn, d)));
		case COL_ARRAY:
			{
				ArrayType  *a = DatumGetArrayTypeP(d);
				int			ndim = ARR_NDIM(a);
				Datum	   *elems;
				bool	   *nulls;
				int			n;
				JbCont		arr;

				if (ndim > 1)	/* nested arrays: to_jsonb's rules */
					return jb_document(buf, DatumGetJsonbP(FunctionCall1(&c->fn, d)));
				deconstruct_array(a, c->elemtype, c->elemlen, c->elembyval, c->elemalign,
								  &elems, &nulls, &n);
				jb_begin(buf, &arr, false, n);
				for (int i = 0; i < n; i++)
					jb_entry(buf, &arr, nulls[i] ? JENTRY_ISNULL :
							 jb_direct(buf, c->elemkind, c->elemtype, elems[i]));
				return jb_end(buf, &arr);
			}
		default:
			return jb_direct(buf, c->kind, c->typid, d);
	}
}

/* Writes the columns of values/isnull that include[] selects (all when NULL). */
static Jsonb *
write_row(RowJsonPlan *plan, const Datum *values, const bool *isnull, const bool *include)
{
	StringInfoData b;
	JbCont		top;
	int			n = 0;

	for (int i = 0; i < plan->ncols; i++)
		if (include == NULL || include[plan->cols[i].attnum - 1])
			n++;

	b.maxlen = plan->estimate;
	b.data = palloc(b.maxlen);
	b.cursor = 0;
	b.len = VARHDRSZ;			/* the varlena header, set at the end */
	jb_begin(&b, &top, true, n);
	for (int i = 0; i < plan->ncols; i++)
	{
		RowJsonCol *c = &plan->cols[i];

		if (include == NULL || include[c->attnum - 1])
			jb_entry(&b, &top, jb_string(&b, c->key, c->keylen));
	}
	for (int i = 0; i < plan->ncols; i++)
	{
		RowJsonCol *c = &plan->cols[i];
		int			a = c->attnum - 1;

		if (include != NULL && !include[a])
			continue;
		jb_entry(&b, &top, isnull[a] ? JENTRY_ISNULL : jb_value(&b, c, values[a]));
	}
	if (b.len > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("total size of jsonb object elements exceeds the maximum of %d bytes",
						JENTRY_OFFLENMASK)));
	if (include == NULL && b.len > plan->estimate)
		plan->estimate = Min(b.len + 64, 1024 * 1024);
	SET_VARSIZE(b.data, b.len);
	return (Jsonb *) b.data;
}

/* The row in slot as jsonb, equal to to_jsonb(row). */
Jsonb *
rowjson_convert(RowJsonPlan *plan, TupleTableSlot *slot)
{
	slot_getallattrs(slot);
	return write_row(plan, slot->tts_values, slot->tts_isnull, NULL);
}

/*
 * The columns of a deformed row that include[] (indexed by attribute number
 * - 1) selects, as a jsonb object: to_jsonb(row) restricted to those keys.
 */
Jsonb *
rowjson_convert_columns(RowJsonPlan *plan, const Datum *values, const bool *isnull,
						const bool *include)
{
	return write_row(plan, values, isnull, include);
}
