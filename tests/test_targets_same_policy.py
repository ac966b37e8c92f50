"""One AuditConfig, every distribution: each target writes the same audit policy.

From the same AuditConfig every `generate --target` writes a byte-identical audit-policy.yaml
below its header line (which says how the file reaches the node: copied there, mounted by kind,
carried inline by the Talos patch), and Talos's inline cluster.apiServer.auditPolicy is that
policy. With each target's own default node paths the files differ only in that header line.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import WEBHOOK_ARGS, run_cli
from kubeadm_audit import presets, targets, yamlio

#: Node paths every target can use (Talos writes machine files only below /var, and its
#: kube-apiserver logs only to /var/log/audit/kube).
SHARED_PATHS = ["--policy-path", "/var/lib/kubernetes-audit/audit-policy.yaml",
                "--webhook-config-path", "/var/lib/kubernetes-audit/audit-webhook.yaml",
                "--log-path", "/var/log/audit/kube/kube-apiserver.log"]


def body(path: Path) -> bytes:
    """The file below its header line."""
    return path.read_bytes().split(b"\n", 1)[1]


def generate(out: Path, target: str, *args: object) -> Path:
    result = run_cli("generate", "--target", target, "--out", out, *args)
    assert result.returncode == 0, (target, result.stderr)
    return out


@pytest.mark.parametrize("preset", presets.names())
def test_every_target_writes_the_same_policy_from_the_same_audit_config(tmp_path, preset):
    options = ["--preset", preset, *WEBHOOK_ARGS.get(preset, []), *SHARED_PATHS]
    first = generate(tmp_path / "first", targets.DEFAULT, *options)
    policy = body(first / "audit-policy.yaml")
    config = first / "audit-config.yaml"
    for name in targets.NAMES:
        out = generate(tmp_path / name, name, "--config", config)
        assert body(out / "audit-policy.yaml") == policy, name
        webhook = first / "audit-webhook.yaml"
        if webhook.exists():
            assert body(out / "audit-webhook.yaml") == body(webhook), name
    inline = yamlio.load_file(str(tmp_path / "talos" / "talos-patch.yaml"))["cluster"]["apiServer"]["auditPolicy"]
    assert inline == yamlio.load_file(str(first / "audit-policy.yaml"))


def test_each_targets_default_paths_change_only_where_the_policy_is_installed(tmp_path):
    texts = {name: (generate(tmp_path / name, name, *WEBHOOK_ARGS["zeron"]) / "audit-policy.yaml").read_text()
             for name in targets.NAMES}
    bodies = {name: text.split("\n", 1)[1] for name, text in texts.items()}
    assert len(set(bodies.values())) == 1
    assert len({text.split("\n", 1)[0] for text in texts.values()}) > 1   # the header names the node path


@pytest.mark.parametrize("target", [name for name in targets.NAMES if name != targets.DEFAULT])
def test_a_bundles_audit_config_writes_the_same_bundle_again(tmp_path, target):
    first = generate(tmp_path / "first", target, "--preset", "zeron", *WEBHOOK_ARGS["zeron"])
    again = tmp_path / "again"
    result = run_cli("generate", "--config", first / "audit-config.yaml", "--out", again)   # no --target
    assert result.returncode == 0, result.stderr
    tree = {str(p.relative_to(first)): p.read_bytes() for p in sorted(first.rglob("*")) if p.is_file()}
    assert {str(p.relative_to(again)): p.read_bytes() for p in sorted(again.rglob("*")) if p.is_file()} == tree
