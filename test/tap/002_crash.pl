# Crash recovery in the middle of large pushes.
#
# Three devices push batches of 800 operations (creates of clients and of pets
# that reference them by temporary id, updates, deletes).  The server is killed
# with SIGKILL twice while pushes run:
#   A. the backend of a push that is half-way through its batch (a trigger holds
#      it there): the postmaster resets every process and recovers from WAL;
#   B. the postmaster and all its processes at once, at a random moment while
#      two devices push concurrently; the server is started again and recovers.
# After each recovery every operation is either applied, with its ledger entry,
# its row and its change-log row (and id-map row for creates), or absent from
# all of them, and each batch is all or nothing.  Then every device replays all
# of its batches: what was applied comes back as "replayed", the rest is applied
# now, and every operation ends applied exactly once.  A second replay changes
# nothing.  A pull cursor taken before the crashes delivers every change.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;

my $tenant = 'crash';
my $S = 'tenant_crash';
my $batches = 4;       # per device
my $groups = 200;      # 4 operations each: 800 operations a batch
my @devices = ('tablet-a', 'tablet-b', 'tablet-c');

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION smartsync');
$node->safe_psql('postgres', slurp_file("$ENV{SMARTSYNC_DATA}/vet_schema.sql"));
$node->safe_psql('postgres', "SELECT smartsync.provision_tenant('$tenant')");

# The operations of every batch, kept in a table the checks read: for each
# (device, batch, group) a create of a client, a create of a pet of that client
# (by temporary id), an update of a seeded client and a delete of a seeded
# appointment.  Every operation carries a unique marker in its data.
my $devlist = join(',', map { "'$_'" } @devices);
$node->safe_psql(
	'postgres', qq{
	CREATE SCHEMA crash_check;
	CREATE TABLE crash_check.ops (
		client text, batch int, seq int, op_id text, kind text,
		temp_id text, target_id bigint, marker text, body jsonb,
		PRIMARY KEY (client, op_id));
	-- seeded rows that the updates and deletes touch: one per group
	CREATE TABLE crash_check.groups AS
	SELECT d.client, b.batch, g.grp,
	       row_number() OVER (ORDER BY d.client, b.batch, g.grp) AS n
	  FROM unnest(ARRAY[$devlist]) AS d(client), generate_series(1, $batches) AS b(batch),
	       generate_series(1, $groups) AS g(grp);
	INSERT INTO $S.clients (id, practice_id, name) SELECT 100000 + n, 1, 'seed ' || n FROM crash_check.groups;
	INSERT INTO $S.pets (id, practice_id, client_id, name) SELECT 100000 + n, 1, 100000 + n, 'seed ' || n FROM crash_check.groups;
	INSERT INTO $S.appointments (id, practice_id, pet_id, title, date)
	SELECT 100000 + n, 1, 100000 + n, 'seed ' || n, '2024-11-10 12:00+00' FROM crash_check.groups;

	INSERT INTO crash_check.ops
	SELECT client, batch, grp * 4 + k, format('%s-%s-%s', batch, grp, k), kind, temp_id, target_id, marker,
	       jsonb_strip_nulls(jsonb_build_object(
	         'id', format('%s-%s-%s', batch, grp, k),
	         'operation', CASE kind WHEN 'update' THEN 'update' WHEN 'delete' THEN 'delete' ELSE 'create' END,
	         'entityType', CASE kind WHEN 'create_pet' THEN 'pets' WHEN 'delete' THEN 'appointments' ELSE 'clients' END,
	         'entityId', coalesce(to_jsonb(temp_id), to_jsonb(target_id)),
	         'version', CASE WHEN kind IN ('update', 'delete') THEN 1 END,
	         'timestamp', 1700000000000 + grp,
	         'data', CASE kind
	                   WHEN 'create_client' THEN jsonb_build_object('name', marker)
	                   WHEN 'create_pet' THEN jsonb_build_object('name', marker, 'clientId', format('temp_c_%s_%s', batch, grp), 'species', 'dog')
	                   WHEN 'update' THEN jsonb_build_object('notes', marker)
	                 END))
	  FROM (SELECT g.*, k.k, k.kind,
	               CASE k.kind WHEN 'create_client' THEN format('temp_c_%s_%s', batch, grp)
	                           WHEN 'create_pet' THEN format('temp_p_%s_%s', batch, grp) END AS temp_id,
	               CASE WHEN k.kind IN ('update', 'delete') THEN 100000 + n END AS target_id,
	               format('%s/%s/%s/%s', client, batch, grp, k.kind) AS marker
	          FROM crash_check.groups g,
	               (VALUES (1, 'create_client'), (2, 'create_pet'), (3, 'update'), (4, 'delete')) AS k(k, kind)) x;

	CREATE FUNCTION crash_check.payload(p_client text, p_batch int) RETURNS jsonb
	LANGUAGE sql STABLE AS \$\$
	  SELECT jsonb_build_object('operations', jsonb_agg(body ORDER BY seq))
	    FROM crash_check.ops WHERE client = p_client AND batch = p_batch \$\$;

	-- One row per operation: whether the ledger has it and whether the rest of
	-- the database agrees (its row, change-log row and id-map row, all or none).
	CREATE FUNCTION crash_check.state()
	RETURNS TABLE (client text, batch int, op_id text, applied boolean, consistent boolean, detail text)
	LANGUAGE sql STABLE AS \$\$
	WITH rows_by_name AS (
	    SELECT name, count(*) AS n, min(id)::text AS id FROM $S.clients GROUP BY name
	    UNION ALL SELECT name, count(*), min(id)::text FROM $S.pets GROUP BY name),
	notes AS (SELECT id, notes FROM $S.clients WHERE notes IS NOT NULL),
	chg AS (
	    SELECT client_id, CASE WHEN operation = 'create' THEN data ->> 'name'
	                           WHEN operation = 'update' THEN data ->> 'notes'
	                           ELSE 'delete:' || entity_id END AS key,
	           count(*) AS n, min(entity_id) AS entity_id, min(version) AS version
	      FROM $S.sync_changes WHERE client_id IS NOT NULL GROUP BY 1, 2),
	o AS (
	    SELECT o.*, l.outcome, l.real_id, l.version AS l_version, l.operation_id IS NOT NULL AS applied,
	           coalesce(CASE o.kind WHEN 'update' THEN (SELECT count(*) FROM notes WHERE notes.id = o.target_id AND notes.notes = o.marker)
	                                WHEN 'delete' THEN (SELECT count(*) FROM $S.appointments a WHERE a.id = o.target_id)
	                                ELSE r.n END, 0) AS nrows,
	           r.id AS row_id,
	           coalesce(c.n, 0) AS nchanges, c.entity_id AS change_entity, c.version AS change_version,
	           (SELECT count(*) FROM $S.sync_id_map m WHERE m.client_id = o.client AND m.temp_id = o.temp_id) AS nmapped,
	           (SELECT m.real_id FROM $S.sync_id_map m WHERE m.client_id = o.client AND m.temp_id = o.temp_id) AS mapped_id
	      FROM crash_check.ops o
	      LEFT JOIN $S.sync_ledger l ON l.client_id = o.client AND l.operation_id = o.op_id
	      LEFT JOIN rows_by_name r ON o.kind LIKE 'create%' AND r.name = o.marker
	      LEFT JOIN chg c ON c.client_id = o.client
	                     AND c.key = CASE WHEN o.kind = 'delete' THEN 'delete:' || o.target_id ELSE o.marker END)
	SELECT client, batch, op_id, applied,
	       CASE WHEN applied THEN
	                outcome = 'applied' AND nchanges = 1
	                AND nrows = CASE kind WHEN 'delete' THEN 0 ELSE 1 END
	                AND (kind NOT LIKE 'create%' OR (nmapped = 1 AND mapped_id = real_id AND row_id = real_id
	                                                 AND change_entity = real_id))
	                AND change_version = l_version
	            ELSE
	                nchanges = 0 AND nmapped = 0
	                AND nrows = CASE kind WHEN 'delete' THEN 1 ELSE 0 END
	       END,
	       format('%s: ledger %s, rows %s, changes %s, mapped %s', kind, coalesce(outcome, 'none'), nrows, nchanges, nmapped)
	  FROM o \$\$;
});
my $nops = $node->safe_psql('postgres', 'SELECT count(*) FROM crash_check.ops');
is($nops, scalar(@devices) * $batches * $groups * 4, "the workload has $nops operations");

# A trigger that holds a push half-way through its batch while armed.
$node->safe_psql(
	'postgres', qq{
	CREATE TABLE crash_check.armed (marker text);
	CREATE FUNCTION crash_check.hold() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
	    IF EXISTS (SELECT 1 FROM crash_check.armed a WHERE a.marker = NEW.name) THEN
	        PERFORM pg_sleep(600);
	    END IF;
	    RETURN NEW;
	END \$\$;
	CREATE TRIGGER crash_hold BEFORE INSERT ON $S.clients FOR EACH ROW EXECUTE FUNCTION crash_check.hold();
});

my $json = JSON::PP->new->canonical;

# The SQL a device runs to push some of its batches, one transaction each.
sub push_sql
{
	my ($device, @b) = @_;
	my $sql = qq{SET smartsync.tenant_id = '$tenant';
SET smartsync.practice_id = '1';
SET smartsync.user_id = '7';
SET smartsync.client_id = '$device';
SET smartsync.permissions = '*';
SET smartsync.batch_size = 1000;
};
	$sql .= "SELECT smartsync.sync_push(crash_check.payload('$device', $_)) ->> 'processed';\n" for @b;
	return $sql;
}

# Starts a device's pushes in a background psql (script, output and errors in
# files, so the process runs on without being pumped).
my $bg = 0;
sub start_pushes
{
	my ($device, @b) = @_;
	my $base = "$PostgreSQL::Test::Utils::tmp_check/push_" . $bg++;
	open my $fh, '>', "$base.sql" or die;
	print $fh push_sql($device, @b);
	close $fh;
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-f', "$base.sql" ],
		'<', \undef, '>', "$base.out", '2>', "$base.err");
	return { h => $h, base => $base };
}

# The state after recovery: every operation consistent, batches all or nothing.
sub check_state
{
	my ($label) = @_;
	my $bad = $node->safe_psql('postgres',
		"SELECT count(*) FROM crash_check.state() WHERE NOT consistent");
	is($bad, 0, "$label: every operation is in all of ledger, rows and change log, or in none")
	  or diag($node->safe_psql('postgres',
		"SELECT client, op_id, detail FROM crash_check.state() WHERE NOT consistent LIMIT 10"));
	my $torn = $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM (SELECT client, batch FROM crash_check.state()
		                       GROUP BY 1, 2 HAVING bool_or(applied) AND NOT bool_and(applied)) t});
	is($torn, 0, "$label: every batch is applied whole or not at all");
	return $node->safe_psql(
		'postgres', q{
		SELECT string_agg(format('%s/%s:%s', client, batch, CASE WHEN applied THEN 'applied' ELSE 'absent' END),
		                  ' ' ORDER BY client, batch)
		  FROM (SELECT client, batch, bool_and(applied) AS applied FROM crash_check.state() GROUP BY 1, 2) b});
}

# A pull cursor from before the crashes: the listing of the seeded rows, drained.
sub pull
{
	my ($cursor) = @_;
	my $arg = defined $cursor ? "p_cursor => '$cursor', " : '';
	return decode_json($node->safe_psql(
		'postgres', qq{
		SET smartsync.tenant_id = '$tenant';
		SET smartsync.client_id = 'reader';
		SELECT smartsync.sync_pull(${arg}p_limit => 10000);
	}));
}
my $cursor;
{
	my $r;
	do { $r = pull($cursor); $cursor = $r->{cursor}; } while ($r->{hasMore});
}

# --- A: SIGKILL of a backend half-way through its push --------------------
# tablet-a's third batch stops at its 100th client create (after some 100
# operations of the batch were applied in its transaction).
$node->safe_psql('postgres', "INSERT INTO crash_check.armed VALUES ('tablet-a/3/100/create_client')");
my $a = start_pushes('tablet-a', 1 .. $batches);
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
  or die 'the push did not reach the trigger: ' . slurp_file("$a->{base}.err");
my $victim = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep'");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM $S.sync_ledger WHERE client_id = 'tablet-a'"),
	2 * $groups * 4, 'A: two batches were committed before the kill');
kill 'KILL', $victim;
$a->{h}->finish;
like(slurp_file("$a->{base}.err"), qr/server closed the connection|terminat|connection/i,
	'A: the pushing session lost its connection');
# the postmaster resets all processes and replays WAL by itself
$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'no recovery after A';
ok($node->log_contains('was terminated by signal 9'), 'A: the server saw the backend killed');
ok($node->log_contains('all server processes terminated; reinitializing'), 'A: the server reinitialized');
$node->safe_psql('postgres', 'DELETE FROM crash_check.armed');
my $after_a = check_state('A');
like($after_a, qr{tablet-a/1:applied tablet-a/2:applied tablet-a/3:absent tablet-a/4:absent},
	'A: the batches committed before the kill are there, the one in flight is not');

# --- B: SIGKILL of the whole server while two devices push --------------------
my $b = start_pushes('tablet-b', 1 .. $batches);
my $c = start_pushes('tablet-c', 1 .. $batches);
# wait until tablet-b has committed its first batch
$node->poll_query_until('postgres',
	"SELECT count(*) >= 800 FROM $S.sync_ledger WHERE client_id = 'tablet-b'")
  or die 'the pushes did not start: ' . slurp_file("$b->{base}.err");
my $in_flight = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%sync_push%' AND state = 'active' AND pid <> pg_backend_pid()");
note("B: $in_flight pushes in flight at the kill");
my @procs = split /\s+/, `ps -o pid= --ppid $node->{_pid}`;
$node->kill9;
kill 'KILL', grep { /^\d+$/ } @procs;
$_->{h}->finish for ($b, $c);
# all gone before starting again
for (1 .. 100)
{
	last unless grep { /^\d+$/ && kill 0, $_ } @procs;
	select(undef, undef, undef, 0.1);
}
$node->start;
ok($node->log_contains('database system was interrupted|was not properly shut down|automatic recovery'),
	'B: the server ran crash recovery');
my $after_b = check_state('B');
like($after_b, qr{tablet-b/1:applied}, 'B: tablet-b\'s first batch survived');
note("after the crashes: $after_b");

# --- replay: every device pushes all its batches again ---------------------
my $applied_before = $node->safe_psql('postgres',
	"SELECT count(*) FROM crash_check.state() WHERE applied");
my ($replayed, $fresh) = (0, 0);
for my $d (@devices)
{
	my $out = $node->safe_psql('postgres', push_sql($d) . join('',
		map { "SELECT smartsync.sync_push(crash_check.payload('$d', $_));\n" } 1 .. $batches));
	for my $line (split /\n/, $out)
	{
		my $r = decode_json($line);
		for my $res (@{ $r->{results} })
		{
			if   ($res->{replayed}) { $replayed++; }
			elsif ($res->{success}) { $fresh++; }
		}
	}
}
is($replayed, $applied_before, 'replay: every operation applied before the crash comes back as replayed');
is($replayed + $fresh, $nops, 'replay: every other operation is applied now');
check_state('replay');
is($node->safe_psql('postgres', 'SELECT count(*) FROM crash_check.state() WHERE NOT applied'),
	0, 'replay: every operation is applied');

# exactly once: one row, one change-log row, one ledger entry each
is($node->safe_psql('postgres', "SELECT count(*) FROM $S.clients WHERE name LIKE 'tablet-%'"),
	scalar(@devices) * $batches * $groups, 'exactly once: one client per create');
is($node->safe_psql('postgres', "SELECT count(*) FROM $S.pets WHERE name LIKE 'tablet-%'"),
	scalar(@devices) * $batches * $groups, 'exactly once: one pet per create');
is($node->safe_psql('postgres', "SELECT count(*) FROM $S.sync_changes WHERE client_id LIKE 'tablet-%'"),
	$nops, 'exactly once: one change-log row per operation');
is($node->safe_psql('postgres', "SELECT count(*) FROM $S.sync_ledger WHERE client_id LIKE 'tablet-%'"),
	$nops, 'exactly once: one ledger entry per operation');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM $S.pets p JOIN $S.clients c ON c.id = p.client_id
		  WHERE p.name LIKE 'tablet-%' AND replace(p.name, 'create_pet', 'create_client') = c.name"),
	scalar(@devices) * $batches * $groups, 'every pet references the client made for it');

# a second replay changes nothing
my $changes = $node->safe_psql('postgres', "SELECT count(*) FROM $S.sync_changes");
my $again = $node->safe_psql('postgres', push_sql('tablet-b') .
	"SELECT smartsync.sync_push(crash_check.payload('tablet-b', 3)) ->> 'replayed';");
is((split /\n/, $again)[-1], $groups * 4, 'a second replay: all replayed');
is($node->safe_psql('postgres', "SELECT count(*) FROM $S.sync_changes"), $changes,
	'a second replay: no new change-log rows');

# --- the pull cursor from before the crashes delivers every change ---------
my %got;
{
	my $r;
	do
	{
		$r = pull($cursor);
		$cursor = $r->{cursor};
		$got{"$_->{entityType}/$_->{id}/$_->{operation}"}++ for @{ $r->{changes} };
	} while ($r->{hasMore});
}
my $expected = $node->safe_psql(
	'postgres', qq{
	SELECT count(*) FROM (
	    SELECT 'clients', id FROM $S.clients WHERE name LIKE 'tablet-%' OR notes LIKE 'tablet-%'
	    UNION ALL SELECT 'pets', id FROM $S.pets WHERE name LIKE 'tablet-%'
	    UNION ALL SELECT DISTINCT 'appointments', entity_id::bigint FROM $S.sync_changes
	               WHERE entity_type = 'appointments' AND operation = 'delete') t});
is(scalar(keys %got), $expected,
	'the cursor taken before the crashes delivers each changed entity once');
is(scalar(grep { m{^appointments/.*/delete$} } keys %got),
	scalar(@devices) * $batches * $groups, '... with every delete as a tombstone');

$node->stop;
done_testing();
