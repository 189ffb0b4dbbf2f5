#!/usr/bin/env python3
"""Runs the commands of README.md and of the pages under docs/, so that the documentation never
shows one that does not work.

Usage: .ci/readme-commands.py path/to/gatehouse-binary

The pages are read in the order of PAGES (the README's walkthrough first, then the pages that
continue it), against one server and one scratch copy of the examples. Every ```sh block of a
page is preceded by an HTML comment saying how CI treats it:

  <!-- ci: serving -->      run each command while `gatehouse serve` runs
  <!-- ci: stopped -->      stop the server first, then run each command
  <!-- ci: start -->        the block is the command that starts the server (run in the
                            background; later `serving` blocks restart it the same way;
                            before any, the quick start's `gatehouse serve`)
  <!-- ci: needs-docker --> run only where a Docker daemon answers (else say so, loudly)
  <!-- ci: elsewhere -->    run by other CI steps (the quick start: `cargo test` is CI's own
                            test command, and the serve command is the `start` block's)

A block without a tag fails this check, and so does a page under docs/ that is missing from
PAGES. Commands run with bash in a scratch directory laid out like a clone (deploy/examples/
holds a copy of the examples), with `gatehouse` on PATH meaning "this binary with
--config deploy/examples/gatehouse.toml" (what the README's alias does from a clone), and with
the server on a free port instead of 8080 (the port in commands is rewritten to match).
"""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

binary = os.path.abspath(sys.argv[1])
root = os.getcwd()

# The walkthrough first; operations.md continues it (logs, backup and restore).
PAGES = [
    "README.md",
    "docs/operations.md",
    "docs/slack.md",
    "docs/discord.md",
    "docs/portal.md",
    "docs/configuration.md",
    "docs/policy-cookbook.md",
    "docs/directory.md",
    "docs/connectors/README.md",
    "docs/connectors/postgres.md",
    "docs/connectors/ldap.md",
    "docs/connectors/aws-sso.md",
    "docs/connectors/github.md",
    "docs/connectors/google.md",
    "docs/connectors/okta.md",
    "docs/connectors/entra.md",
    "docs/security.md",
    "docs/performance.md",
    "docs/architecture.md",
    "docs/contributing.md",
]
unlisted = sorted(set(glob.glob("docs/**/*.md", recursive=True)) - set(PAGES))
if unlisted:
    sys.exit(f"{', '.join(unlisted)}: add to PAGES in .ci/readme-commands.py, in reading order")

blocks = []
for page in PAGES:
    with open(page) as f:
        text = f.read()
    for match in re.finditer(r"(?:<!-- ci: ([a-z-]+) -->\n+)?```sh\n(.*?)```", text, re.S):
        tag, body = match.group(1), match.group(2)
        line = f"{page}:{text[: match.start()].count(chr(10)) + 1}"
        if tag is None:
            sys.exit(f"{line}: a ```sh block without a <!-- ci: … --> tag")
        commands, current = [], ""
        for row in body.splitlines():
            row = row.strip()
            if not row or row.startswith("#"):
                continue
            # Trailing comments explain a command; they are not part of it.
            row = re.sub(r"\s+#\s.*$", "", row)
            if row.endswith("\\"):
                current += row[:-1] + " "
                continue
            commands.append(current + row)
            current = ""
        blocks.append((line, tag, commands))

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
sock.close()

scratch = tempfile.mkdtemp(prefix="gatehouse-readme-")
examples = os.path.join(scratch, "deploy", "examples")
os.makedirs(examples)
for name in ("gatehouse.toml", "policy.toml", "directory.toml"):
    shutil.copy(os.path.join(root, "deploy/examples", name), examples)
bindir = os.path.join(scratch, "bin")
os.mkdir(bindir)
with open(os.path.join(bindir, "gatehouse"), "w") as f:
    f.write(f'#!/bin/sh\nexec "{binary}" --config "{examples}/gatehouse.toml" "$@"\n')
os.chmod(os.path.join(bindir, "gatehouse"), 0o755)
env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
env["PATH"] = bindir + os.pathsep + env["PATH"]
env["GATEHOUSE_SERVER__LISTEN"] = f"127.0.0.1:{port}"

server = None
# Until a `start` block says otherwise, the quick start's: `gatehouse serve` on the examples.
start_command = "gatehouse serve"


def run(command, line):
    command = command.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("localhost:8080", f"127.0.0.1:{port}")
    print(f"$ {command}", flush=True)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=scratch, env=env)
    if done.returncode != 0:
        stop()
        sys.exit(f"{line}: `{command}` exited {done.returncode}")


def start(line):
    global server
    if server is not None:
        return
    print(f"$ {start_command} &", flush=True)
    server = subprocess.Popen(["bash", "-c", f"exec {start_command}"], cwd=scratch, env=env)
    for _ in range(200):
        ok = subprocess.run(["gatehouse", "healthcheck"], cwd=scratch, env=env, capture_output=True)
        if ok.returncode == 0:
            return
        if server.poll() is not None:
            sys.exit(f"{line}: `{start_command}` exited {server.returncode}")
        time.sleep(0.05)
    stop()
    sys.exit(f"{line}: `{start_command}` did not come up")


def stop():
    global server
    if server is None:
        return
    server.send_signal(signal.SIGTERM)
    if server.wait(timeout=30) != 0:
        sys.exit(f"the server exited {server.returncode} on SIGTERM")
    server = None


skipped = []
for line, tag, commands in blocks:
    if tag == "elsewhere":
        continue
    if tag == "start":
        if len(commands) != 1:
            sys.exit(f"{line}: a `start` block holds exactly one command")
        stop()
        start_command = commands[0]
        start(line)
    elif tag == "serving":
        start(line)
        for command in commands:
            if command.startswith("alias gatehouse="):
                continue  # `gatehouse` on PATH stands for it
            run(command, line)
    elif tag == "stopped":
        stop()
        for command in commands:
            run(command, line)
    elif tag == "needs-docker":
        docker = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
        if docker:
            for command in commands:
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=root)
                if done.returncode != 0:
                    stop()
                    sys.exit(f"{line}: `{command}` exited {done.returncode}")
        else:
            skipped.append(line)
    else:
        sys.exit(f"{line}: unknown tag `{tag}`")
stop()
shutil.rmtree(scratch)
for line in skipped:
    print(f"{line}: NOT RUN: no Docker daemon answers here", flush=True)
print(f"documented commands: ok ({sum(len(c) for _, t, c in blocks if t in ('serving', 'stopped', 'start'))} run)")
