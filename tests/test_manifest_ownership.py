"""manifest apply owns what it sets: a changed configuration converges, --remove takes it out."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "manifests", "kube-apiserver-v1.34.yaml")
TLS = os.path.join(HERE, "fixtures", "tls")
MANAGED = "kubeadm-audit.dev/managed"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubeadm_audit", *args], capture_output=True, text=True)


@pytest.fixture
def node(tmp_path):
    manifests = tmp_path / "etc" / "manifests"
    manifests.mkdir(parents=True)
    path = manifests / "kube-apiserver.yaml"
    shutil.copy(FIXTURE, path)
    audit = tmp_path / "etc" / "audit"

    class Node:
        manifest = path
        opts = ("--backup-dir", str(tmp_path / "backups"), "--write-files",
                "--policy-path", str(audit / "audit-policy.yaml"),
                "--webhook-config-path", str(audit / "audit-webhook.yaml"))

        def apply(self, *extra: str) -> subprocess.CompletedProcess:
            return run("manifest", "apply", str(self.manifest), *self.opts, *extra)

        def command(self) -> list:
            pod = yaml.safe_load(self.manifest.read_text())
            return next(c for c in pod["spec"]["containers"] if c["name"] == "kube-apiserver")["command"]

    return Node()


WEBHOOK = ("--webhook-server", "https://10.0.0.5:8080", "--ca-file", os.path.join(TLS, "ca.pem"))


def test_apply_converges_drops_the_webhook_and_remove_restores_the_file(node):
    original = node.manifest.read_text()
    first = node.apply(*WEBHOOK, "--log-maxage", "30")
    assert first.returncode == 0, first.stderr
    assert MANAGED in node.manifest.read_text()
    changed = node.apply("--log-maxage", "40")
    assert changed.returncode == 0, changed.stderr
    command = node.command()
    assert "--audit-log-maxage=40" in command and not [a for a in command if a.startswith("--audit-webhook")]
    assert "removed --audit-webhook-config-file" in changed.stdout
    pod = yaml.safe_load(node.manifest.read_text())
    record = json.loads(pod["metadata"]["annotations"][MANAGED])
    assert record["args"]["audit-log-maxage"] == "40" and "audit-webhook-mode" not in record["args"]
    removed = run("manifest", "apply", str(node.manifest), "--backup-dir", node.opts[1], "--remove")
    assert removed.returncode == 0, removed.stderr
    assert node.manifest.read_text() == original
    again = run("manifest", "apply", str(node.manifest), "--backup-dir", node.opts[1], "--remove")
    assert again.returncode == 0 and "no change" in again.stdout


def test_hand_edited_values_are_conflicts_unless_forced_and_survive_remove(node):
    text = node.manifest.read_text().replace("    - kube-apiserver\n",
                                             "    - kube-apiserver\n    - --audit-log-maxage=7\n", 1)
    node.manifest.write_text(text)
    conflict = node.apply()
    assert conflict.returncode == 1
    assert "--audit-log-maxage is '7'" in conflict.stderr and "--force" in conflict.stderr
    assert node.manifest.read_text() == text
    assert node.apply("--log-maxbackup", "5").returncode == 1
    forced = node.apply("--force")
    assert forced.returncode == 0, forced.stderr
    assert "--audit-log-maxage=7" not in node.command()
    removed = run("manifest", "apply", str(node.manifest), "--backup-dir", node.opts[1], "--remove")
    assert removed.returncode == 0
    assert not [a for a in node.command() if a.startswith("--audit-")]   # forced values became ours
