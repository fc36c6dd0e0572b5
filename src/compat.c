/*
 * compat.c: the shims of compat.h that need a body of their own, one per
 * difference between the PostgreSQL versions smartsync builds against.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM >= 160000
#include "nodes/miscnodes.h"
#endif

#include "smartsync.h"

/* Parses text as timestamptz_in does; false when it is not a timestamp. */
bool
timestamptz_in_safe_compat(const char *str, TimestampTz *result)
{
#if PG_VERSION_NUM >= 160000
	ErrorSaveContext escontext = {T_ErrorSaveContext};
	Datum		d;

	if (!DirectInputFunctionCallSafe(timestamptz_in, (char *) str, InvalidOid, -1,
									 (Node *) &escontext, &d))
		return false;
	*result = DatumGetTimestampTz(d);
	return true;
#else
	fsec_t		fsec;
	struct pg_tm tt,
			   *tm = &tt;
	int			tz;
	int			dtype;
	int			nf;
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];

	if (ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0 ||
		DecodeDateTime(field, ftype, nf, &dtype, tm, &fsec, &tz) != 0)
		return false;
	switch (dtype)
	{
		case DTK_DATE:
			return tm2timestamp(tm, fsec, &tz, result) == 0;
		case DTK_EPOCH:
			*result = SetEpochTimestamp();
			return true;
		case DTK_LATE:
			TIMESTAMP_NOEND(*result);
			return true;
		case DTK_EARLY:
			TIMESTAMP_NOBEGIN(*result);
			return true;
		default:
			return false;
	}
#endif
}
