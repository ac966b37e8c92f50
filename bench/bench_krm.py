"""Benchmark: ``kubeadm-audit krm`` against its floors, as a pipeline runs it.

The plugin runs once per build of every overlay, so two cases matter, each
against a named floor (real subprocesses through the installed plugin
executable, the way kustomize and kpt start it; paired rounds, each timing ours
and the floor back to back; figures are the median of the per-round ratios and
the ratio of the best times):

* one resource (one KubeadmControlPlane, the common case) against a bare
  ``python -c "import yaml, sys; yaml.safe_load(sys.stdin)"`` of the same input, the
  issue's floor (goal: at most 1.3x), and for scale against libyaml's
  ``yaml.load(stdin.read(), CSafeLoader)``;
* 50,000 resources (a realistic mix with kpt's annotations) against a plain
  stdin-to-stdout copy, ``cat`` (goal: at most 15x), and against a bare libyaml
  load + dump in Python for scale; peak RSS against the input's size (goal: at
  most 3x).

Prints each ratio against its goal; ``--strict`` exits 1 when a goal is missed (by
default a miss is reported, so the other benchmarks of ``make bench`` still run).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

GOALS = {"1 resource": 1.3, "50000 resources": 15.0, "50000 resources memory": 3.0}
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
BIG = 50_000

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
BARE_SAFE_LOAD = "import yaml, sys; yaml.safe_load(sys.stdin)"


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


def timed(argv: list, data: bytes) -> tuple:
    """(wall seconds, peak RSS KiB) of one run of ``argv`` with ``data`` on stdin."""
    code = ("import resource, subprocess, sys, time\n"
            "data = sys.stdin.buffer.read()\n"
            "start = time.perf_counter()\n"
            "r = subprocess.run(sys.argv[1:], input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
            "elapsed = time.perf_counter() - start\n"
            "ok = r.returncode == 0 and (r.stdout or sys.argv[1:2] == [sys.executable])\n"
            "sys.stderr.buffer.write(r.stderr[-500:])\n"
            "print(int(bool(ok)), elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            )
    result = subprocess.run([sys.executable, "-c", code, *argv], input=data, capture_output=True, text=False)
    out = result.stdout.decode().split()
    if not out or out[0] != "1":
        sys.exit(f"{argv[0]} failed: {result.stderr.decode()[-500:]}")
    return float(out[1]), int(out[2])


def compare(ours: list, floor: list, data: bytes) -> dict:
    """Paired rounds: median of per-round ratios, ratio of best times, peak RSS of ours."""
    timed(ours, data)   # warm the page cache and .pyc files
    timed(floor, data)
    rounds = [(timed(ours, data), timed(floor, data)) for _ in range(ROUNDS)]
    return {"median": statistics.median(a[0] / b[0] for a, b in rounds),
            "best": min(a[0] for a, _ in rounds) / min(b[0] for _, b in rounds),
            "ours": min(a[0] for a, _ in rounds), "floor": min(b[0] for _, b in rounds),
            "rss": max(a[1] for a, _ in rounds)}


def install_plugin(home: str) -> str:
    subprocess.run([sys.executable, "-m", "kubeadm_audit", "plugin", "install", "--plugin-home", home],
                   check=True, capture_output=True)
    return str(Path(home) / "kubeadm-audit.dev" / "v1alpha1" / "auditconfig" / "AuditConfig")


def main(argv: list) -> int:
    with tempfile.TemporaryDirectory() as home:
        plugin = install_plugin(home)
        big = resource_list([KCP] + [resource(i) for i in range(BIG - 1)]).encode()
        one = resource_list([KCP]).encode()
        single = compare([plugin], [sys.executable, "-c", BARE_SAFE_LOAD], one)
        single_libyaml = compare([plugin], [sys.executable, "-c", BARE_PARSE], one)
        copy = compare([plugin], ["cat"], big)
        libyaml = compare([plugin], [sys.executable, "-c", BARE_ROUND_TRIP], big)
    print(f"bench_krm: kubeadm-audit krm (installed plugin) vs floors; {ROUNDS} paired rounds")
    missed = False

    def line(name: str, result: dict, floor: str, goal: float | None) -> None:
        nonlocal missed
        verdict = ""
        if goal is not None:
            ok = result["median"] <= goal
            missed |= not ok
            verdict = f"; goal <= {goal}x {'ok' if ok else 'MISSED'}"
        print(f"  {name:>15}: {result['median']:5.2f}x median, {result['best']:5.2f}x best "
              f"({result['ours'] * 1000:6.0f} ms vs {result['floor'] * 1000:6.0f} ms {floor}{verdict})")

    line("1 resource", single, 'bare python -c "import yaml, sys; yaml.safe_load(sys.stdin)"',
         GOALS["1 resource"])
    line("1 resource", single_libyaml, "bare libyaml CSafeLoader parse", None)
    line(f"{BIG} resources", copy, "cat (stdin to stdout)", GOALS["50000 resources"])
    line(f"{BIG} resources", libyaml, "bare libyaml load+dump", None)
    rss_ratio = copy["rss"] * 1024 / len(big)
    ok = rss_ratio <= GOALS["50000 resources memory"]
    missed |= not ok
    print(f"  {BIG} resources: peak RSS {copy['rss'] / 1024:.0f} MiB = {rss_ratio:.2f}x the "
          f"{len(big) / 2**20:.0f} MiB input (goal <= {GOALS['50000 resources memory']}x) "
          f"{'ok' if ok else 'MISSED'}; one resource: {single['rss'] / 1024:.0f} MiB")
    return 1 if missed and "--strict" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
