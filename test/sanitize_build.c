/*
 * sanitize_build.c: compiled into smartsync only by test/sanitize.sh (copied
 * into the private build's src/), never into a normal build.
 *
 * The sanitizer runtimes are loaded with smartsync.so (its dependencies), not
 * preloaded: preloading libasan into any program that links GnuTLS deadlocks
 * in p11-kit's constructor on this platform, and PostgreSQL's backends
 * overwrite their environment (the process title), so ASAN_OPTIONS and
 * UBSAN_OPTIONS do not reach them.  The options are therefore compiled in.
 *
 * Two canaries prove that the runtimes are live in a backend: one reads past
 * a stack array (AddressSanitizer), one shifts an int by more than its width
 * (UndefinedBehaviorSanitizer; PostgreSQL compiles with -fwrapv, so signed
 * overflow is defined).  test/sanitize.sh calls them last.
 */
#include "postgres.h"

#include "fmgr.h"

extern const char *__asan_default_options(void);
extern const char *__ubsan_default_options(void);

/* ASan's options: every report fatal (to the server log); no leak check (see test/sanitize.sh). */
const char *
__asan_default_options(void)
{
	return "verify_asan_link_order=0:detect_leaks=0:abort_on_error=1:"
		"detect_stack_use_after_return=1";
}

/* UBSan's options: every report fatal, with a stack trace. */
const char *
__ubsan_default_options(void)
{
	return "print_stacktrace=1:halt_on_error=1";
}

PG_FUNCTION_INFO_V1(smartsync_sanitize_canary_asan);
PG_FUNCTION_INFO_V1(smartsync_sanitize_canary_ubsan);

/*
 * Reads element i of an 8-byte stack array through a pointer: i >= 8 must be
 * caught by ASan (UBSan's own bounds checks are off here, so that ASan is the
 * one that sees it).
 */
__attribute__((no_sanitize("undefined")))
Datum
smartsync_sanitize_canary_asan(PG_FUNCTION_ARGS)
{
	char		buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	volatile char *p = buf;
	int32		i = PG_GETARG_INT32(0);

	PG_RETURN_INT32(p[i]);
}

/* Shifts 1 left by i bits: i >= 32 must be caught by UBSan. */
Datum
smartsync_sanitize_canary_ubsan(PG_FUNCTION_ARGS)
{
	volatile int32 one = 1;
	int32		i = PG_GETARG_INT32(0);

	PG_RETURN_INT32(one << i);
}
