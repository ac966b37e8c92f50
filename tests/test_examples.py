"""The examples are what the tool renders today."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _shim(tmp_path: Path) -> Path:
    shim = tmp_path / "bin" / "kubeadm-audit"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m kubeadm_audit \"$@\"\n")
    shim.chmod(0o755)
    return shim


def test_zeron_example_is_in_sync(tmp_path):
    example = ROOT / "examples" / "zeron"
    # a copy at the same depth, so the script's ../../tests/fixtures path resolves
    copy = tmp_path / "repo" / "examples" / "zeron"
    copy.mkdir(parents=True)
    shutil.copy(example / "generate.sh", copy / "generate.sh")
    shutil.copytree(ROOT / "tests" / "fixtures" / "tls", tmp_path / "repo" / "tests" / "fixtures" / "tls")
    result = subprocess.run(["sh", str(copy / "generate.sh")], capture_output=True, text=True,
                            env={**os.environ, "KA": str(_shim(tmp_path))})
    assert result.returncode == 0, result.stderr
    for name in ("recipe", "production"):
        assert _tree(copy / name) == _tree(example / name), (
            f"examples/zeron/{name} is stale: run examples/zeron/generate.sh")
