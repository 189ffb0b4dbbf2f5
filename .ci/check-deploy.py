#!/usr/bin/env python3
"""Checks deploy/k8s and deploy/systemd beyond "the YAML parses".

Usage: .ci/check-deploy.py path/to/gatehouse-binary

- The Kubernetes manifests: one replica with a volume claim template, liveness on /healthz
  and readiness on /readyz at the port gatehouse.toml listens on, non-root with a read-only
  root filesystem, every ${VAR} of gatehouse.toml provided by the Secret, the kustomization
  listing every manifest; and `gatehouse check` passes on the ConfigMap's three files with
  the Secret's values in the environment.
- deploy/k8s/postgres (several replicas on PostgreSQL): a Deployment of three replicas without
  volumes and a PodDisruptionBudget that keeps two of them, selecting the Deployment's pods;
  the same probes, non-root and Secret checks; `[store] backend = "postgres"`; the
  kustomization listing every manifest; and `gatehouse check` on its ConfigMap's files.
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


def load(directory):
    """The manifests of `directory` by kind, after checking its kustomization lists them all."""
    docs = []
    for path in sorted(glob.glob(f"{directory}/*.yml")):
        with open(path) as f:
            docs += [(path, d) for d in yaml.safe_load_all(f) if d is not None]
    by_kind = {}
    for path, doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    kustomization = by_kind["Kustomization"][0]
    listed = sorted(kustomization["resources"])
    present = sorted(os.path.basename(p) for p in glob.glob(f"{directory}/*.yml") if not p.endswith("kustomization.yml"))
    if listed != present:
        fail(f"{directory}/kustomization.yml lists {listed}, the directory holds {present}")
    return by_kind


def check_pod(directory, workload, configmap, secret, service):
    """What every Gatehouse pod needs; the mounts and gatehouse.toml, for more checks."""
    pod = workload["spec"]["template"]["spec"]
    if not pod["securityContext"].get("runAsNonRoot"):
        fail(f"{directory}: the pod must run as non-root")
    (container,) = pod["containers"]
    security = container["securityContext"]
    if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation") is not False:
        fail(f"{directory}: the container needs a read-only root filesystem and no privilege escalation")
    if pod.get("terminationGracePeriodSeconds", 30) < 15:
        fail(f"{directory}: terminationGracePeriodSeconds must wait out server.shutdown_grace (5s) and the workers' stop")
    if container["livenessProbe"]["httpGet"]["path"] != "/healthz":
        fail(f"{directory}: liveness must probe /healthz")
    if container["readinessProbe"]["httpGet"]["path"] != "/readyz":
        fail(f"{directory}: readiness must probe /readyz")
    if [e["secretRef"]["name"] for e in container["envFrom"]] != [secret["metadata"]["name"]]:
        fail(f"{directory}: the container must take its environment from the Secret")
    config_volume = [v for v in pod["volumes"] if "configMap" in v][0]
    if config_volume["configMap"]["name"] != configmap["metadata"]["name"]:
        fail(f"{directory}: the config volume must be the ConfigMap")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config_dir = mounts[config_volume["name"]]
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    if env.get("GATEHOUSE_CONFIG") != f"{config_dir}/gatehouse.toml":
        fail(f"{directory}: GATEHOUSE_CONFIG must name gatehouse.toml in the mounted ConfigMap")
    toml_text = configmap["data"]["gatehouse.toml"]
    listen = re.search(r'^listen = "([^"]+)"', toml_text, re.M).group(1)
    port = int(listen.rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if ports.get("http") != port:
        fail(f"{directory}: the container port {ports} is not the listen port {port}")
    if service["spec"]["ports"][0]["targetPort"] != "http":
        fail(f"{directory}: the Service must target the http port")
    needed = set(re.findall(r"\$\{([A-Z0-9_]+)\}", toml_text))
    provided = set(secret["stringData"])
    if needed - provided:
        fail(f"{directory}: gatehouse.toml reads {sorted(needed - provided)}, which the Secret does not provide")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in configmap["data"].items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        check_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
        check_env.update(secret["stringData"])
        done = subprocess.run([binary, "--config", os.path.join(tmp, "gatehouse.toml"), "check"], env=check_env)
        if done.returncode != 0:
            fail(f"{directory}: gatehouse check fails on the ConfigMap's files")
    return mounts, toml_text


by_kind = load("deploy/k8s")
(sts,) = by_kind["StatefulSet"]
(configmap,) = by_kind["ConfigMap"]
(secret,) = by_kind["Secret"]
(service,) = by_kind["Service"]
spec = sts["spec"]
if spec["replicas"] != 1:
    fail("sled is single-writer: the StatefulSet must have exactly one replica")
if not spec.get("volumeClaimTemplates"):
    fail("the StatefulSet needs a volumeClaimTemplate for the data directory")
mounts, toml_text = check_pod("deploy/k8s", sts, configmap, secret, service)
data_dir = re.search(r'^data_dir = "([^"]+)"', toml_text, re.M).group(1)
if not data_dir.startswith(mounts["data"] + "/"):
    fail(f"data_dir {data_dir} must be a subdirectory of the volume at {mounts['data']}")
print("deploy/k8s: ok")

by_kind = load("deploy/k8s/postgres")
(deployment,) = by_kind["Deployment"]
(pdb,) = by_kind["PodDisruptionBudget"]
(configmap,) = by_kind["ConfigMap"]
(secret,) = by_kind["Secret"]
(service,) = by_kind["Service"]
if deployment["spec"]["replicas"] != 3:
    fail("deploy/k8s/postgres: the Deployment must run three replicas")
if deployment["spec"].get("volumeClaimTemplates") or any("persistentVolumeClaim" in v for v in deployment["spec"]["template"]["spec"]["volumes"]):
    fail("deploy/k8s/postgres: replicas on PostgreSQL keep no volume")
labels = deployment["spec"]["template"]["metadata"]["labels"]
if any(labels.get(k) != v for k, v in pdb["spec"]["selector"]["matchLabels"].items()):
    fail("deploy/k8s/postgres: the PodDisruptionBudget must select the Deployment's pods")
if pdb["spec"].get("minAvailable") != 2:
    fail("deploy/k8s/postgres: the PodDisruptionBudget must keep two replicas")
mounts, toml_text = check_pod("deploy/k8s/postgres", deployment, configmap, secret, service)
if not re.search(r'^backend = "postgres"', toml_text, re.M):
    fail("deploy/k8s/postgres: gatehouse.toml must set [store] backend = \"postgres\"")
print("deploy/k8s/postgres: ok")

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
