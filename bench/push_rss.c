/*
 * push_rss.c: peak resident anonymous memory of a backend while one statement
 * runs (bench/bench_push.sh: the memory of a large push).
 *
 *   push_rss SETUP WARM STATEMENT [PARAMETER_QUERY]
 *
 * On a fresh connection (PG* variables choose the server): runs SETUP (SET
 * commands), then WARM in a transaction rolled back (the library, the registry,
 * the plans), then STATEMENT in a transaction rolled back, while the backend's
 * RssAnon (/proc/<pid>/status: its private memory, not shared buffers) is read
 * every millisecond.  With PARAMETER_QUERY, its one value, read on another
 * connection, is STATEMENT's $1 (sent as text, as PostgREST sends a body).
 * Prints "base_kB peak_kB answer": RssAnon before the statement, its peak, and
 * the statement's first value (or the SQLSTATE of its error).  The client must
 * run on the server's machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"

static void
die(const char *what, PGconn *conn)
{
	fprintf(stderr, "push_rss: %s: %s\n", what, conn ? PQerrorMessage(conn) : "");
	exit(1);
}

static void
exec_ok(PGconn *conn, const char *sql)
{
	PGresult   *r = PQexec(conn, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die(sql, conn);
	PQclear(r);
}

/* The backend's resident anonymous memory in kB (RssAnon of /proc/<pid>/status). */
static long
rss_anon_kb(int pid)
{
	char		path[64];
	char		line[256];
	long		kb = -1;
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *r;
	char	   *param = NULL;
	const char *vals[1];
	char		answer[64] = "?";
	struct timespec ms = {0, 1000000};
	long		base,
				peak,
				kb;
	int			pid;

	if (argc < 4)
	{
		fprintf(stderr, "usage: push_rss SETUP WARM STATEMENT [PARAMETER_QUERY]\n");
		return 2;
	}
	if (argc > 4)
	{
		PGconn	   *other = PQconnectdb("");

		if (PQstatus(other) != CONNECTION_OK)
			die("connect", other);
		r = PQexec(other, argv[4]);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
			die(argv[4], other);
		param = strdup(PQgetvalue(r, 0, 0));
		PQclear(r);
		PQfinish(other);
	}

	conn = PQconnectdb("");
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect", conn);
	r = PQexec(conn, "SELECT pg_backend_pid()");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die("pg_backend_pid", conn);
	pid = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	exec_ok(conn, argv[1]);
	exec_ok(conn, "BEGIN");
	exec_ok(conn, argv[2]);
	exec_ok(conn, "ROLLBACK");

	base = rss_anon_kb(pid);
	if (base < 0)
		die("cannot read /proc/<pid>/status of the backend (is the server on this machine?)", NULL);
	peak = base;
	exec_ok(conn, "BEGIN");
	vals[0] = param;
	if (!PQsendQueryParams(conn, argv[3], param ? 1 : 0, NULL, param ? vals : NULL, NULL, NULL, 0))
		die("send", conn);
	while (PQisBusy(conn))
	{
		kb = rss_anon_kb(pid);
		if (kb > peak)
			peak = kb;
		nanosleep(&ms, NULL);
		if (!PQconsumeInput(conn))
			die("consume", conn);
	}
	kb = rss_anon_kb(pid);
	if (kb > peak)
		peak = kb;
	while ((r = PQgetResult(conn)) != NULL)
	{
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			snprintf(answer, sizeof(answer), "%s",
					 PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "null");
		else
			snprintf(answer, sizeof(answer), "error:%s", PQresultErrorField(r, PG_DIAG_SQLSTATE));
		PQclear(r);
	}
	exec_ok(conn, "ROLLBACK");
	PQfinish(conn);
	printf("%ld %ld %s\n", base, peak, answer);
	free(param);
	return 0;
}
