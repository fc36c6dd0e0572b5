# sync_pull on a hot standby.
#
# A primary with a provisioned tenant streams to a hot standby.  Once replay has
# caught up, sync_pull on the standby returns what the primary returns for the
# same cursor (the first listing, its pages, and incremental drains).  A standby
# that lags behind the cursor it is given answers "nothing yet" and hands the
# cursor back unchanged, never a gap.  A client that pulls alternately from the
# primary and the standby, each time with the cursor the other returned, while
# the primary keeps writing (plain SQL and sync_push), receives every change
# exactly once and ends with exactly the primary's rows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;

my $json = JSON::PP->new->canonical;
my $tenant = 'standby';
my $schema = 'tenant_standby';

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION smartsync');
$primary->safe_psql('postgres',
	slurp_file("$ENV{SMARTSYNC_DATA}/vet_schema.sql"));
$primary->safe_psql('postgres',
	"SELECT smartsync.provision_tenant('$tenant')");

# Some rows before the standby exists: three practices' clients, pets, appointments.
$primary->safe_psql(
	'postgres', qq{
	INSERT INTO $schema.clients (id, practice_id, name)
	SELECT i, 1 + i % 2, 'client ' || i FROM generate_series(1, 40) i;
	INSERT INTO $schema.pets (id, practice_id, client_id, name)
	SELECT 100 + i, 1 + i % 2, i, 'pet ' || i FROM generate_series(1, 40) i;
	INSERT INTO $schema.appointments (id, practice_id, pet_id, title, date)
	SELECT 1000 + i, 1 + i % 2, 100 + i, 'visit ' || i, '2024-11-10 12:00+00'
	  FROM generate_series(1, 40) i;
});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');

# One sync_pull call as the tenant's client; returns the decoded response.
sub pull
{
	my ($node, $cursor, $limit) = @_;
	my $args = join(', ',
		(defined $cursor ? ("p_cursor => '$cursor'") : ()),
		(defined $limit  ? ("p_limit => $limit")     : ()));
	my $out = $node->safe_psql(
		'postgres', qq{
		SET smartsync.tenant_id = '$tenant';
		SET smartsync.client_id = 'reader';
		SELECT smartsync.sync_pull($args);
	});
	return decode_json($out);
}

# The part of a response that must agree between servers: all but the
# server's clock ("timestamp") and the cursor's encoding of its snapshot.
sub body
{
	my ($r) = @_;
	return $json->encode(
		{
			changes => $r->{changes},
			hasMore => $r->{hasMore},
			full    => $r->{full},
			success => $r->{success}
		});
}

# 1. The first sync: the listing of the live rows, page by page, the same on
#    both servers for the same cursor.
my $cursor;
my $page = 0;
my $listed = 0;
while (1)
{
	my $p = pull($primary, $cursor, 25);
	my $s = pull($standby, $cursor, 25);
	$page++;
	is(body($s), body($p), "listing page $page: the standby returns the primary's page");
	$listed += scalar @{ $p->{changes} };
	# continue with the standby's cursor on even pages: either server's cursor works
	$cursor = $page % 2 ? $p->{cursor} : $s->{cursor};
	last unless $p->{hasMore};
	last if $page > 20;
}
is($listed, 120, 'the listing delivered every live row once');

# 2. Incremental drains after writes on the primary, the same cursor on both.
$primary->safe_psql(
	'postgres', qq{
	UPDATE $schema.clients SET name = name || ' (moved)' WHERE id % 5 = 0;
	DELETE FROM $schema.appointments WHERE id % 7 = 0;
	INSERT INTO $schema.clients (id, practice_id, name) VALUES (41, 1, 'late client');
});
$primary->wait_for_catchup($standby);
{
	my $p = pull($primary, $cursor);
	my $s = pull($standby, $cursor);
	ok(scalar @{ $p->{changes} } > 0, 'the drain has changes');
	is(body($s), body($p), 'drain: the standby returns the primary\'s changes');
	is(scalar(grep { $_->{operation} eq 'delete' } @{ $p->{changes} }),
		6, 'drain: the six deletes arrive as tombstones');
	$cursor = $s->{cursor};
}

# 3. A standby behind the cursor: replay paused, the primary moves on.  The
#    standby answers with no changes and the same cursor; after replay resumes
#    it returns exactly what the primary returned.
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$standby->poll_query_until('postgres',
	"SELECT pg_get_wal_replay_pause_state() = 'paused'")
  or die 'replay did not pause';
$primary->safe_psql('postgres',
	"UPDATE $schema.pets SET name = name || '!' WHERE id <= 110");
my $ahead = pull($primary, $cursor);
is(scalar @{ $ahead->{changes} }, 10, 'the primary sees the ten renamed pets');
{
	my $lag = pull($standby, $ahead->{cursor});
	is(scalar @{ $lag->{changes} }, 0,
		'a lagging standby given a newer cursor returns nothing yet');
	is($lag->{cursor}, $ahead->{cursor},
		'... and hands the same cursor back');
	my $old = pull($standby, $cursor);
	is(scalar @{ $old->{changes} }, 0,
		'the lagging standby does not yet see the renames');
}
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
$primary->wait_for_catchup($standby);
is(body(pull($standby, $cursor)), body($ahead),
	'after catching up the standby returns what the primary returned');
$cursor = $ahead->{cursor};

# 4. Alternating pulls with the other server's cursor while the primary keeps
#    writing, sometimes with the standby behind.  The client applies every page
#    to a local copy; no change may arrive twice and none may be missing.
my %local;    # "type/id" -> version, what the client holds
my %seen;     # "type/id/version" -> times delivered
my $dups = 0;

sub apply_page
{
	my ($r) = @_;
	for my $c (@{ $r->{changes} })
	{
		my $key = "$c->{entityType}/$c->{id}";
		$dups++ if $seen{"$key/$c->{version}"}++;
		if ($c->{operation} eq 'delete') { delete $local{$key}; }
		else                             { $local{$key} = 0 + $c->{version}; }
	}
}

# the client's starting state: a full listing from the standby
{
	my $c;
	for (1 .. 50)
	{
		my $r = pull($standby, $c, 50);
		apply_page($r);
		$c = $r->{cursor};
		last unless $r->{hasMore};
	}
	$cursor = $c;
}

my $next_id = 5000;
for my $round (1 .. 12)
{
	# writes on the primary: new rows, updates, deletes, and a push
	my $a = $next_id++;
	my $b = $next_id++;
	$primary->safe_psql(
		'postgres', qq{
		INSERT INTO $schema.clients (id, practice_id, name)
		VALUES ($a, 1, 'round $round a'), ($b, 2, 'round $round b');
		UPDATE $schema.clients SET phone = '555-$round' WHERE id = 1 + $round;
		DELETE FROM $schema.appointments WHERE id = 1000 + $round;
	});
	my $pushed = $primary->safe_psql(
		'postgres', qq{
		SET smartsync.tenant_id = '$tenant';
		SET smartsync.practice_id = '1';
		SET smartsync.client_id = 'writer';
		SET smartsync.permissions = 'pets:create,pets:update';
		SELECT smartsync.sync_push('{"operations": [
		  {"id": "r$round-1", "operation": "create", "entityType": "pets", "entityId": "temp_r$round",
		   "data": {"name": "pushed $round", "clientId": $a}},
		  {"id": "r$round-2", "operation": "update", "entityType": "pets", "entityId": "temp_r$round",
		   "data": {"species": "cat"}, "version": 1}]}');
	});
	my $pr = decode_json($pushed);
	ok($pr->{success} && $pr->{processed} == 2, "round $round: the push applied both operations")
	  or diag($pushed);

	# every third round the standby is still behind when the client asks it
	my $lagging = ($round % 3 == 0);
	$primary->wait_for_catchup($standby) unless $lagging;

	my $node = ($round % 2) ? $standby : $primary;
	for (1 .. 50)
	{
		my $r = pull($node, $cursor, 7);
		apply_page($r);
		$cursor = $r->{cursor};
		last unless $r->{hasMore};
		# page on with the other server
		$node = ($node == $primary) ? $standby : $primary;
		$primary->wait_for_catchup($standby) if $node == $standby;
	}
}

# drain what is left, from the standby after catching up
$primary->wait_for_catchup($standby);
for (1 .. 50)
{
	my $r = pull($standby, $cursor, 7);
	apply_page($r);
	$cursor = $r->{cursor};
	last unless $r->{hasMore};
}

is($dups, 0, 'alternating pulls: no change was delivered twice');

# the primary's rows, as the client should now hold them
my %server;
for my $t (qw(clients practitioners pets appointments soap_notes invoices))
{
	my $rows = $primary->safe_psql('postgres',
		"SELECT string_agg(id || ':' || version, ',') FROM $schema.$t");
	for my $iv (split /,/, $rows)
	{
		my ($id, $v) = split /:/, $iv;
		$server{"$t/$id"} = 0 + $v;
	}
}
is($json->encode(\%local), $json->encode(\%server),
	'alternating pulls: the client holds exactly the primary\'s rows and versions');
# 41 + 24 clients, 40 + 12 pets, 40 - 16 appointments
is(scalar(keys %server), 141, 'the client holds all 141 rows, those of every round included');

# the standby's own view with the final cursor agrees: nothing more to pull
is(scalar @{ pull($standby, $cursor)->{changes} }, 0, 'standby: nothing left to pull');
is(scalar @{ pull($primary, $cursor)->{changes} }, 0, 'primary: nothing left to pull');

# a write on the standby is refused (sync_push needs the primary)
my ($ret, $out, $err) = $standby->psql(
	'postgres', qq{
	SET smartsync.tenant_id = '$tenant';
	SET smartsync.practice_id = '1';
	SET smartsync.client_id = 'reader';
	SET smartsync.permissions = 'clients:create';
	SELECT smartsync.sync_push('{"operations": [{"id": "s1", "operation": "create",
	  "entityType": "clients", "data": {"name": "on the standby"}}]}');
});
like($err, qr/read-only|recovery/, 'sync_push on the standby is refused');

$standby->stop;
$primary->stop;
done_testing();
