#!/usr/bin/env python3
"""RustSec advisory check of Cargo.lock against the vendored advisory snapshot.

    audit.py check    --cargo-audit BIN   coverage check, then cargo-audit on ../Cargo.lock
    audit.py selftest --cargo-audit BIN   proves the check fails where it must
    audit.py refresh  ADVISORY_DB_CLONE   re-vendors crates/<name>/ for every crate in Cargo.lock

See audit/README.md. Standard library only (Python >= 3.11 for tomllib).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DB = HERE / "advisory-db"
CHECKED = DB / "checked-crates.txt"
PROVENANCE = DB / "PROVENANCE.tsv"
IGNORES = HERE / "ignore.toml"
LOCK = REPO / "Cargo.lock"

# The tree this check exists to keep out (issue 5): serenity's rustls backend pulls
# rustls-webpki 0.102.8 through tokio-tungstenite 0.21. These advisories of the snapshot
# affect that version; the self-test requires cargo-audit to report at least these.
SELFTEST_CRATE, SELFTEST_VERSION = "rustls-webpki", "0.102.8"
SELFTEST_EXPECTED = {"RUSTSEC-2026-0049", "RUSTSEC-2026-0098", "RUSTSEC-2026-0099", "RUSTSEC-2026-0104"}


def fail(msg):
    print(f"audit: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def registry_crates(lock_path):
    """Names of the crates.io packages in a Cargo.lock (path/git packages have no advisories)."""
    with open(lock_path, "rb") as f:
        lock = tomllib.load(f)
    names = set()
    for pkg in lock.get("package", []):
        source = pkg.get("source", "")
        if source.startswith("registry+") or source.startswith("sparse+"):
            names.add(pkg["name"])
        elif source:
            fail(f"{lock_path}: {pkg['name']} comes from {source}; the snapshot covers crates.io only")
    return names


def checked_crates():
    names = set()
    for line in CHECKED.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line)
    return names


def load_ignores():
    """ignore.toml: [[ignore]] entries with id, crate and a non-empty reason."""
    if not IGNORES.exists():
        return []
    with open(IGNORES, "rb") as f:
        data = tomllib.load(f)
    entries = data.get("ignore", [])
    for e in entries:
        unknown = set(e) - {"id", "crate", "reason"}
        if unknown:
            fail(f"{IGNORES.name}: unknown keys {sorted(unknown)} in {e}")
        if not re.fullmatch(r"RUSTSEC-\d{4}-\d{4}", e.get("id", "")):
            fail(f"{IGNORES.name}: bad or missing id in {e}")
        if not e.get("crate"):
            fail(f"{IGNORES.name}: {e['id']} names no crate")
        if len(e.get("reason", "").strip()) < 20:
            fail(f"{IGNORES.name}: {e['id']} has no real reason; every ignore must be explained")
    return entries


def check_coverage(lock_path):
    missing = sorted(registry_crates(lock_path) - checked_crates())
    if missing:
        fail(
            f"{lock_path.name} has {len(missing)} crate(s) whose advisories were never looked at: "
            + ", ".join(missing)
            + ". Run audit/refresh (needs GitHub) or vendor their crates/<name>/ directories "
            "by hand and list them in audit/advisory-db/checked-crates.txt (see audit/README.md)."
        )
    # every vendored advisory must belong to a looked-at crate, in the right place
    for md in sorted((DB / "crates").glob("*/*.md")):
        if md.parent.name not in checked_crates():
            fail(f"{md.relative_to(HERE)} belongs to a crate not listed in checked-crates.txt")


def run_cargo_audit(cargo_audit, lock_path, extra, capture):
    """cargo-audit on the vendored snapshot only: no fetch, no yanked look-up (needs the index),
    run from an empty directory so no user or project audit.toml changes the outcome."""
    with tempfile.TemporaryDirectory(prefix="gatehouse-audit-") as cwd:
        (Path(cwd) / ".cargo").mkdir()
        (Path(cwd) / ".cargo" / "audit.toml").write_text("# empty: all settings come from audit/audit.py\n")
        cmd = [
            cargo_audit, "audit",
            "--db", str(DB), "--no-fetch", "--stale", "--no-yanked",
            "--file", str(lock_path),
        ] + extra
        return subprocess.run(cmd, cwd=cwd, text=True, capture_output=capture, env={**os.environ, "CARGO_TERM_COLOR": "never"})


def findings(cargo_audit, lock_path):
    """Every (id, crate, version, kind) cargo-audit reports, nothing ignored."""
    proc = run_cargo_audit(cargo_audit, lock_path, ["--json"], capture=True)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        fail(f"cargo-audit gave no JSON report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    out = set()
    for v in report.get("vulnerabilities", {}).get("list", []):
        out.add((v["advisory"]["id"], v["package"]["name"], v["package"]["version"], "vulnerability"))
    for kind, items in (report.get("warnings") or {}).items():
        for w in items:
            adv = w.get("advisory") or {}
            out.add((adv.get("id", "-"), w["package"]["name"], w["package"]["version"], kind))
    return report, out


def cmd_check(args):
    cargo_audit = args.cargo_audit
    check_coverage(LOCK)
    ignores = load_ignores()
    n_adv = len(list((DB / "crates").glob("*/*.md")))
    print(f"audit: {len(checked_crates())} crate names looked at, {n_adv} advisories vendored "
          f"({PROVENANCE.relative_to(REPO)}); {len(ignores)} ignore(s) in {IGNORES.relative_to(REPO)}")

    # 1. the verdict: cargo-audit itself, every warning kind denied, only the explained ignores
    extra = ["--deny", "warnings"]
    for e in ignores:
        extra += ["--ignore", e["id"]]
    proc = run_cargo_audit(cargo_audit, LOCK, extra, capture=False)
    if proc.returncode != 0:
        fail("cargo-audit found advisories affecting Cargo.lock (above). Upgrade the crate, or, only if "
             "it does not affect Gatehouse, add an [[ignore]] with the reason to audit/ignore.toml.")

    # 2. no stale ignore: each one must still match something cargo-audit reports
    _, found = findings(cargo_audit, LOCK)
    for e in ignores:
        if not any(f[0] == e["id"] and f[1] == e["crate"] for f in found):
            fail(f"ignore {e['id']} ({e['crate']}) matches nothing in Cargo.lock any more: remove it")
    print("audit: ok")


def cmd_selftest(args):
    cargo_audit = args.cargo_audit
    with tempfile.TemporaryDirectory(prefix="gatehouse-audit-selftest-") as tmp:
        # a) the rustls backend's rustls-webpki must be caught
        bad = Path(tmp) / "Cargo.lock"
        text = LOCK.read_text()
        text += (
            f'\n[[package]]\nname = "{SELFTEST_CRATE}"\nversion = "{SELFTEST_VERSION}"\n'
            'source = "registry+https://github.com/rust-lang/crates.io-index"\n'
        )
        bad.write_text(text)
        proc = run_cargo_audit(cargo_audit, bad, ["--deny", "warnings"], capture=True)
        if proc.returncode == 0:
            fail(f"self-test: cargo-audit passed a lockfile with {SELFTEST_CRATE} {SELFTEST_VERSION}")
        _, found = findings(cargo_audit, bad)
        got = {f[0] for f in found if f[1] == SELFTEST_CRATE and f[2] == SELFTEST_VERSION and f[3] == "vulnerability"}
        if not SELFTEST_EXPECTED <= got:
            fail(f"self-test: {SELFTEST_CRATE} {SELFTEST_VERSION} gave {sorted(got)}, "
                 f"expected at least {sorted(SELFTEST_EXPECTED)}")
        print(f"audit self-test: {SELFTEST_CRATE} {SELFTEST_VERSION} is rejected with {', '.join(sorted(got))}")

        # b) a crate whose advisories were never looked at must stop the check
        unknown = Path(tmp) / "Cargo-unknown.lock"
        unknown.write_text(
            LOCK.read_text()
            + '\n[[package]]\nname = "gatehouse-selftest-unvendored"\nversion = "1.0.0"\n'
            'source = "registry+https://github.com/rust-lang/crates.io-index"\n'
        )
        proc = subprocess.run([sys.executable, __file__, "coverage", str(unknown)], capture_output=True, text=True)
        if proc.returncode == 0 or "gatehouse-selftest-unvendored" not in proc.stderr:
            fail("self-test: the coverage check accepted a crate that was never looked at")
        print("audit self-test: a crate missing from checked-crates.txt stops the check")
    print("audit self-test: ok")


def cmd_coverage(args):
    check_coverage(Path(args.lockfile))


def cmd_refresh(args):
    """Re-vendor from a local clone of https://github.com/rustsec/advisory-db (main branch)."""
    src = Path(args.clone).resolve()
    if not (src / "crates").is_dir():
        fail(f"{src} is not an advisory-db clone (no crates/)")
    commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    date = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%cI"], capture_output=True, text=True, check=True).stdout.strip()
    names = sorted(registry_crates(LOCK) | (checked_crates() if args.keep else set()))
    shutil.rmtree(DB / "crates", ignore_errors=True)
    rows = []
    for name in names:
        d = src / "crates" / name
        if not d.is_dir():
            continue
        for md in sorted(d.glob("RUSTSEC-*.md")):
            if md.name.startswith("RUSTSEC-0000-0000"):
                continue  # drafts are not published advisories
            dest = DB / "crates" / name / md.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(md, dest)
            rows.append((f"crates/{name}/{md.name}", commit))
    header = CHECKED.read_text().splitlines()
    header = [h for h in header if h.startswith("#")]
    CHECKED.write_text("\n".join(header + names) + "\n")
    with open(PROVENANCE, "w") as f:
        f.write(f"# refreshed from a clone of rustsec/advisory-db at {commit} ({date})\n")
        f.write("# path\tadvisory-db commit the file was read at\n")
        for path, c in rows:
            f.write(f"{path}\t{c}\n")
    print(f"audit refresh: {len(rows)} advisories for {len(names)} crate names from {commit} ({date})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, fn in (("check", cmd_check), ("selftest", cmd_selftest)):
        s = sub.add_parser(name)
        s.add_argument("--cargo-audit", required=True)
        s.set_defaults(fn=fn)
    s = sub.add_parser("coverage")
    s.add_argument("lockfile")
    s.set_defaults(fn=cmd_coverage)
    s = sub.add_parser("refresh")
    s.add_argument("clone", help="path of a git clone of rustsec/advisory-db")
    s.add_argument("--keep", action="store_true", help="also keep crate names no longer in Cargo.lock")
    s.set_defaults(fn=cmd_refresh)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
