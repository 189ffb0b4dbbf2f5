#!/usr/bin/env bash
# RustSec advisory check of Cargo.lock against the vendored snapshot in audit/advisory-db,
# then its self-test. Run by .ci/run; see audit/README.md.
#
# Builds the pinned cargo-audit from crates.io (a few minutes on 2 cores) into a temporary
# root, unless CARGO_AUDIT names a cargo-audit binary of that version already.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=0.22.2

if [ -z "${CARGO_AUDIT:-}" ]; then
    root="${TMPDIR:-/tmp}/gatehouse-cargo-audit-$version"
    if [ "$("$root/bin/cargo-audit" audit --version 2>/dev/null || true)" != "cargo-audit-audit $version" ]; then
        echo "audit: building cargo-audit $version from crates.io into $root"
        # --no-default-features drops binary scanning, which this check does not use.
        cargo install cargo-audit --version "=$version" --locked --no-default-features \
            --quiet --root "$root" --target-dir "$root/target"
        rm -rf "$root/target"
    fi
    CARGO_AUDIT="$root/bin/cargo-audit"
fi

python3 "$here/audit.py" check --cargo-audit "$CARGO_AUDIT"
python3 "$here/audit.py" selftest --cargo-audit "$CARGO_AUDIT"
