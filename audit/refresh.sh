#!/usr/bin/env bash
# Refreshes audit/advisory-db from rustsec/advisory-db. Needs GitHub (CI and the project
# machines do not reach it): run it where it is reachable, review the diff, commit.
#   audit/refresh.sh                 clone the advisory database into a temporary directory
#   audit/refresh.sh PATH_TO_CLONE   use an existing clone (fetch it first yourself)
# Copies crates/<name>/RUSTSEC-*.md for every crates.io package name in Cargo.lock, rewrites
# checked-crates.txt (every name looked at, with or without advisories) and PROVENANCE.tsv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ $# -ge 1 ]; then
    clone="$1"
else
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    git clone --depth 1 https://github.com/rustsec/advisory-db.git "$tmp/advisory-db"
    clone="$tmp/advisory-db"
fi
python3 "$here/audit.py" refresh "$clone"
git -C "$here/.." status --short -- audit/advisory-db 2>/dev/null || true
