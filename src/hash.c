/*
 * hash.c: canonical JSON (RFC 8785, JCS) and row hashes.
 *
 * row_hash(data) is the hex SHA-256 of the JCS text of a jsonb object, so a
 * browser computes the same hash with crypto.subtle.digest over the output of
 * the "canonicalize" npm package.  JCS: object keys sorted by UTF-16 code
 * units, strings escaped as JSON.stringify does, numbers written as
 * ECMAScript's Number.prototype.toString writes the nearest IEEE 754 double.
 * Also the helpers for exclusion lists shared by the kernel.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "smartsync.h"
#include "kernel.h"

PG_FUNCTION_INFO_V1(smartsync_row_hash);
PG_FUNCTION_INFO_V1(smartsync_canonical_json);

/* One key/value pair of an object being canonicalized. */
typedef SyncField CanonPair;

static void canon_value(StringInfo buf, const JsonbValue *v);
static void canon_container(StringInfo buf, JsonbContainer *c,
							List *exclude, bool exclude_metadata, bool top);

/* --- exclusion lists ---------------------------------------------------- */

/* True when name is one of the metadata fields version, updatedAt, updated_at. */
bool
sync_is_metadata_field(const char *name, int len)
{
	switch (len)
	{
		case 7:
			return memcmp(name, "version", 7) == 0;
		case 9:
			return memcmp(name, "updatedAt", 9) == 0;
		case 10:
			return memcmp(name, "updated_at", 10) == 0;
		default:
			return false;
	}
}

/* True when the top-level field name is excluded by exclude / exclude_metadata. */
bool
sync_field_excluded(const char *name, int len, List *exclude, bool exclude_metadata)
{
	ListCell   *lc;

	if (exclude_metadata && sync_is_metadata_field(name, len))
		return true;
	foreach(lc, exclude)
	{
		const char *e = (const char *) lfirst(lc);

		if (strncmp(e, name, len) == 0 && e[len] == '\0')
			return true;
	}
	return false;
}

/* The non-null elements of a text[] as a List of char *. */
List *
sync_text_array_to_list(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			result = lappend(result, TextDatumGetCString(elems[i]));
	return result;
}

/* Names the kind of a jsonb value's root, for error details. */
static inline const char *
root_kind(Jsonb *jb)
{
	if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbValue	v;

		JsonbExtractScalar(&jb->root, &v);
		switch (v.type)
		{
			case jbvNull:
				return "null";
			case jbvString:
				return "a string";
			case jbvNumeric:
				return "a number";
			case jbvBool:
				return "a boolean";
			default:
				return "a scalar";
		}
	}
	return JB_ROOT_IS_ARRAY(jb) ? "an array" : "an object";
}

/* Raises SS301 unless jb is a JSON object; what names the argument. */
void
sync_require_object(Jsonb *jb, const char *what)
{
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_SS_NOT_AN_OBJECT),
				 errmsg("%s must be a JSON object", what),
				 errdetail("It is %s.", root_kind(jb)),
				 errhint("Pass the row as a JSON object of field names to values.")));
}

/* --- canonical JSON ----------------------------------------------------- */

/* True when any of the 8 bytes in w is a control character, '"' or '\\' (may err towards true). */
static inline bool
word_needs_escape(uint64 w)
{
	const uint64 ones = UINT64CONST(0x0101010101010101);
	const uint64 highs = UINT64CONST(0x8080808080808080);
	uint64		q = w ^ (ones * '"');
	uint64		b = w ^ (ones * '\\');

	return (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w)) & highs;
}

/* Appends up to 64 kB of s escaped as RFC 8785 (JSON.stringify) does, without quotes. */
static void
canon_string_piece(StringInfo buf, const char *s, int len)
{
	static const char hex[] = "0123456789abcdef";
	char	   *out;
	int			i = 0;

	/* room for the worst case: every byte as \u00xx */
	enlargeStringInfo(buf, len * 6);
	out = buf->data + buf->len;
	while (i < len)
	{
		unsigned char c;

		/* eight plain bytes at a time */
		while (i + 8 <= len)
		{
			uint64		w;

			memcpy(&w, s + i, 8);
			if (word_needs_escape(w))
				break;
			memcpy(out, s + i, 8);
			out += 8;
			i += 8;
		}
		if (i >= len)
			break;
		c = (unsigned char) s[i++];
		if (c >= 0x20 && c != '"' && c != '\\')
		{
			*out++ = c;
			continue;
		}
		*out++ = '\\';
		switch (c)
		{
			case '"':
			case '\\':
				*out++ = c;
				break;
			case '\b':
				*out++ = 'b';
				break;
			case '\f':
				*out++ = 'f';
				break;
			case '\n':
				*out++ = 'n';
				break;
			case '\r':
				*out++ = 'r';
				break;
			case '\t':
				*out++ = 't';
				break;
			default:
				*out++ = 'u';
				*out++ = '0';
				*out++ = '0';
				*out++ = hex[c >> 4];
				*out++ = hex[c & 15];
		}
	}
	buf->len = out - buf->data;
	buf->data[buf->len] = '\0';
}

/* Appends s as a quoted JSON string escaped as RFC 8785 (JSON.stringify) does. */
static void
canon_string(StringInfo buf, const char *s, int len)
{
	appendStringInfoCharMacro(buf, '"');
	/* pieces of 64 kB keep the worst-case reservation small; bytes are copied as they are */
	for (int start = 0; start < len; start += 65536)
		canon_string_piece(buf, s + start, Min(len - start, 65536));
	appendStringInfoCharMacro(buf, '"');
}

/* Splits a %e or %f style decimal into its significant digits and exponent n (value = 0.digits * 10^n). */
static int
decimal_digits(const char *p, char *digits, int *n)
{
	int			nd = 0;
	int			point = -1;
	int			exp10 = 0;
	int			first = 0;
	int			end;

	for (; *p && *p != 'e' && *p != 'E'; p++)
	{
		if (*p == '.')
			point = nd;
		else if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	}
	if (point < 0)
		point = nd;
	if (*p)
		exp10 = atoi(p + 1);
	while (first < nd && digits[first] == '0')
	{
		first++;
		point--;
	}
	end = nd;
	while (end > first && digits[end - 1] == '0')
		end--;
	memmove(digits, digits + first, end - first);
	*n = point + exp10;
	return end - first;
}

/* Appends a finite double as ECMAScript's Number.prototype.toString writes it. */
static pg_noinline void
canon_double(StringInfo buf, double d)
{
	char		tmp[DOUBLE_SHORTEST_DECIMAL_LEN + 8];
	char		digits[DOUBLE_SHORTEST_DECIMAL_LEN + 8];
	int			k;
	int			n;

	if (d == 0)
	{
		/* 0 and -0 are both "0" */
		appendStringInfoCharMacro(buf, '0');
		return;
	}
	if (d < 0)
	{
		appendStringInfoCharMacro(buf, '-');
		d = -d;
	}

	/* the shortest digits that round-trip (Ryu) */
	double_to_shortest_decimal_buf(d, tmp);
	k = decimal_digits(tmp, digits, &n);

	/*
	 * PostgreSQL's Ryu never picks a decimal lying exactly halfway to the
	 * next double, which ECMAScript allows when it rounds back (ties to
	 * even).  Such a midpoint can be shorter only when doubles are integers
	 * 2 or more apart; there, try fewer digits while they still round-trip.
	 */
	if (d >= 9007199254740992.0)
	{
		char		cand[40];
		int			j;

		for (j = k - 1; j >= 1; j--)
		{
			snprintf(cand, sizeof(cand), "%.*e", j - 1, d);
			if (strtod(cand, NULL) != d)
				break;
			strcpy(tmp, cand);
		}
		if (j < k - 1)
			k = decimal_digits(tmp, digits, &n);
	}

	/* value = 0.d1d2...dk * 10^n (ECMA-262 Number::toString) */
	if (k <= n && n <= 21)
	{
		appendBinaryStringInfo(buf, digits, k);
		for (int i = 0; i < n - k; i++)
			appendStringInfoCharMacro(buf, '0');
	}
	else if (0 < n && n <= 21)
	{
		appendBinaryStringInfo(buf, digits, n);
		appendStringInfoCharMacro(buf, '.');
		appendBinaryStringInfo(buf, digits + n, k - n);
	}
	else if (-6 < n && n <= 0)
	{
		appendStringInfoString(buf, "0.");
		for (int i = 0; i < -n; i++)
			appendStringInfoCharMacro(buf, '0');
		appendBinaryStringInfo(buf, digits, k);
	}
	else
	{
		appendStringInfoCharMacro(buf, digits[0]);
		if (k > 1)
		{
			appendStringInfoCharMacro(buf, '.');
			appendBinaryStringInfo(buf, digits + 1, k - 1);
		}
		appendStringInfo(buf, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
	}
}

/* Appends a numeric as the JCS number of the nearest double; SS304 beyond double range. */
static pg_noinline void
canon_number(StringInfo buf, Numeric num)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
	const char *p = s;
	char	   *endp;
	double		d;

	/* fast path: integers of up to 15 digits are exact doubles and print as is */
	if (*p == '-')
		p++;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '\0' && p - s <= 15 && !(s[0] == '-' && s[1] == '0'))
	{
		appendBinaryStringInfo(buf, s, p - s);
		pfree(s);
		return;
	}

	/* otherwise the nearest double, correctly rounded as JSON.parse does */
	d = strtod(s, &endp);
	if (isinf(d) || isnan(d))
		ereport(ERROR,
				(errcode(ERRCODE_SS_NUMBER_OUT_OF_RANGE),
				 errmsg("number out of range for canonical JSON"),
				 errdetail("The number %.40s%s is beyond the range of an IEEE 754 double, which RFC 8785 requires.",
						   s, strlen(s) > 40 ? "..." : ""),
				 errhint("Store such values as strings.")));
	canon_double(buf, d);
	pfree(s);
}

/* Appends one jsonb value (scalar or container) as canonical JSON. */
static void
canon_value(StringInfo buf, const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			appendStringInfoString(buf, "null");
			break;
		case jbvBool:
			appendStringInfoString(buf, v->val.boolean ? "true" : "false");
			break;
		case jbvString:
			canon_string(buf, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			canon_number(buf, v->val.numeric);
			break;
		case jbvBinary:
			canon_container(buf, v->val.binary.data, NIL, false, false);
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
}

/* Decodes the UTF-8 character starting at s[i] (i is moved back to its first byte). */
static inline uint32
utf8_char_at(const char *s, int len, int i)
{
	const unsigned char *u = (const unsigned char *) s;
	uint32		cp;
	int			extra;

	while (i > 0 && (u[i] & 0xC0) == 0x80)
		i--;
	cp = u[i];
	if (cp < 0x80)
		return cp;
	else if (cp >= 0xF0)
	{
		cp &= 0x07;
		extra = 3;
	}
	else if (cp >= 0xE0)
	{
		cp &= 0x0F;
		extra = 2;
	}
	else
	{
		cp &= 0x1F;
		extra = 1;
	}
	for (int j = 1; j <= extra && i + j < len; j++)
		cp = (cp << 6) | (u[i + j] & 0x3F);
	return cp;
}

/* The UTF-16 code units of a code point as one sortable number (high unit first). */
static inline uint32
utf16_key(uint32 cp)
{
	if (cp < 0x10000)
		return cp << 16;
	cp -= 0x10000;
	return ((0xD800 + (cp >> 10)) << 16) | (0xDC00 + (cp & 0x3FF));
}

/* Orders object keys by their UTF-16 code units, as RFC 8785 section 3.2.3 asks. */
static inline int
canon_pair_cmp(const CanonPair *pa, const CanonPair *pb)
{
	int			minlen = Min(pa->keylen, pb->keylen);
	int			i;

	for (i = 0; i < minlen; i++)
		if (pa->key[i] != pb->key[i])
			break;
	if (i == minlen)
		return (pa->keylen > minlen) - (pb->keylen > minlen);

	/* UTF-8 byte order is code point order; it differs from UTF-16 only above U+FFFF */
	if ((unsigned char) pa->key[i] < 0xEE && (unsigned char) pb->key[i] < 0xEE)
		return (unsigned char) pa->key[i] < (unsigned char) pb->key[i] ? -1 : 1;
	{
		uint32		ka = utf16_key(utf8_char_at(pa->key, pa->keylen, i));
		uint32		kb = utf16_key(utf8_char_at(pb->key, pb->keylen, i));

		return ka < kb ? -1 : ka > kb ? 1 : 0;
	}
}

/* qsort adapter of canon_pair_cmp. */
static int
canon_pair_qsort_cmp(const void *a, const void *b)
{
	return canon_pair_cmp((const CanonPair *) a, (const CanonPair *) b);
}

/* Sorts pairs by key: insertion sort for the usual small objects, qsort for big ones. */
static void
canon_sort_pairs(CanonPair *pairs, int n)
{
	if (n > 32)
	{
		qsort(pairs, n, sizeof(CanonPair), canon_pair_qsort_cmp);
		return;
	}
	for (int i = 1; i < n; i++)
	{
		CanonPair	tmp;
		int			j = i;

		if (canon_pair_cmp(&pairs[i - 1], &pairs[i]) <= 0)
			continue;
		tmp = pairs[i];
		while (j > 0 && canon_pair_cmp(&pairs[j - 1], &tmp) > 0)
		{
			pairs[j] = pairs[j - 1];
			j--;
		}
		pairs[j] = tmp;
	}
}

/* Appends an array or object container as canonical JSON, without excluded top-level keys. */
static void
canon_container(StringInfo buf, JsonbContainer *c, List *exclude, bool exclude_metadata, bool top)
{
	int			size = JsonContainerSize(c);

	check_stack_depth();
	if (JsonContainerIsArray(c))
	{
		char	   *base = (char *) &c->children[size];
		uint32		off = 0;

		appendStringInfoCharMacro(buf, '[');
		for (int i = 0; i < size; i++)
		{
			JEntry		e = c->children[i];
			uint32		end = JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) : off + JBE_OFFLENFLD(e);
			JsonbValue	v;

			if (i > 0)
				appendStringInfoCharMacro(buf, ',');
			sync_fill_value(c, i, base, off, end - off, &v);
			canon_value(buf, &v);
			off = end;
		}
		appendStringInfoCharMacro(buf, ']');
	}
	else
	{
		CanonPair  *pairs = palloc(sizeof(CanonPair) * Max(size, 1));
		int			n = 0;

		sync_container_fields(c, size, pairs);
		if (top && (exclude != NIL || exclude_metadata))
		{
			for (int i = 0; i < size; i++)
				if (!sync_field_excluded(pairs[i].key, pairs[i].keylen, exclude, exclude_metadata))
					pairs[n++] = pairs[i];
		}
		else
			n = size;
		canon_sort_pairs(pairs, n);
		appendStringInfoCharMacro(buf, '{');
		for (int i = 0; i < n; i++)
		{
			if (i > 0)
				appendStringInfoCharMacro(buf, ',');
			canon_string(buf, pairs[i].key, pairs[i].keylen);
			appendStringInfoCharMacro(buf, ':');
			canon_value(buf, &pairs[i].value);
		}
		appendStringInfoCharMacro(buf, '}');
		pfree(pairs);
	}
}

/* Appends the canonical JSON of any jsonb to buf. */
static void
canon_jsonb(StringInfo buf, Jsonb *data, List *exclude, bool exclude_metadata)
{
	if (JB_ROOT_IS_SCALAR(data))
	{
		JsonbValue	v;

		JsonbExtractScalar(&data->root, &v);
		canon_value(buf, &v);
	}
	else
		canon_container(buf, &data->root, exclude, exclude_metadata, true);
}

/* RFC 8785 canonical JSON text of any jsonb (exclusions apply to a top-level object). */
char *
sync_canonical_json(Jsonb *data, List *exclude, bool exclude_metadata)
{
	StringInfoData buf;

	initStringInfo(&buf);
	canon_jsonb(&buf, data, exclude, exclude_metadata);
	return buf.data;
}

/* Hex SHA-256 of len bytes at data, through PostgreSQL's cryptohash. */
static char *
sha256_hex(const char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	char	   *result;

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
	{
		const char *err = pg_cryptohash_error(ctx);

		pg_cryptohash_free(ctx);
		elog(ERROR, "could not compute SHA-256 hash: %s", err);
	}
	pg_cryptohash_free(ctx);

	result = palloc(PG_SHA256_DIGEST_LENGTH * 2 + 1);
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
	{
		result[2 * i] = hex[digest[i] >> 4];
		result[2 * i + 1] = hex[digest[i] & 15];
	}
	result[PG_SHA256_DIGEST_LENGTH * 2] = '\0';
	return result;
}

/* Hex SHA-256 of the canonical JSON of an object, without the excluded top-level keys. */
char *
sync_row_hash_ex(Jsonb *data, List *exclude, bool exclude_metadata)
{
	StringInfoData buf;
	char	   *result;

	sync_require_object(data, "row data");
	initStringInfo(&buf);
	enlargeStringInfo(&buf, VARSIZE(data) + 64);
	canon_container(&buf, &data->root, exclude, exclude_metadata, true);
	result = sha256_hex(buf.data, buf.len);
	pfree(buf.data);
	return result;
}

/* Hex SHA-256 of the canonical JSON of data; NIL exclude means the metadata fields. */
char *
sync_row_hash(Jsonb *data, List *exclude)
{
	return sync_row_hash_ex(data, exclude, exclude == NIL);
}

/* SQL: smartsync.row_hash(data jsonb, exclude text[] DEFAULT NULL) RETURNS text */
Datum
smartsync_row_hash(PG_FUNCTION_ARGS)
{
	Jsonb	   *data;
	List	   *exclude = NIL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	data = PG_GETARG_JSONB_P(0);
	sync_require_object(data, "data");
	if (!PG_ARGISNULL(1))
		exclude = sync_text_array_to_list(PG_GETARG_ARRAYTYPE_P(1));
	PG_RETURN_TEXT_P(cstring_to_text(sync_row_hash_ex(data, exclude, PG_ARGISNULL(1))));
}

/* SQL: smartsync.canonical_json(data jsonb, exclude text[] DEFAULT NULL) RETURNS text */
Datum
smartsync_canonical_json(PG_FUNCTION_ARGS)
{
	Jsonb	   *data;
	List	   *exclude = NIL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	data = PG_GETARG_JSONB_P(0);
	if (!PG_ARGISNULL(1))
		exclude = sync_text_array_to_list(PG_GETARG_ARRAYTYPE_P(1));
	PG_RETURN_TEXT_P(cstring_to_text(sync_canonical_json(data, exclude, PG_ARGISNULL(1))));
}
