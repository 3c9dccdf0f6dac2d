#!/bin/sh
# verify-unit.sh: checks deploy/dealflowd.service with systemd-analyze verify, against a built dealflowd.
# usage: sh deploy/verify-unit.sh BUILD_DIR   (exit 77: skipped, no systemd-analyze here)
set -eu
build=${1:?usage: verify-unit.sh BUILD_DIR}
unit=$(dirname "$0")/dealflowd.service
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "verify-unit.sh: skipped: systemd-analyze is not installed (Debian's package systemd has it)"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# the unit names the installed path; the check runs the built binary
sed "s|/usr/bin/dealflowd|$(cd "$build" && pwd)/dealflowd|" "$unit" >"$dir/dealflowd.service"
out=$(systemd-analyze verify --man=no "$dir/dealflowd.service" 2>&1) || {
    echo "$out"
    exit 1
}
# verify prints warnings without failing: any line is a finding
if [ -n "$out" ]; then
    echo "$out"
    exit 1
fi
echo "verify-unit.sh: dealflowd.service verified"
