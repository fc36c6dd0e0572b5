# bench/ab_builds.sh: the two builds of a before/after benchmark on one server.
# Sourced (not run) by bench/push_ab.sh, bench/pull_ab.sh and bench/push_cpu.sh,
# in the tree's top directory, inside a private server of this tree
# (test/private.sh), with REV (the commit to compare with), DB (the benchmark's
# database) and PG_CONFIG set.  Builds REV's library from `git archive` into a
# temporary directory ($tmp, removed on exit with the database), keeps this
# tree's as it is installed, and defines
#   use before|after   puts that build's library in place: the server loads the
#                      file when a connection opens, so each run opens its own
#                      connections after a use (both builds must have the same SQL)
lib=${PRIVATE_PKGLIBDIR:?run inside test/private.sh}/smartsync.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dropdb --if-exists "$DB" 2>/dev/null' EXIT
mkdir "$tmp/before"
git archive "$REV" | tar -x -C "$tmp/before"
make -s -C "$tmp/before" PG_CONFIG="$PG_CONFIG" >/dev/null 2>&1
cp "$tmp/before/smartsync.so" "$tmp/before.so"
cp "$lib" "$tmp/after.so"
use() { cp "$tmp/$1.so" "$lib.new" && mv "$lib.new" "$lib"; }
