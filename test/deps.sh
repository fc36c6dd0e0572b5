#!/bin/bash
# Installs the Debian packages smartsync needs to build, test, benchmark and run
# its demo, when any is missing (chromium: the example app's browser tests).  Uses sudo when not root.
set -euo pipefail
PKGS="postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap pgtap libipc-run-perl libpq-dev postgresql-contrib make gcc libasan8 libubsan1 chromium"
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
