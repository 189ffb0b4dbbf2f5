#!/usr/bin/env python3
"""Checks deploy/k8s and deploy/systemd beyond "the YAML parses".

Usage: .ci/check-deploy.py path/to/gatehouse-binary

- The Kubernetes manifests: one replica with a volume claim template, liveness on /healthz
  and readiness on /readyz at the port gatehouse.toml listens on, non-root with a read-only
  root filesystem, every ${VAR} of gatehouse.toml provided by the Secret, the kustomization
  listing every manifest; and `gatehouse check` passes on the ConfigMap's three files with
  the Secret's values in the environment.
- The systemd unit: `systemd-analyze verify` (with ExecStart pointed at the binary just
  built) reports nothing, when systemd-analyze is installed.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

binary = os.path.abspath(sys.argv[1])


def fail(message):
    sys.exit(f"deploy check: {message}")


docs = []
for path in sorted(glob.glob("deploy/k8s/*.yml")):
    with open(path) as f:
        docs += [(path, d) for d in yaml.safe_load_all(f) if d is not None]
by_kind = {}
for path, doc in docs:
    by_kind.setdefault(doc["kind"], []).append(doc)

kustomization = by_kind["Kustomization"][0]
listed = sorted(kustomization["resources"])
present = sorted(os.path.basename(p) for p in glob.glob("deploy/k8s/*.yml") if not p.endswith("kustomization.yml"))
if listed != present:
    fail(f"kustomization.yml lists {listed}, the directory holds {present}")

(sts,) = by_kind["StatefulSet"]
(configmap,) = by_kind["ConfigMap"]
(secret,) = by_kind["Secret"]
(service,) = by_kind["Service"]
spec = sts["spec"]
if spec["replicas"] != 1:
    fail("sled is single-writer: the StatefulSet must have exactly one replica")
if not spec.get("volumeClaimTemplates"):
    fail("the StatefulSet needs a volumeClaimTemplate for the data directory")
pod = spec["template"]["spec"]
if not pod["securityContext"].get("runAsNonRoot"):
    fail("the pod must run as non-root")
(container,) = pod["containers"]
security = container["securityContext"]
if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation") is not False:
    fail("the container needs a read-only root filesystem and no privilege escalation")
if pod.get("terminationGracePeriodSeconds", 30) < 15:
    fail("terminationGracePeriodSeconds must wait out server.shutdown_grace (5s) and the workers' stop")
if container["livenessProbe"]["httpGet"]["path"] != "/healthz":
    fail("liveness must probe /healthz")
if container["readinessProbe"]["httpGet"]["path"] != "/readyz":
    fail("readiness must probe /readyz")
if [e["secretRef"]["name"] for e in container["envFrom"]] != [secret["metadata"]["name"]]:
    fail("the container must take its environment from the Secret")
config_volume = [v for v in pod["volumes"] if "configMap" in v][0]
if config_volume["configMap"]["name"] != configmap["metadata"]["name"]:
    fail("the config volume must be the ConfigMap")
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
config_dir = mounts[config_volume["name"]]
env = {e["name"]: e["value"] for e in container.get("env", [])}
if env.get("GATEHOUSE_CONFIG") != f"{config_dir}/gatehouse.toml":
    fail("GATEHOUSE_CONFIG must name gatehouse.toml in the mounted ConfigMap")

toml_text = configmap["data"]["gatehouse.toml"]
listen = re.search(r'^listen = "([^"]+)"', toml_text, re.M).group(1)
port = int(listen.rsplit(":", 1)[1])
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
if ports.get("http") != port:
    fail(f"the container port {ports} is not the listen port {port}")
if service["spec"]["ports"][0]["targetPort"] != "http":
    fail("the Service must target the http port")
data_dir = re.search(r'^data_dir = "([^"]+)"', toml_text, re.M).group(1)
if not data_dir.startswith(mounts["data"] + "/"):
    fail(f"data_dir {data_dir} must be a subdirectory of the volume at {mounts['data']}")
needed = set(re.findall(r"\$\{([A-Z0-9_]+)\}", toml_text))
provided = set(secret["stringData"])
if needed - provided:
    fail(f"gatehouse.toml reads {sorted(needed - provided)}, which the Secret does not provide")

with tempfile.TemporaryDirectory() as tmp:
    for name, text in configmap["data"].items():
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)
    check_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    check_env.update(secret["stringData"])
    done = subprocess.run([binary, "--config", os.path.join(tmp, "gatehouse.toml"), "check"], env=check_env)
    if done.returncode != 0:
        fail("gatehouse check fails on the ConfigMap's files")
print("deploy/k8s: ok")

if shutil.which("systemd-analyze"):
    with tempfile.TemporaryDirectory() as tmp:
        with open("deploy/systemd/gatehouse.service") as f:
            unit_text = f.read().replace("/usr/local/bin/gatehouse", binary)
        unit = os.path.join(tmp, "gatehouse.service")
        with open(unit, "w") as f:
            f.write(unit_text)
        done = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
        said = (done.stdout + done.stderr).strip()
        if done.returncode != 0 or said:
            fail(f"systemd-analyze verify deploy/systemd/gatehouse.service:\n{said}")
    print("deploy/systemd: systemd-analyze verify ok")
elif os.environ.get("CI"):
    fail("systemd-analyze is not installed; CI must verify deploy/systemd/gatehouse.service")
else:
    print("deploy/systemd: systemd-analyze not installed, only tests/it/deploy.rs checked it")
