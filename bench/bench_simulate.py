"""How fast and how big is `policy simulate`, against its floors?

Generates (deterministically, into bench/.data/) a 200,000-event audit log shaped
like a small busy cluster -- lease and node-status heartbeats, kube-proxy and
controller watches, pod and deployment churn, secrets and configmap reads, events,
health probes and discovery, RequestReceived + ResponseComplete pairs and some
RequestResponse bodies, in kube-apiserver's field order -- then measures, in paired
rounds (each round runs every command back to back, so a loaded machine slows all
alike; figures are the median of the per-round ratios and the ratio of the best times):

* simulate (a subprocess, as users run it) against two floors over the same file:
  a bare loop of ``orjson.loads`` and one of ``json.loads`` (every line parsed once).
  Goal: at most 1.3x the orjson loop.
* the gzipped log against ``zcat | wc -l`` (decompression alone).
* peak RSS of simulate against the bare orjson loop's process.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EVENTS = 200_000
SEED = 20260127
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data"
sys.path.insert(0, str(ROOT / "generator"))

NODES = [f"node-{i:02d}" for i in range(12)]
NAMESPACES = ["default", "kube-system", "payments", "web", "monitoring"]
HUMANS = ["alice@example.com", "bob@example.com", "ci-deployer"]


def _request(rng: random.Random) -> tuple:
    """(user, groups, verb, uri, objectRef or None, level, body bytes)."""
    roll = rng.random()
    node = rng.choice(NODES)
    ns = rng.choice(NAMESPACES)
    if roll < 0.25:
        return (f"system:node:{node}", ["system:nodes", "system:authenticated"], "update",
                f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}",
                {"resource": "leases", "namespace": "kube-node-lease", "name": node,
                 "apiGroup": "coordination.k8s.io", "apiVersion": "v1"}, "Metadata", 0)
    if roll < 0.35:
        return (f"system:node:{node}", ["system:nodes", "system:authenticated"], "patch",
                f"/api/v1/nodes/{node}/status",
                {"resource": "nodes", "name": node, "apiVersion": "v1", "subresource": "status"},
                "Request", 600)
    if roll < 0.45:
        return ("system:kube-proxy", ["system:authenticated"], "watch",
                "/apis/discovery.k8s.io/v1/endpointslices?watch=true",
                {"resource": "endpointslices", "apiGroup": "discovery.k8s.io", "apiVersion": "v1"},
                "Metadata", 0)
    if roll < 0.55:
        name = f"web-{rng.randrange(500)}"
        return ("system:serviceaccount:kube-system:replicaset-controller",
                ["system:serviceaccounts", "system:authenticated"], rng.choice(["create", "delete"]),
                f"/api/v1/namespaces/{ns}/pods",
                {"resource": "pods", "namespace": ns, "name": name, "apiVersion": "v1"},
                "RequestResponse", 1200)
    if roll < 0.63:
        return (rng.choice(HUMANS), ["system:authenticated"], rng.choice(["get", "list"]),
                f"/api/v1/namespaces/{ns}/pods",
                {"resource": "pods", "namespace": ns, "apiVersion": "v1"}, "Metadata", 0)
    if roll < 0.68:
        return (rng.choice(HUMANS), ["system:authenticated"], "patch",
                f"/apis/apps/v1/namespaces/{ns}/deployments/api",
                {"resource": "deployments", "namespace": ns, "name": "api", "apiGroup": "apps",
                 "apiVersion": "v1"}, "RequestResponse", 1500)
    if roll < 0.74:
        return ("system:serviceaccount:monitoring:agent", ["system:serviceaccounts"], "get",
                f"/api/v1/namespaces/{ns}/secrets/token-{rng.randrange(40)}",
                {"resource": "secrets", "namespace": ns, "name": f"token-{rng.randrange(40)}",
                 "apiVersion": "v1"}, "Metadata", 0)
    if roll < 0.80:
        return ("system:kube-controller-manager", ["system:authenticated"], "get",
                "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
                {"resource": "configmaps", "namespace": "kube-system",
                 "name": "extension-apiserver-authentication", "apiVersion": "v1"}, "Metadata", 0)
    if roll < 0.88:
        return ("system:kube-scheduler", ["system:authenticated"], "create",
                f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
                {"resource": "events", "namespace": ns, "apiGroup": "events.k8s.io",
                 "apiVersion": "v1"}, "Metadata", 0)
    if roll < 0.94:
        return ("system:anonymous" if rng.random() < 0.5 else "kubelet",
                ["system:unauthenticated"], "get", rng.choice(["/healthz", "/readyz", "/livez"]),
                None, "Metadata", 0)
    if roll < 0.97:
        return (rng.choice(HUMANS), ["system:authenticated"], "get",
                rng.choice(["/api", "/apis", "/api/v1", "/openapi/v2?timeout=32s"]), None, "Metadata", 0)
    return (rng.choice(HUMANS), ["system:authenticated"], "create",
            f"/api/v1/namespaces/{ns}/pods/web-1/exec?command=sh&stdin=true",
            {"resource": "pods", "namespace": ns, "name": "web-1", "subresource": "exec",
             "apiVersion": "v1"}, "Metadata", 0)


def _object(size: int) -> dict:
    """A nested, Kubernetes-shaped body of roughly ``size`` bytes."""
    containers = []
    while len(json.dumps(containers)) < size:
        n = len(containers)
        containers.append({"name": f"c{n}", "image": f"registry.example.com/app:{n}.2.3",
                           "env": [{"name": "MODE", "value": "production"},
                                   {"name": "PORT", "value": str(8000 + n)}],
                           "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                           "ports": [{"containerPort": 8000 + n, "protocol": "TCP"}]})
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "frontend"}},
            "spec": {"containers": containers}}


def generate(path: Path, events: int = EVENTS) -> None:
    rng = random.Random(SEED)
    written = 0
    second = 0.0
    with open(path, "w", encoding="utf-8") as out:
        while written < events:
            user, groups, verb, uri, ref, level, body = _request(rng)
            second += rng.expovariate(400.0)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1767225600 + int(second)))
            stamp += f".{int((second % 1) * 1e6):06d}Z"
            audit_id = f"{rng.getrandbits(128):032x}"
            stages = ["RequestReceived", "ResponseComplete"]
            if verb == "watch" or (ref or {}).get("subresource") == "exec":
                stages.insert(1, "ResponseStarted")
            for stage in stages:
                # kube-apiserver's field order (the Go struct's), as its log backend writes
                event = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level,
                         "auditID": audit_id, "stage": stage, "requestURI": uri, "verb": verb,
                         "user": {"username": user, "groups": groups},
                         "sourceIPs": [f"10.0.{rng.randrange(4)}.{rng.randrange(250)}"],
                         "userAgent": "kubelet/v1.34.2 (linux/amd64) kubernetes/abcdef0"}
                if ref is not None:
                    event["objectRef"] = ref
                if stage != "RequestReceived":
                    event["responseStatus"] = {"metadata": {}, "code": 200}
                if body and level in ("Request", "RequestResponse"):
                    event["requestObject"] = _object(body)
                    if level == "RequestResponse" and stage == "ResponseComplete":
                        event["responseObject"] = _object(body)
                event["requestReceivedTimestamp"] = stamp
                event["stageTimestamp"] = stamp
                if stage != "RequestReceived":
                    event["annotations"] = {"authorization.k8s.io/decision": "allow",
                                            "authorization.k8s.io/reason": ""}
                out.write(json.dumps(event, separators=(",", ":")) + "\n")
                written += 1
                if written >= events:
                    break


FLOORS = {
    "orjson": "import orjson, sys\nfor line in open(sys.argv[1], 'rb'): orjson.loads(line)\n",
    "json": "import json, sys\nfor line in open(sys.argv[1], 'rb'): json.loads(line)\n",
}
GOAL = 1.3  # x the orjson loop
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def timed(argv: list, shell: bool = False) -> tuple:
    """(wall seconds, peak RSS KiB) of one child process."""
    code = ("import resource, subprocess, sys, time\n"
            "start = time.perf_counter()\n"
            "r = subprocess.run(sys.argv[2:] if sys.argv[1] == 'argv' else sys.argv[2], "
            "shell=sys.argv[1] == 'shell', stdout=subprocess.DEVNULL)\n"
            "elapsed = time.perf_counter() - start\n"
            "print(r.returncode, elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    args = ["shell", argv] if shell else ["argv", *argv]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True).stdout.split()
    if out[0] != "0":
        sys.exit(f"failed: {argv}")
    return float(out[1]), int(out[2])


def paired(commands: dict) -> dict:
    """name -> list of (seconds, maxrss KiB), one per round, the commands interleaved."""
    results: dict = {name: [] for name in commands}
    for argv, shell in commands.values():  # warm the page cache and .pyc files
        timed(argv, shell)
    for _ in range(ROUNDS):
        for name, (argv, shell) in commands.items():
            results[name].append(timed(argv, shell))
    return results


def ratio(results: dict, ours: str, floor: str) -> str:
    rounds = list(zip(results[ours], results[floor]))
    median = statistics.median(a[0] / b[0] for a, b in rounds)
    best = min(a[0] for a, _ in rounds) / min(b[0] for _, b in rounds)
    return f"{median:4.2f}x median, {best:4.2f}x best ({min(a[0] for a, _ in rounds):5.2f} s vs " \
           f"{min(b[0] for _, b in rounds):5.2f} s)"


def main() -> int:
    from kubeadm_audit import presets, yamlio

    DATA.mkdir(parents=True, exist_ok=True)
    log = DATA / f"audit-{EVENTS}-{SEED}-v2.log"
    if not log.exists():
        generate(log)
    packed = log.with_suffix(".log.gz")
    if not packed.exists():
        subprocess.run(f"gzip -c {log} > {packed}", shell=True, check=True)
    size_mb = log.stat().st_size / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        recommended = Path(tmp) / "recommended.yaml"
        recommended.write_text(yamlio.dump(dict(presets.get("recommended").policy)))
        metadata = Path(tmp) / "metadata.yaml"
        metadata.write_text(yamlio.dump(dict(presets.get("metadata").policy)))
        simulate = [sys.executable, "-m", "kubeadm_audit", "policy", "simulate",
                    "--policy", str(recommended)]
        results = paired({
            "orjson loop": ([sys.executable, "-c", FLOORS["orjson"], str(log)], False),
            "json loop": ([sys.executable, "-c", FLOORS["json"], str(log)], False),
            "simulate": ([*simulate, str(log), "-o", "json"], False),
            "simulate --compare": ([*simulate, "--compare", str(metadata), str(log), "-o", "json"],
                                   False),
            "zcat | wc -l": (f"zcat {packed} | wc -l", True),
            "simulate .gz": ([*simulate, str(packed), "-o", "json"], False),
        })
    print(f"bench_simulate: {EVENTS} events, {size_mb:.0f} MB ({log}); {ROUNDS} paired rounds")
    for ours in ("simulate", "simulate --compare"):
        for floor in ("orjson loop", "json loop"):
            print(f"  {ours:<19} vs {floor:<12} {ratio(results, ours, floor)}")
    print(f"  {'simulate .gz':<19} vs {'zcat | wc -l':<12} {ratio(results, 'simulate .gz', 'zcat | wc -l')}")
    print(f"  {'simulate .gz':<19} vs {'orjson loop':<12} {ratio(results, 'simulate .gz', 'orjson loop')}")
    median = statistics.median(a[0] / b[0] for a, b in zip(results["simulate"], results["orjson loop"]))
    print(f"  goal: simulate <= {GOAL}x the orjson loop: {'ok' if median <= GOAL else 'MISSED'}")
    floor_rss = min(r for _, r in results["orjson loop"])
    for name in ("simulate", "simulate --compare", "simulate .gz"):
        rss = max(r for _, r in results[name])
        print(f"  peak RSS {name:<19} {rss / 1024:6.1f} MiB = {rss / floor_rss:4.2f}x the orjson "
              f"loop's {floor_rss / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
