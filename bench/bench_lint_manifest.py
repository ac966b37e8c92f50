"""Benchmark: ``policy lint`` on a worst-case policy and ``manifest check`` on a large manifest.

Both against a named floor, in paired rounds (figures: median of the per-round
ratios, ratio of the best times), as subprocesses the way users run them:

* lint of 200 rules x 200 patterns, each rule sharing all but its last pattern with
  every earlier one (the pairwise worst case: 52 s before the indexes), against a
  bare ``python -c "import yaml; yaml.load(file, CSafeLoader)"`` of the same file.
  Goal: under a second.
* manifest check of a 10 MB kube-apiserver manifest (a 9 MB annotation and 20,000
  env entries) against the same bare libyaml load of the file. Goal: seconds at most.
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

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
BARE_LOAD = "import sys, yaml; yaml.load(open(sys.argv[1]), Loader=yaml.CSafeLoader)"


def timed(argv: list) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        sys.exit(f"{argv} failed: {result.stderr.decode()[-500:]}")
    return elapsed


def compare(ours: list, floor: list) -> str:
    timed(ours), timed(floor)
    rounds = [(timed(ours), timed(floor)) for _ in range(ROUNDS)]
    median = statistics.median(a / b for a, b in rounds)
    best_ours, best_floor = min(a for a, _ in rounds), min(b for _, b in rounds)
    return (f"{median:5.2f}x median, {best_ours / best_floor:5.2f}x best ({best_ours:5.2f} s vs "
            f"{best_floor:5.2f} s)")


def main() -> int:
    ka = [sys.executable, "-m", "kubeadm_audit"]
    with tempfile.TemporaryDirectory() as tmp:
        shared = [f"res{j}" for j in range(199)]
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(yaml.safe_dump({
            "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata", "resources": [{"group": "", "resources": [*shared, f"only{i}"]}]}
                      for i in range(200)] + [{"level": "Metadata"}]}))
        manifest = Path(tmp) / "kube-apiserver.yaml"
        pod = yaml.safe_load((ROOT / "tests/fixtures/manifests/kube-apiserver-v1.34.yaml").read_text())
        pod["metadata"].setdefault("annotations", {})["example.com/blob"] = "x" * 9_000_000
        pod["spec"]["containers"][0]["env"] = [{"name": f"VAR_{i}", "value": "v" * 40} for i in range(20_000)]
        manifest.write_text(yaml.dump(pod, Dumper=yaml.CSafeDumper, width=1 << 30))
        lint = compare([*ka, "policy", "lint", str(policy)], [sys.executable, "-c", BARE_LOAD, str(policy)])
        check = compare([*ka, "manifest", "check", str(manifest), "--preset", "recommended"],
                        [sys.executable, "-c", BARE_LOAD, str(manifest)])
        size = manifest.stat().st_size / 1e6
    print(f"bench_lint_manifest: {ROUNDS} paired rounds")
    print(f"  policy lint, 200 rules x 200 patterns   vs bare libyaml load: {lint}")
    print(f"  manifest check, {size:.0f} MB manifest        vs bare libyaml load: {check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
