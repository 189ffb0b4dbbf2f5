#!/usr/bin/env python3
"""Runs the commands of README.md, so that the README never shows one that does not work.

Usage: .ci/readme-commands.py path/to/gatehouse-binary

Every ```sh block of the README is preceded by an HTML comment saying how CI treats it:

  <!-- ci: serving -->      run each command while `gatehouse serve` runs
  <!-- ci: stopped -->      stop the server first, then run each command
  <!-- ci: start -->        the block is the command that starts the server (run in the
                            background; later `serving` blocks restart it the same way;
                            before any, the quick start's `gatehouse serve`)
  <!-- ci: needs-docker --> run only where a Docker daemon answers (else say so, loudly)
  <!-- ci: elsewhere -->    run by other CI steps (the quick start: `cargo test` is CI's own
                            test command, and the serve command is the `start` block's)

A block without a tag fails this check. Commands run with bash in a scratch directory holding
a copy of deploy/examples, with `gatehouse` on PATH meaning "this binary with
--config <copy>/gatehouse.toml" (what the README's alias does from a clone), and with the
server on a free port instead of 8080 (the port in commands is rewritten to match).
"""

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
with open("README.md") as f:
    readme = f.read()

blocks = []
for match in re.finditer(r"(?:<!-- ci: ([a-z-]+) -->\n+)?```sh\n(.*?)```", readme, re.S):
    tag, body = match.group(1), match.group(2)
    line = readme[: match.start()].count("\n") + 1
    if tag is None:
        sys.exit(f"README.md:{line}: a ```sh block without a <!-- ci: … --> tag")
    commands, current = [], ""
    for text in body.splitlines():
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        # Trailing comments explain a command; they are not part of it.
        text = re.sub(r"\s+#\s.*$", "", text)
        if text.endswith("\\"):
            current += text[:-1] + " "
            continue
        commands.append(current + text)
        current = ""
    blocks.append((line, tag, commands))

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
sock.close()

scratch = tempfile.mkdtemp(prefix="gatehouse-readme-")
for name in ("gatehouse.toml", "policy.toml", "directory.toml"):
    shutil.copy(os.path.join(root, "deploy/examples", name), scratch)
bindir = os.path.join(scratch, "bin")
os.mkdir(bindir)
with open(os.path.join(bindir, "gatehouse"), "w") as f:
    f.write(f'#!/bin/sh\nexec "{binary}" --config "{scratch}/gatehouse.toml" "$@"\n')
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
        sys.exit(f"README.md:{line}: `{command}` exited {done.returncode}")


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
            sys.exit(f"README.md:{line}: `{start_command}` exited {server.returncode}")
        time.sleep(0.05)
    stop()
    sys.exit(f"README.md:{line}: `{start_command}` did not come up")


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
            sys.exit(f"README.md:{line}: a `start` block holds exactly one command")
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
                    sys.exit(f"README.md:{line}: `{command}` exited {done.returncode}")
        else:
            skipped.append(line)
    else:
        sys.exit(f"README.md:{line}: unknown tag `{tag}`")
stop()
shutil.rmtree(scratch)
for line in skipped:
    print(f"README.md:{line}: NOT RUN: no Docker daemon answers here", flush=True)
print(f"README commands: ok ({sum(len(c) for _, t, c in blocks if t in ('serving', 'stopped', 'start'))} run)")
