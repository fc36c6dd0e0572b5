/*
 * jsonbwrite.h: writing jsonb's binary format straight into a buffer, one
 * pass, without building a JsonbValue tree first (jsonbwrite.c).
 */
#ifndef SMARTSYNC_JSONBWRITE_H
#define SMARTSYNC_JSONBWRITE_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* A container being written. */
typedef struct JbwCont
{
	int			base;			/* buffer offset where the container begins (before padding) */
	int			jentries;		/* buffer offset of its JEntry array */
	int			n;				/* children written */
	uint32		totallen;		/* data bytes written so far */
} JbwCont;

extern void jbw_init(StringInfo buf, Size estimate);
extern Jsonb *jbw_finish(StringInfo buf);
extern void jbw_begin(StringInfo buf, JbwCont *c, bool object, int count);
extern void jbw_entry(StringInfo buf, JbwCont *c, uint32 meta);
extern uint32 jbw_end(StringInfo buf, JbwCont *c);
extern uint32 jbw_string(StringInfo buf, const char *s, int len);
extern uint32 jbw_numeric(StringInfo buf, Numeric num);
extern uint32 jbw_int8(StringInfo buf, int64 v);
extern uint32 jbw_bool(bool b);
extern uint32 jbw_scalar(StringInfo buf, const JsonbValue *v);
extern uint32 jbw_document(StringInfo buf, Jsonb *doc);

/* A key given as a string literal. */
#define JBW_KEY(buf, s)	jbw_string(buf, s, sizeof(s) - 1)

#endif							/* SMARTSYNC_JSONBWRITE_H */
