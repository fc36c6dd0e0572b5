/*
 * jsonbwrite.c: writing jsonb's binary format straight into a buffer.
 *
 * A document is written in one pass into one StringInfo that starts with
 * room for the varlena header: a container's header and JEntry array are
 * reserved when it begins and filled in as its children are written.  A
 * stored jsonb document is copied in as it is: a container's offsets are
 * relative to itself and its padding to 4-byte boundaries, so it may move to
 * any int-aligned place.  The caller writes an object's keys first, in
 * jsonb's order (shorter first, then bytewise), then its values in the same
 * order.  Nothing else is allocated, so a large document costs its own size
 * (pushJsonbValue would first unpack every container it is given into a tree
 * of JsonbValues, several times the size).  pull.c writes its pages the same
 * way.
 */
#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "jsonbwrite.h"

/* Starts a document in buf, with room for about estimate bytes. */
void
jbw_init(StringInfo buf, Size estimate)
{
	buf->maxlen = Min(Max(estimate, 64), MaxAllocSize - 1);
	buf->data = palloc(buf->maxlen);
	buf->len = VARHDRSZ;		/* the varlena header, set by jbw_finish */
	buf->cursor = 0;
}

/* The document written into buf. */
Jsonb *
jbw_finish(StringInfo buf)
{
	SET_VARSIZE(buf->data, buf->len);
	return (Jsonb *) buf->data;
}

/* Pads buf to a 4-byte boundary; returns the padding's bytes. */
static int
jbw_pad(StringInfo buf)
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

/* Starts a container of count children (an object's pairs count once). */
void
jbw_begin(StringInfo buf, JbwCont *c, bool object, int count)
{
	uint32		header = (uint32) count | (object ? JB_FOBJECT : JB_FARRAY);
	int			nchildren = object ? count * 2 : count;

	c->base = buf->len;
	jbw_pad(buf);
	appendBinaryStringInfo(buf, (char *) &header, sizeof(uint32));
	c->jentries = buf->len;
	enlargeStringInfo(buf, sizeof(JEntry) * nchildren);
	buf->len += sizeof(JEntry) * nchildren;
	c->n = 0;
	c->totallen = 0;
}

/* Records the JEntry of the child just written (meta: type | length, as the jbw_ writers return). */
void
jbw_entry(StringInfo buf, JbwCont *c, uint32 meta)
{
	c->totallen += JBE_OFFLENFLD(meta);
	if (c->totallen > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("total size of jsonb object elements exceeds the maximum of %u bytes",
						JENTRY_OFFLENMASK)));
	if ((c->n % JB_OFFSET_STRIDE) == 0)
		meta = (meta & JENTRY_TYPEMASK) | c->totallen | JENTRY_HAS_OFF;
	memcpy(buf->data + c->jentries + sizeof(JEntry) * c->n, &meta, sizeof(JEntry));
	c->n++;
}

/* Ends a container; returns its meta for the parent's jbw_entry. */
uint32
jbw_end(StringInfo buf, JbwCont *c)
{
	return JENTRY_ISCONTAINER | (uint32) (buf->len - c->base);
}

/* Writes a string (a key or a value). */
uint32
jbw_string(StringInfo buf, const char *s, int len)
{
	appendBinaryStringInfo(buf, s, len);
	return JENTRY_ISSTRING | (uint32) len;
}

/* Writes a number. */
uint32
jbw_numeric(StringInfo buf, Numeric num)
{
	int			pad = jbw_pad(buf);
	int			len = VARSIZE_ANY(num);

	appendBinaryStringInfo(buf, (char *) num, len);
	return JENTRY_ISNUMERIC | (uint32) (pad + len);
}

/* Writes an integer as a number. */
uint32
jbw_int8(StringInfo buf, int64 v)
{
	return jbw_numeric(buf, int64_to_numeric(v));
}

/* A boolean (it takes no data bytes). */
uint32
jbw_bool(bool b)
{
	return b ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
}

/* Writes a scalar JsonbValue (string, number, boolean; anything else as null). */
uint32
jbw_scalar(StringInfo buf, const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return jbw_string(buf, v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return jbw_numeric(buf, v->val.numeric);
		case jbvBool:
			return jbw_bool(v->val.boolean);
		default:
			return JENTRY_ISNULL;
	}
}

/* Copies a stored jsonb document in as a value (NULL: JSON null). */
uint32
jbw_document(StringInfo buf, Jsonb *doc)
{
	JsonbValue	scalar;
	int			pad;
	int			len;

	if (doc == NULL)
		return JENTRY_ISNULL;
	if (JB_ROOT_IS_SCALAR(doc) && JsonbExtractScalar(&doc->root, &scalar))
		return jbw_scalar(buf, &scalar);
	pad = jbw_pad(buf);
	len = VARSIZE(doc) - VARHDRSZ;
	appendBinaryStringInfo(buf, (char *) &doc->root, len);
	return JENTRY_ISCONTAINER | (uint32) (pad + len);
}
