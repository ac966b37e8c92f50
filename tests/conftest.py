"""Shared test helpers: run the real CLI as a subprocess, and fixture paths."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Records the policies, requests and command lines the suite uses, for the oracle (tests/oracle.py).
pytest_plugins = ["oracle"]

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
TLS = FIXTURES / "tls"
MANIFEST_V134 = FIXTURES / "manifests" / "kube-apiserver-v1.34.yaml"
#: Public Kubernetes audit logs (provenance and licence: its README.md).
AUDIT_SAMPLES = FIXTURES / "audit-samples"

#: The receiver options each webhook preset is generated with in the tests.
WEBHOOK_ARGS = {
    "zeron": ["--webhook-server", "https://10.0.0.5:8080", "--ca-file", TLS / "ca.pem"],
    "wazuh": ["--webhook-server", "https://10.0.0.6:8080", "--ca-file", TLS / "ca.pem"],
    "falco": ["--webhook-server", "http://127.0.0.1:30007/k8s-audit"],
}


def run_cli(*args: str, input: str | None = None, env: dict | None = None,
            cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run ``kubeadm-audit ARGS`` as a real subprocess of this interpreter."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "kubeadm_audit", *map(str, args)], input=input,
                          capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120)


@pytest.fixture
def cli():
    return run_cli


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """Assert the failure is a single clear line on stderr (no traceback) and return it."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in lines if "error" in line]
    assert len(errors) == 1, result.stderr
    return errors[0]


# --- this machine's /etc/kubernetes is never touched --------------------------------------------
# Tests that run kubeadm or install a bundle map every node path into temp dirs or a private mount
# namespace; a path that slips through would write into the real control-plane directory (it
# happened once: an unmapped patches directory). The whole session fails if the tree changed.
HOST_KUBERNETES = Path("/etc/kubernetes")


def _host_tree() -> list:
    if not HOST_KUBERNETES.exists():
        return []
    found = []
    for path in sorted(HOST_KUBERNETES.rglob("*")):
        stat = path.lstat()
        found.append((str(path), stat.st_mode, stat.st_size, stat.st_mtime_ns))
    return [(str(HOST_KUBERNETES), HOST_KUBERNETES.exists()), *found]


def pytest_sessionstart(session):
    session.config._host_kubernetes = _host_tree()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_host_kubernetes", None)
    if before is not None and _host_tree() != before:
        session.exitstatus = 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"FAILED: the tests changed this machine's {HOST_KUBERNETES}", red=True)
