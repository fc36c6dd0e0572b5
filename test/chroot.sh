#!/bin/bash
# The Debian chroots that PostgreSQL versions other than the host's run in, for the
# version matrix (test/matrix.sh) and the benchmarks (bench/run.sh --pg N).
#
#   bash test/chroot.sh [--refresh] N             # make (or reuse) the chroot of PostgreSQL N
#   bash test/chroot.sh [--refresh] N -- CMD ARG...   # ... and run CMD in a copy of this tree in it
#
# PostgreSQL 17 comes from Debian 13 (trixie), 18 from Debian testing (forky), both
# from Debian's own archive.  A chroot is built once with debootstrap (minbase), then
# apt-get installs what test/deps.sh lists for that version (PostgreSQL N, its server
# headers, pgTAP, the Perl modules of the TAP tests, libpq, gcc, make), and it is reused
# from then on; --refresh builds it again.  The chroots live outside the checkout, in
# $SMARTSYNC_CHROOTS (default /var/tmp/smartsync-chroots), one directory per version,
# about 1.5 GB each.
#
# CMD runs as root in a private copy of the tree (the working tree's objects stay
# untouched), with SMARTSYNC_PG_VERSION=N and the chroot's own PostgreSQL: its servers
# run as the chroot's postgres user, as on the host (pg_virtualenv, the TAP tests).
# It runs in namespaces of its own: a mount namespace (/proc, /dev/pts and /dev/shm are
# mounted for it and unmounted when it ends, whether it passes or fails, and vanish
# with the namespace even if it is killed), a PID namespace (no server of the run can
# outlive it) and a network namespace with only a loopback (its clusters cannot clash
# with the host's ports).  One run at a time per chroot (a lock), since CMD installs
# smartsync into the chroot's PostgreSQL.  Needs root (re-runs itself with sudo).
# (the whole script is one block, read before it runs: editing or checking out
# another version of this file during a run leaves the run as it was)
{
set -euo pipefail
tree=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
    exec sudo --preserve-env=SMARTSYNC_CHROOTS,SMARTSYNC_MIRROR,SMARTSYNC_KEEP bash "$0" "$@"
fi
CHROOTS=${SMARTSYNC_CHROOTS:-/var/tmp/smartsync-chroots}
MIRROR=${SMARTSYNC_MIRROR:-http://deb.debian.org/debian}

refresh=""
if [ "${1:-}" = --refresh ]; then refresh=yes; shift; fi
v=${1:-}
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then
    [ "$1" = -- ] || { echo "usage: test/chroot.sh [--refresh] VERSION [-- CMD ARG...]" >&2; exit 2; }
    shift
fi
case $v in
    17) suite=trixie ;;
    18) suite=forky ;;
    *) echo "chroot: no chroot for PostgreSQL '$v': 17 (Debian trixie) and 18 (Debian forky) are known" >&2
       exit 2 ;;
esac
root=$CHROOTS/$suite-pg$v

# the host's tools: debootstrap, and ip for the loopback of a run's network namespace
need=""
command -v debootstrap >/dev/null || need="$need debootstrap"
command -v ip >/dev/null || need="$need iproute2"
if [ -n "$need" ]; then
    echo "chroot: installing$need"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi

mkdir -p "$CHROOTS"
# outside the checkout: git would see them, and each run copies the tree
case "$(cd "$CHROOTS" && pwd -P)/" in
    "$(cd "$tree" && pwd -P)"/*)
        echo "chroot: SMARTSYNC_CHROOTS ($CHROOTS) is inside the checkout; choose a directory outside it" >&2
        exit 2 ;;
esac
exec 9>"$root.lock"
if ! flock -n 9; then
    echo "chroot: waiting for another run in $root"
    flock 9
fi

# refuses to go on if anything is mounted below the chroot (a run of an older script
# killed half-way): rm -rf would go through a bind mount into the host
check_unmounted() {
    if awk -v r="$1/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
        echo "chroot: something is still mounted below $1; unmount it first:" >&2
        awk -v r="$1/" 'index($2, r) == 1 { print "  " $2 }' /proc/self/mounts >&2
        exit 1
    fi
}

# runs "$@" in chroot DIR, in its own mount and PID namespaces (and network namespace
# unless NET=host), with /proc, /dev/pts and /dev/shm mounted for it
in_chroot() {
    local dir=$1; shift
    local net=(--net) isolated=1
    [ "${NET:-}" = host ] && { net=(); isolated=""; }
    PGV=$PGV ISOLATED_NET=$isolated unshare --mount --pid --fork --propagation private "${net[@]}" bash -c '
        set -e
        dir=$1; shift
        [ -n "$ISOLATED_NET" ] && ip link set lo up
        cleanup() { umount -l "$dir/dev/ptmx" "$dir/dev/pts" "$dir/dev/shm" "$dir/proc" 2>/dev/null || true; }
        trap cleanup EXIT
        mount -t proc proc "$dir/proc"
        mount -t tmpfs -o mode=1777,nosuid,nodev shm "$dir/dev/shm"
        mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$dir/dev/pts"
        mount --bind "$dir/dev/pts/ptmx" "$dir/dev/ptmx"
        status=0
        chroot "$dir" /usr/bin/env -i \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
            SMARTSYNC_PG_VERSION="$PGV" "$@" || status=$?
        exit $status
    ' in_chroot "$dir" "$@"
}

# the packages of the chroot: what test/deps.sh lists for version N, and libc6-dev
# (gcc only recommends it); install_packages adds the JIT where it is a package of
# its own (18 on), as the host's PostgreSQL has it
packages() {
    echo $(SMARTSYNC_PG_VERSION=$v bash "$tree/test/deps.sh" --list) libc6-dev
}

# installs what is missing of packages() in chroot DIR
install_packages() {
    local dir=$1 missing
    missing=$(PGV=$v in_chroot "$dir" bash -c 'for p in "$@"; do
        dpkg-query -W -f="\${Status}" "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done' _ $(packages))
    [ -z "$missing" ] && return 0
    echo "chroot: installing" $missing
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    PGV=$v NET=host in_chroot "$dir" bash -c '
        set -e
        apt-get update -qq
        extra=""
        apt-cache show "postgresql-$SMARTSYNC_PG_VERSION-jit" >/dev/null 2>&1 && extra="postgresql-$SMARTSYNC_PG_VERSION-jit"
        apt-get install -y -qq --no-install-recommends "$@" $extra >/dev/null
        apt-get clean' _ $missing
}

build() {
    local new=$root.new start=$SECONDS
    echo "chroot: building $root (Debian $suite, PostgreSQL $v) from $MIRROR"
    check_unmounted "$new"
    rm -rf --one-file-system "$new"
    # a debootstrap too old to know the release's name builds it with sid's script
    local script=()
    [ -e "/usr/share/debootstrap/scripts/$suite" ] || script=(/usr/share/debootstrap/scripts/sid)
    debootstrap --variant=minbase "$suite" "$new" "$MIRROR" "${script[@]}" > "$CHROOTS/$suite-pg$v.debootstrap.log" 2>&1 || {
        tail -20 "$CHROOTS/$suite-pg$v.debootstrap.log"; echo "chroot: debootstrap failed" >&2; exit 1; }
    # no service starts in the chroot, no cluster is made on installing PostgreSQL
    printf '#!/bin/sh\nexit 101\n' > "$new/usr/sbin/policy-rc.d"
    chmod 755 "$new/usr/sbin/policy-rc.d"
    mkdir -p "$new/etc/postgresql-common"
    echo "create_main_cluster = false" > "$new/etc/postgresql-common/createcluster.conf"
    # testing's Release file is valid for a week only; a mirror a little behind is fine
    # for a test chroot (the signatures are still checked)
    echo 'Acquire::Check-Valid-Until "false";' > "$new/etc/apt/apt.conf.d/99smartsync"
    install_packages "$new"
    check_unmounted "$root"
    rm -rf --one-file-system "$root"
    mv "$new" "$root"
    echo "chroot: built $root in $((SECONDS - start))s ($(du -sh "$root" | cut -f1))"
}

if [ -n "$refresh" ] || [ ! -x "$root/usr/lib/postgresql/$v/bin/pg_config" ]; then
    build
else
    echo "chroot: reusing $root"
    install_packages "$root"
fi

[ $# -gt 0 ] || { echo "$root"; exit 0; }

# a copy of the tree in the chroot, without build products and node_modules (the
# copies of runs that were killed go first: this run holds the lock)
mkdir -p "$root/build"
rm -rf --one-file-system "$root/build"/smartsync.*
copy=$(mktemp -d "$root/build/smartsync.XXXXXX")
trap '[ -n "${SMARTSYNC_KEEP:-}" ] && echo "chroot: kept $copy" || rm -rf "$copy"' EXIT
(cd "$tree" && tar cf - --exclude=.git --exclude=node_modules --exclude='*.o' --exclude='*.bc' \
    --exclude='*.so' --exclude=./results --exclude=./output_iso --exclude=./build \
    --exclude=./regression.diffs --exclude=./regression.out .) | tar xf - -C "$copy"
chmod -R a+rX "$copy"
chmod 755 "$copy"
PGV=$v in_chroot "$root" bash -c 'cd "$1"; shift; exec "$@"' _ "${copy#$root}" "$@"
exit
}
