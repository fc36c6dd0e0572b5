#!/bin/bash
# Installs the Debian packages smartsync needs to build, test, benchmark and run
# its demo, when any is missing (chromium: the example app's browser tests).  Uses sudo
# when not root.
#   bash test/deps.sh          # PostgreSQL 15 (Debian 12), or SMARTSYNC_PG_VERSION
#   bash test/deps.sh --list   # only print the database packages (test/chroot.sh installs
#                              # them into a version's chroot, where no browser test runs)
set -euo pipefail
v=${SMARTSYNC_PG_VERSION:-15}
# contrib is part of postgresql-N; Debian 12 also has a postgresql-contrib package
contrib=""
[ "$v" = 15 ] && contrib=postgresql-contrib
# libkrb5-dev: the server headers' libpq/libpq-be.h includes gssapi/gssapi.h (poll.c needs
# libpq/libpq.h), and not every version's server-dev package pulls it in
PKGS="postgresql-$v postgresql-server-dev-$v postgresql-$v-pgtap pgtap libipc-run-perl libpq-dev libkrb5-dev $contrib make gcc libasan8 libubsan1"
if [ "${1:-}" = --list ]; then echo $PKGS; exit 0; fi
# the browser tests run on the host's 15 only (test/run.sh)
[ "$v" = 15 ] && PKGS="$PKGS chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "smartsync: installing$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
