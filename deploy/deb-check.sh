#!/bin/sh
# deb-check.sh: builds the Debian package, installs it with dpkg -i into a throwaway root, and starts and pings the dealflowd in it and runs its gateway.
# usage: sh deploy/deb-check.sh [BUILD_DIR]   (default build-deb; slow: run it by hand, not in CI)
#
# The root is empty but for dpkg's database and the account files, so
# dpkg runs the maintainer scripts outside it (--force-script-chrootless:
# they see the root in $DPKG_ROOT) and does not check the dependencies there
# (--force-depends): the daemon runs with this machine's libraries, which
# are what the package's Depends names.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-deb}
say() { printf '\n== deb-check: %s\n' "$*"; }

say "building in $build"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
    -DBUILD_TESTING=OFF >/dev/null
nice cmake --build "$build" -j2 >/dev/null
rm -f "$build"/dealflow_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/dealflow_*.deb)

say "$deb"
dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"
depends=$(dpkg-deb --field "$deb" Depends)
for lib in libc6 libzmq5 liblmdb0 libuv1 libsodium23 libsystemd0 libmsgpackc2 libjansson4 \
    libmicrohttpd12 libcurl4 adduser; do
    case "$depends" in
    *"$lib"*) ;;
    *) echo "deb-check: Depends lacks $lib: $depends" >&2; exit 1 ;;
    esac
done
if command -v lintian >/dev/null 2>&1; then
    say "lintian (findings are reported, not fatal)"
    lintian --no-tag-display-limit "$deb" || true
else
    say "lintian is not installed: skipped"
fi

work=$(mktemp -d)
pid=
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
grep '^root:' /etc/passwd >"$root/etc/passwd"
grep '^root:' /etc/group >"$root/etc/group"
grep '^root:' /etc/shadow >"$root/etc/shadow"
grep '^root:' /etc/gshadow >"$root/etc/gshadow"
cp /etc/login.defs "$root/etc/"

say "dpkg -i into $root"
dpkg --root="$root" --force-script-chrootless --force-depends -i "$deb"
dpkg --root="$root" -l dealflow | tail -1

say "what the package put in place"
fail() { echo "deb-check: $*" >&2; exit 1; }
for f in usr/bin/dealflowd usr/bin/dealflow usr/lib/systemd/system/dealflowd.service \
    usr/share/man/man1/dealflowd.1 usr/share/man/man1/dealflow.1 usr/include/dealflow.h \
    usr/bin/dealflow-gateway usr/share/man/man1/dealflow-gateway.1 \
    usr/lib/systemd/system/dealflow-gateway.service; do
    [ -e "$root/$f" ] || fail "/$f is missing"
    echo "/$f"
done
grep -q '^ExecStart=/usr/bin/dealflowd ' "$root/usr/lib/systemd/system/dealflowd.service" ||
    fail "the unit does not start /usr/bin/dealflowd"
grep -q '^ExecStart=/usr/bin/dealflow-gateway ' \
    "$root/usr/lib/systemd/system/dealflow-gateway.service" ||
    fail "the gateway's unit does not start /usr/bin/dealflow-gateway"
grep '^dealflow:' "$root/etc/passwd" || fail "no user dealflow"
grep '^dealflow-gateway:' "$root/etc/passwd" || fail "no user dealflow-gateway"
stat -c '%A %U:%G %n' "$root/var/lib/dealflow-gateway" "$root/etc/dealflow-gateway"
guid=$(awk -F: '$1 == "dealflow-gateway" { print $3 }' "$root/etc/passwd")
ggid=$(awk -F: '$1 == "dealflow-gateway" { print $3 }' "$root/etc/group")
[ "$(stat -c '%u %a' "$root/var/lib/dealflow-gateway")" = "$guid 700" ] ||
    fail "/var/lib/dealflow-gateway is not dealflow-gateway's, 0700"
[ "$(stat -c '%u %g %a' "$root/etc/dealflow-gateway")" = "0 $ggid 750" ] ||
    fail "/etc/dealflow-gateway is not root:dealflow-gateway, 0750"
stat -c '%A %U:%G %n' "$root/var/lib/dealflow" "$root/etc/dealflow"
uid=$(awk -F: '$1 == "dealflow" { print $3 }' "$root/etc/passwd")
[ "$(stat -c '%u %a' "$root/var/lib/dealflow")" = "$uid 750" ] || fail "/var/lib/dealflow is not dealflow's, 0750"
[ "$(stat -c '%u %a' "$root/etc/dealflow")" = "0 750" ] || fail "/etc/dealflow is not root's, 0750"

say "starting the installed dealflowd (without systemd)"
libdir=$(dirname "$(find "$root/usr/lib" -name 'libdealflow.so*' | head -1)")
api=ipc://$work/api
"$root/usr/bin/dealflowd" --data "$work/data" --ingest "ipc://$work/ingest" --api "$api" \
    --notify "ipc://$work/notify" 2>"$work/daemon.log" &
pid=$!
ok=
for _ in 1 2 3 4 5 6 7 8 9 10; do
    if LD_LIBRARY_PATH=$libdir DEALFLOW_API=$api "$root/usr/bin/dealflow" ping; then
        ok=1
        break
    fi
done
[ -n "$ok" ] || { cat "$work/daemon.log"; fail "the installed dealflowd did not answer ping"; }
"$root/usr/bin/dealflow-gateway" --version || fail "the installed dealflow-gateway does not run"
LD_LIBRARY_PATH=$libdir DEALFLOW_API=$api "$root/usr/bin/dealflow" send \
    '{"id":"deb-check-1","type":"stage","deal":"d","stage":"lead"}'
kill -TERM "$pid"
wait "$pid" || fail "dealflowd did not exit 0 after SIGTERM"
pid=
cat "$work/daemon.log"
"$root/usr/bin/dealflowd" --verify --data "$work/data"

say "dpkg -r: the store's directory and the user stay"
dpkg --root="$root" --force-script-chrootless -r dealflow
[ -d "$root/var/lib/dealflow" ] || fail "/var/lib/dealflow went with the package"
[ ! -e "$root/usr/bin/dealflowd" ] || fail "/usr/bin/dealflowd stayed"

say "passed"
