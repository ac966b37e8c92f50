"""examples/targets is what `generate --target` renders today, for every distribution but kubeadm."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_targets_example_is_in_sync(tmp_path):
    example = ROOT / "examples" / "targets"
    copy = tmp_path / "repo" / "examples" / "targets"       # the same depth: ../../tests/fixtures resolves
    copy.mkdir(parents=True)
    shutil.copy(example / "generate.sh", copy / "generate.sh")
    shutil.copytree(ROOT / "tests" / "fixtures" / "tls", tmp_path / "repo" / "tests" / "fixtures" / "tls")
    shim = tmp_path / "bin" / "kubeadm-audit"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m kubeadm_audit \"$@\"\n")
    shim.chmod(0o755)
    result = subprocess.run(["sh", str(copy / "generate.sh")], capture_output=True, text=True,
                            env={**os.environ, "KA": str(shim)})
    assert result.returncode == 0, result.stderr
    for name in ("kind", "k3s", "rke2", "talos"):
        assert _tree(copy / name) == _tree(example / name), (
            f"examples/targets/{name} is stale: run examples/targets/generate.sh")
