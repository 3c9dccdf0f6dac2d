#!/bin/sh
# verify-unit.sh: checks a unit of deploy/ (dealflowd.service by default) with systemd-analyze verify, against the built program it starts.
# usage: sh deploy/verify-unit.sh BIN_DIR [NAME]   (NAME: dealflowd or dealflow-gateway; exit 77: skipped, no systemd-analyze here)
set -eu
build=${1:?usage: verify-unit.sh BIN_DIR [NAME]}
name=${2:-dealflowd}
unit=$(dirname "$0")/$name.service
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "verify-unit.sh: skipped: systemd-analyze is not installed (Debian's package systemd has it)"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# the unit names the installed path; the check runs the built binary
sed "s|/usr/bin/$name|$(cd "$build" && pwd)/$name|" "$unit" >"$dir/$name.service"
out=$(systemd-analyze verify --man=no "$dir/$name.service" 2>&1) || {
    echo "$out"
    exit 1
}
# verify prints warnings without failing: any line is a finding
if [ -n "$out" ]; then
    echo "$out"
    exit 1
fi
echo "verify-unit.sh: $name.service verified"
