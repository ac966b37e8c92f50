"""Generated bundles on a test "node": the CLI, installing a bundle, its flags, explain in bulk."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import realk8s

#: The kube-apiserver (and kubectl) release the tests run, also the bundles' target version.
KUBERNETES = realk8s.pinned("KUBERNETES_V1BETA4")


def kubeadm_audit(*args: str, input: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real CLI, as a subprocess of this interpreter."""
    return subprocess.run([sys.executable, "-m", "kubeadm_audit", *map(str, args)], input=input, cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})


def install(bundle: Path) -> None:
    """What `make install` does: each install.list line is MODE SOURCE DESTINATION (here all
    under the test's temp dir, as the node paths were mapped there)."""
    for line in (bundle / "install.list").read_text().splitlines():
        mode, source, dest = line.split()
        assert Path(dest).is_relative_to(bundle.parent), f"{dest} is not mapped into the test's node"
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle / source, dest)
        os.chmod(dest, int(mode, 8))


def extra_args_flags(kubeadm_config: Path) -> list[str]:
    """The --audit-* flags the kubeadm config's ClusterConfiguration hands kube-apiserver."""
    import yaml

    for doc in yaml.safe_load_all(kubeadm_config.read_text()):
        if doc and doc.get("kind") == "ClusterConfiguration":
            args = doc["apiServer"]["extraArgs"]
            pairs = [(a["name"], a["value"]) for a in args] if isinstance(args, list) else list(args.items())
            return [f"--{name}={value}" for name, value in pairs]
    raise AssertionError(f"no ClusterConfiguration in {kubeadm_config}")


def explain_all(policy: Path, requests: list[dict], tmp: Path) -> list[dict]:
    """`policy explain --requests FILE -o json` for every request, one answer per request."""
    path = tmp / "explain-requests.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in requests))
    result = kubeadm_audit("policy", "explain", "--policy", policy, "--requests", path, "-o", "json")
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(answers) == len(requests)
    return answers
