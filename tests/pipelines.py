"""Helpers for the pipeline tests: real tools, a temp plugin home, ResourceLists."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import FIXTURES, TLS, run_cli

CAPI = FIXTURES / "capi"
PLUGIN_RELPATH = Path("kubeadm-audit.dev/v1alpha1/auditconfig/AuditConfig")
GCLOUD_KUBECTLS = "/usr/lib/google-cloud-sdk/bin/kubectl.1.*"


def tool(name: str) -> str:
    """The tool's path, or skip the test naming the missing tool."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (not on PATH): this test needs the real {name}")
    return path


def kubectls() -> list:
    """Every kubectl here: the default one and the versioned gcloud ones (sorted)."""
    found = []
    default = shutil.which("kubectl")
    if default:
        found.append(("kubectl", default))
    for path in sorted(glob.glob(GCLOUD_KUBECTLS), key=lambda p: int(p.rsplit(".", 1)[1])):
        if os.access(path, os.X_OK):
            found.append((os.path.basename(path), path))
    return found


def install_plugin(home: Path) -> Path:
    result = run_cli("plugin", "install", "--plugin-home", home)
    assert result.returncode == 0, result.stderr
    path = home / PLUGIN_RELPATH
    assert os.access(path, os.X_OK)
    return path


def krm(*args: str, input: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """``kubeadm-audit krm`` through the console script's code path (python -m)."""
    return run_cli("krm", *args, input=input, env=env, cwd=cwd)


def resource_list(items: list, function_config: dict | None) -> str:
    doc = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items}
    if function_config is not None:
        doc["functionConfig"] = function_config
    return yaml.safe_dump(doc, sort_keys=False)


def load_all(text: str) -> list:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def audit_config(**spec) -> dict:
    base = {"preset": "recommended",
            "log": {"path": "/var/log/kubernetes/audit/audit.log", "maxAge": 30, "maxBackup": 10, "maxSize": 100}}
    base.update(spec)
    return {"apiVersion": "kubeadm-audit.dev/v1alpha1", "kind": "AuditConfig",
            "metadata": {"name": "audit"}, "spec": base}


def webhook_config(ca: str = "ca.pem", **extra) -> dict:
    return audit_config(webhook={"server": "https://10.0.0.5:8080", "certificateAuthority": ca, **extra})


def copy_tls(directory: Path) -> None:
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        shutil.copy(TLS / name, directory / name)


def by_id(docs: list) -> dict:
    return {(d.get("kind"), (d.get("metadata") or {}).get("namespace"), (d.get("metadata") or {}).get("name")): d
            for d in docs}

