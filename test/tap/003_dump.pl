# Dump and restore of a provisioned tenant.
#
# A database with two tenants, rows pushed with temporary ids, a refused
# operation, an open and a resolved conflict, is dumped with pg_dump (custom
# format) and restored with pg_restore --exit-on-error into a new database.
# The registry (smartsync.tenants, smartsync.entity_types: extension
# configuration tables), the pull secret, and each tenant's rows, change log, id
# map, ledger and conflicts come back identical.  Sync then goes on in the
# restored database: replays are recognised, old temporary ids still map,
# identity values continue past the old ones, the open conflict resolves,
# capture logs new writes, a cursor of the old database is told to refetch
# (SS505) and a new pull is exact.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION smartsync');
$node->safe_psql('src', slurp_file("$ENV{SMARTSYNC_DATA}/vet_schema.sql"));
$node->safe_psql('src',
	"SELECT smartsync.provision_tenant('dump'), smartsync.provision_tenant('dump2')");

my $ctx = q{
SET smartsync.tenant_id = 'dump';
SET smartsync.practice_id = '1';
SET smartsync.user_id = '42';
SET smartsync.client_id = 'tablet';
SET smartsync.permissions = '*';
};

# One sync_push as the tablet; returns the decoded response.
sub push_ops
{
	my ($db, $ops) = @_;
	return decode_json($node->safe_psql($db,
		$ctx . "SELECT smartsync.sync_push('{\"operations\": $ops}');"));
}

my $batch1 = q{[
 {"id": 1, "operation": "create", "entityType": "clients", "entityId": "temp_c1", "data": {"name": "Ann"}},
 {"id": 2, "operation": "create", "entityType": "pets", "entityId": "temp_p1", "data": {"name": "Rex", "clientId": "temp_c1"}},
 {"id": 3, "operation": "create", "entityType": "clients", "entityId": "temp_c2", "data": {"name": "Bob"}},
 {"id": 4, "operation": "create", "entityType": "clients", "data": {"name": "X", "nickname": "refused"}}
]};
my $r = push_ops('src', $batch1);
is($r->{processed}, 3, 'src: three operations applied, one refused');

# two conflicts: the server changed the rows after the tablet read them
$node->safe_psql('src', "UPDATE tenant_dump.clients SET phone = '1' WHERE name IN ('Ann', 'Bob')");
$r = push_ops('src', q{[
 {"id": 5, "operation": "update", "entityType": "clients", "entityId": "temp_c1", "version": 1, "data": {"phone": "555"}},
 {"id": 6, "operation": "update", "entityType": "clients", "entityId": "temp_c2", "version": 1, "data": {"phone": "666"}}
]});
is($r->{conflicts}, 2, 'src: two conflicts stored');
my @cid = map { $_->{conflictId} } @{ $r->{results} };
$node->safe_psql('src', $ctx . "SELECT smartsync.resolve_conflict($cid[0], 'client-wins');");
$node->safe_psql('src', "INSERT INTO tenant_dump2.clients (practice_id, name) VALUES (1, 'other tenant')");

# a client's cursor, issued by the source database
my $cursor = decode_json($node->safe_psql('src',
	$ctx . "SELECT smartsync.sync_pull(p_limit => 10000);"))->{cursor};

# A fingerprint of everything smartsync keeps, table by table.
my @tables = qw(smartsync.tenants smartsync.entity_types smartsync.pull_secret);
for my $s (qw(tenant_dump tenant_dump2))
{
	push @tables, map { "$s.$_" }
	  qw(sync_changes sync_id_map sync_ledger sync_conflicts sync_pull_horizon
	  clients pets appointments practitioners soap_notes invoices);
}
sub fingerprint
{
	my ($db) = @_;
	my %f;
	for my $t (@tables)
	{
		$f{$t} = $node->safe_psql($db,
			"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM $t t");
	}
	return \%f;
}
my $before = fingerprint('src');
like($before->{'tenant_dump.sync_ledger'}, qr/^6 /, 'src: six operations in the ledger');
like($before->{'tenant_dump.sync_conflicts'}, qr/^2 /, 'src: two conflicts');

# --- dump, restore into a new database --------------------------------------
my $file = "$PostgreSQL::Test::Utils::tmp_check/src.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $file, '-d', $node->connstr('src') ],
	'pg_dump of the database');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $file ],
	'pg_restore into a new database, without errors');

my $after = fingerprint('dst');
for my $t (@tables)
{
	is($after->{$t}, $before->{$t}, "restored: $t is identical");
}
is($node->safe_psql('dst', "SELECT extversion FROM pg_extension WHERE extname = 'smartsync'"),
	$node->safe_psql('src', "SELECT extversion FROM pg_extension WHERE extname = 'smartsync'"),
	'restored: the same extension version');

# --- sync goes on in the restored database -------------------------------------
$r = push_ops('dst', $batch1);
is(scalar(grep { $_->{replayed} } @{ $r->{results} }), 4,
	'a replay of the first batch is recognised from the restored ledger');
is($node->safe_psql('dst', 'SELECT count(*) FROM tenant_dump.sync_changes'),
	(split / /, $before->{'tenant_dump.sync_changes'})[0], '... and changes nothing');

$r = push_ops('dst', q{[
 {"id": 7, "operation": "create", "entityType": "pets", "entityId": "temp_p2", "data": {"name": "Kit", "clientId": "temp_c1"}},
 {"id": 8, "operation": "create", "entityType": "clients", "entityId": "temp_c3", "data": {"name": "Cy"}},
 {"id": 9, "operation": "update", "entityType": "pets", "entityId": "temp_p1", "version": 1, "data": {"species": "dog"}}
]});
ok($r->{success}, 'a new push applies: a new pet of a client known by its old temporary id, a new client, an update')
  or diag(encode_json($r));
is($node->safe_psql('dst', q{
	SELECT p.client_id = c.id FROM tenant_dump.pets p, tenant_dump.clients c
	 WHERE p.name = 'Kit' AND c.name = 'Ann'}), 't', 'the old temporary id mapped to the same client');
is($node->safe_psql('dst',
		"SELECT (SELECT id FROM tenant_dump.clients WHERE name = 'Cy') > (SELECT max(id) FROM tenant_dump.clients WHERE name <> 'Cy')"),
	't', 'identity values continue past the restored rows');

$r = decode_json($node->safe_psql('dst',
	$ctx . "SELECT smartsync.resolve_conflict($cid[1], 'server-wins');"));
is($r->{status}, 'resolved', 'the open conflict resolves in the restored database');
$node->safe_psql('dst', "UPDATE tenant_dump.clients SET phone = '2' WHERE name = 'Ann'");
$r = push_ops('dst', q{[
 {"id": 10, "operation": "update", "entityType": "clients", "entityId": "temp_c1", "version": 1, "data": {"phone": "777"}}
]});
ok($r->{results}[0]{conflictId} > $cid[1], 'a new conflict gets an id past the restored ones');

is($node->safe_psql('dst', q{
	INSERT INTO tenant_dump.clients (practice_id, name) VALUES (1, 'Di');
	SELECT count(*) FROM tenant_dump.sync_changes WHERE data ->> 'name' = 'Di'}), '1',
	'capture logs a plain SQL insert in the restored database');

my ($ret, $out, $err) = $node->psql('dst',
	"\\set VERBOSITY verbose\n" . $ctx . "SELECT smartsync.sync_pull(p_cursor => '$cursor');");
like($err, qr/SS505/, 'a cursor issued by the old database must refetch (SS505)');

my $page = decode_json($node->safe_psql('dst', $ctx . "SELECT smartsync.sync_pull(p_limit => 10000);"));
is(scalar(grep { $_->{entityType} eq 'clients' } @{ $page->{changes} }),
	$node->safe_psql('dst', 'SELECT count(*) FROM tenant_dump.clients WHERE practice_id = 1'),
	'a new first pull lists the restored and new rows');
$node->safe_psql('dst', "UPDATE tenant_dump.clients SET notes = 'after' WHERE name = 'Cy'");
my $next = decode_json($node->safe_psql('dst',
	$ctx . "SELECT smartsync.sync_pull(p_cursor => '$page->{cursor}');"));
is(join(',', map { "$_->{entityType}:$_->{data}{name}" } @{ $next->{changes} }), 'clients:Cy',
	'and its cursor continues exactly');

is($node->safe_psql('dst', "SELECT smartsync.provision_tenant('dump3')"), 'tenant_dump3',
	'the restored registry provisions a new tenant');

$node->stop;
done_testing();
