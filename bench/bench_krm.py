"""Benchmark: ``kubeadm-audit krm`` against bare libyaml, as a pipeline runs it.

The plugin runs once per build of every overlay, so two figures matter:

* a 5,000-resource ResourceList through the function, against a bare libyaml
  load + dump of the same list in a fresh Python, garbage collector off so the
  floor is as low as it gets (goal: at most 1.5x);
* a one-resource call (one KubeadmControlPlane, the common case), against a bare
  ``python -c "import yaml"`` parse of the same input (goal: at most 2x).

Both run as real subprocesses through the installed plugin executable, the way
kustomize and kpt start it. Prints each ratio against its goal; ``--strict`` exits 1
when a goal is missed (by default a miss is reported, so the other benchmarks of
``make bench`` still run).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

GOALS = {"5000 resources": 1.5, "1 resource": 2.0}
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))

KCP = {
    "apiVersion": "controlplane.cluster.x-k8s.io/v1beta1", "kind": "KubeadmControlPlane",
    "metadata": {"name": "cp", "namespace": "fleet",
                 "annotations": {"internal.config.kubernetes.io/path": "cp.yaml",
                                 "internal.config.kubernetes.io/id": "0"}},
    "spec": {"replicas": 3, "version": "v1.31.2",
             "machineTemplate": {"infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                                                       "kind": "DockerMachineTemplate", "name": "cp"}},
             "kubeadmConfigSpec": {"clusterConfiguration": {"apiServer": {"extraArgs": {"profiling": "false"}}}}},
}
CONFIG = {"apiVersion": "kubeadm-audit.dev/v1alpha1", "kind": "AuditConfig", "metadata": {"name": "audit"},
          "spec": {"preset": "recommended",
                   "log": {"path": "/var/log/kubernetes/audit/audit.log", "maxAge": 30, "maxBackup": 10,
                           "maxSize": 100}}}

# The floor at its best: with the cyclic GC on, PyYAML spends most of a big load collecting.
BARE_ROUND_TRIP = ("import gc, sys, yaml; gc.disable(); d = yaml.load(sys.stdin.read(), Loader=yaml.CSafeLoader); "
                   "sys.stdout.write(yaml.dump(d, Dumper=yaml.CSafeDumper, sort_keys=False))")
BARE_PARSE = "import sys, yaml; yaml.load(sys.stdin.read(), Loader=yaml.CSafeLoader)"


def resource(index: int) -> dict:
    """A realistic mix: Deployments, Services and ConfigMaps, with kpt's annotations."""
    meta = {"name": f"app-{index}", "namespace": f"team-{index % 50}",
            "labels": {"app.kubernetes.io/name": f"app-{index}", "tier": "backend"},
            "annotations": {"internal.config.kubernetes.io/path": f"apps/app-{index}.yaml",
                            "internal.config.kubernetes.io/index": "0",
                            "internal.config.kubernetes.io/id": str(index + 1)}}
    kind = index % 3
    if kind == 0:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": meta["name"]}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": meta["name"]}}, "spec": {
                "containers": [{"name": "app", "image": f"registry.example.com/app:{index}.0",
                                "ports": [{"containerPort": 8080}],
                                "env": [{"name": "MODE", "value": "0600"}, {"name": "ENABLED", "value": "yes"}],
                                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}}}
    if kind == 1:
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {
            "selector": {"app.kubernetes.io/name": meta["name"]}, "ports": [{"port": 80, "targetPort": 8080}]}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {"settings.yaml": "log: info\nworkers: 4\n", "flag": "true"}}


def resource_list(items: list) -> str:
    return yaml.dump({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items,
                      "functionConfig": CONFIG}, Dumper=yaml.CSafeDumper, sort_keys=False)


def timed(argv: list, data: bytes) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, input=data, capture_output=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or (argv[-1] != BARE_PARSE and not result.stdout):
        sys.exit(f"{argv[0]} failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return elapsed


def compare(ours: list, floor: list, data: bytes) -> tuple:
    """Median of per-round ratios, each round timing both back to back (robust to a loaded machine)."""
    timed(ours, data)   # warm the page cache and .pyc files
    timed(floor, data)
    rounds = [(timed(ours, data), timed(floor, data)) for _ in range(ROUNDS)]
    ratio = statistics.median(a / b for a, b in rounds)
    return ratio, min(a for a, _ in rounds), min(b for _, b in rounds)


def install_plugin(home: str) -> str:
    subprocess.run([sys.executable, "-m", "kubeadm_audit", "plugin", "install", "--plugin-home", home],
                   check=True, capture_output=True)
    return str(Path(home) / "kubeadm-audit.dev" / "v1alpha1" / "auditconfig" / "AuditConfig")


def main(argv: list) -> int:
    with tempfile.TemporaryDirectory() as home:
        plugin = install_plugin(home)
        big = resource_list([KCP] + [resource(i) for i in range(4999)]).encode()
        one = resource_list([KCP]).encode()
        cases = {
            "5000 resources": compare([plugin], [sys.executable, "-c", BARE_ROUND_TRIP], big)
            + ("bare libyaml load+dump",),
            "1 resource": compare([plugin], [sys.executable, "-c", BARE_PARSE], one)
            + ('bare python -c "import yaml" parse',),
        }
    missed = False
    print(f"bench_krm: kubeadm-audit krm (installed plugin) vs floors; median ratio of {ROUNDS} paired runs, "
          "best times")
    for name, (ratio, ours, floor, what) in cases.items():
        ok = ratio <= GOALS[name]
        missed |= not ok
        print(f"  {name:>15}: {ratio:4.2f}x  ({ours * 1000:6.0f} ms vs {floor * 1000:6.0f} ms {what}; "
              f"goal <= {GOALS[name]}x) {'ok' if ok else 'MISSED'}")
    return 1 if missed and "--strict" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
