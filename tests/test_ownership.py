"""Ownership: what kubeadm-audit set it records, updates and removes freely; the rest is someone else's.

Each entry point converges when the configuration changes (kubeadm-config merge, the KRM
function under the real kpt and kubectl kustomize), and removal takes out exactly what was
added: merge then remove gives the user's file back byte for byte.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from pipelines import (
    CAPI,
    audit_config,
    by_id,
    copy_tls,
    install_plugin,
    krm,
    load_all,
    resource_list,
    tool,
    webhook_config,
)

EXISTING = Path(__file__).parent / "fixtures" / "existing"
MANAGED = "kubeadm-audit.dev/managed"

V1BETA3 = """\
# Our cluster, written by hand.
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.0.0.10   # the first node
---
# the cluster-wide part
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.30.2 # pinned
apiServer:
  extraArgs:
    profiling: "false"   # CIS 1.2.15
  certSANs:
  - lb.example.com
controllerManager: {}
"""


def merge_file(path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("kubeadm-config", "merge", path, "--in-place", *args)


def cluster_of(path: Path) -> dict:
    return next(d for d in load_all(path.read_text()) if d.get("kind") == "ClusterConfiguration")


def extra_args(cluster: dict) -> dict:
    args = cluster.get("apiServer", {}).get("extraArgs", {})
    return {a["name"]: a["value"] for a in args} if isinstance(args, list) else dict(args)


# --- kubeadm-config merge -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["v1beta3", "kubeadm-config-v1beta3.yaml", "kubeadm-config-v1beta4.yaml",
                                  "kubeadm-config-cm.yaml"])
def test_merge_then_remove_gives_the_file_back_byte_for_byte(tmp_path, name):
    path = tmp_path / "kubeadm.yaml"
    original = V1BETA3 if name == "v1beta3" else (EXISTING / name).read_text()
    path.write_text(original)
    merged = merge_file(path, "--webhook-server", "https://10.0.0.5:8080", "--ca-file",
                        str(Path(__file__).parent / "fixtures" / "tls" / "ca.pem"))
    assert merged.returncode == 0, merged.stderr
    assert MANAGED in path.read_text() and "audit-webhook-config-file" in path.read_text()
    removed = merge_file(path, "--remove")
    assert removed.returncode == 0, removed.stderr
    assert path.read_text() == original
    again = merge_file(path, "--remove")
    assert again.returncode == 0 and "no change" in again.stdout


def test_merge_into_a_file_without_clusterconfiguration_and_remove_it_again(tmp_path):
    original = V1BETA3.split("---\n")[0]
    path = tmp_path / "init.yaml"
    path.write_text(original)
    assert merge_file(path).returncode == 0
    assert cluster_of(path)["apiServer"]["extraArgs"]["audit-log-path"]
    assert merge_file(path, "--remove").returncode == 0
    assert path.read_text() == original


def test_merge_converges_on_a_changed_configuration(tmp_path):
    path = tmp_path / "kubeadm.yaml"
    path.write_text(V1BETA3)
    ca = str(Path(__file__).parent / "fixtures" / "tls" / "ca.pem")
    assert merge_file(path, "--log-maxage", "30", "--webhook-server", "https://10.0.0.5:8080",
                      "--ca-file", ca).returncode == 0
    changed = merge_file(path, "--log-maxage", "40")          # new value, and no webhook any more
    assert changed.returncode == 0, changed.stderr
    args = extra_args(cluster_of(path))
    assert args["audit-log-maxage"] == "40" and args["profiling"] == "false"
    assert not [name for name in args if name.startswith("audit-webhook")]
    assert "removed audit-webhook-config-file" in changed.stdout
    record = json.loads(path.read_text().split(f"# {MANAGED}: ", 1)[1].split("\n", 1)[0])
    assert record["args"]["audit-log-maxage"] == "40" and "audit-webhook-mode" not in record["args"]
    assert merge_file(path, "--log-maxage", "40").stdout.endswith("no change\n")


def test_values_someone_else_set_or_changed_are_conflicts_and_never_removed(tmp_path):
    path = tmp_path / "kubeadm.yaml"
    path.write_text(V1BETA3.replace('profiling: "false"   # CIS 1.2.15',
                                    'profiling: "false"   # CIS 1.2.15\n    audit-log-maxbackup: "5"'))
    conflict = merge_file(path)
    assert conflict.returncode == 1 and "audit-log-maxbackup is '5'" in conflict.stderr
    assert "--force" in conflict.stderr
    assert merge_file(path, "--log-maxbackup", "5", "--log-maxage", "30").returncode == 0
    # someone edits a value kubeadm-audit set: it is theirs now
    path.write_text(path.read_text().replace("audit-log-maxage: '30'", "audit-log-maxage: '60'"))
    changed = merge_file(path, "--log-maxbackup", "5", "--log-maxage", "40")
    assert changed.returncode == 1 and "changed since" in changed.stderr
    assert merge_file(path, "--remove").returncode == 0
    args = extra_args(cluster_of(path))
    assert args == {"profiling": "false", "audit-log-maxbackup": "5", "audit-log-maxage": "60"}


def test_a_malformed_record_is_one_clear_line(tmp_path):
    path = tmp_path / "kubeadm.yaml"
    path.write_text(f"# {MANAGED}: {{not json\n" + V1BETA3.split("---\n")[1])
    result = merge_file(path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "ownership record" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- the KRM function ------------------------------------------------------------------------

def fixture_items(name: str) -> list:
    return [d for d in yaml.safe_load_all((CAPI / name).read_text()) if d]


def audit_secrets(items) -> list:
    return [d for d in items if d["kind"] == "Secret" and "-audit-" in d["metadata"]["name"]]


def run_krm(items: list, config: dict, cwd: Path) -> tuple:
    result = krm(input=resource_list(items, config), cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    out = yaml.safe_load(result.stdout)
    return out["items"], out.get("results") or []


def test_krm_converges_drops_the_webhook_and_removes_exactly_what_it_added(tmp_path):
    copy_tls(tmp_path)
    original = fixture_items("cluster-v1beta2.yaml") + fixture_items("kubeadm-config.yaml")
    first, _ = run_krm(original, webhook_config(), tmp_path)
    kcp_key = ("KubeadmControlPlane", "fleet", "edge-control-plane")
    kcp = by_id(first)[kcp_key]
    assert MANAGED in kcp["metadata"]["annotations"]
    assert audit_secrets(first)

    changed = audit_config()
    changed["spec"]["log"]["maxAge"] = 45
    second, _ = run_krm(first, changed, tmp_path)
    kcp = by_id(second)[kcp_key]
    args = {a["name"]: a["value"] for a in kcp["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["apiServer"]
            ["extraArgs"]}
    assert args["audit-log-maxage"] == "45" and not [n for n in args if n.startswith("audit-webhook")]
    paths = [f["path"] for f in kcp["spec"]["kubeadmConfigSpec"]["files"]]
    assert "/etc/kubernetes/audit/audit-webhook.yaml" not in paths
    assert not audit_secrets(second)          # the webhook Secret went with it
    record = json.loads(kcp["metadata"]["annotations"][MANAGED])
    assert "secrets" not in record and list(record["files"]) == ["/etc/kubernetes/audit/audit-policy.yaml"]

    remove = audit_config()
    remove["metadata"]["annotations"] = {"kubeadm-audit.dev/mode": "remove"}
    third, _ = run_krm(second, remove, tmp_path)
    assert by_id(third) == by_id(original)
    fourth, results = run_krm(third, remove, tmp_path)
    assert by_id(fourth) == by_id(original) and not [r for r in results if r["severity"] == "info"]


def test_krm_value_changed_by_someone_else_is_a_conflict_in_function_words(tmp_path):
    items, _ = run_krm(fixture_items("clusterconfiguration.yaml"), audit_config(), tmp_path)
    cluster = next(d for d in items if d["kind"] == "ClusterConfiguration")
    cluster["apiServer"]["extraArgs"]["audit-log-maxage"] = "60"
    changed = audit_config()
    changed["spec"]["log"]["maxAge"] = 45
    result = krm(input=resource_list(items, changed), cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "changed since" in errors[0]
    assert 'kubeadm-audit.dev/force: "true"' in errors[0] and "--force" not in errors[0]


# --- real kpt and kubectl kustomize ------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "kpt"


def kpt_env() -> dict:
    import sys

    bindir = os.path.dirname(sys.executable)
    if not os.path.exists(os.path.join(bindir, "kubeadm-audit")):
        pytest.skip(f"no kubeadm-audit console script next to {sys.executable}")
    return {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}


def render(kpt: str, package: Path) -> subprocess.CompletedProcess:
    return subprocess.run([kpt, "fn", "render", "--allow-exec"], cwd=package, capture_output=True, text=True,
                          env=kpt_env(), timeout=180)


def test_kpt_render_converges_and_removes(tmp_path):
    kpt = tool("kpt")
    package = tmp_path / "audited"
    shutil.copytree(EXAMPLE, package)
    original = {p.name: p.read_text() for p in package.glob("*.yaml")}
    assert render(kpt, package).returncode == 0
    config = package / "audit.yaml"
    config.write_text(config.read_text().replace("maxAge: 30", "maxAge: 40"))
    again = render(kpt, package)
    assert again.returncode == 0, again.stdout + again.stderr
    for name in ("cluster.yaml", "kubeadm-config.yaml"):
        text = (package / name).read_text()
        assert "value: '40'" in text or 'value: "40"' in text, name
        assert "audit-log-maxage" in text and "'30'" not in text.split("audit-log-maxage", 1)[1][:40]
    # no webhook any more: flags, files[] entry, volume content and the Secret go
    text = config.read_text()
    start = text.index("  webhook:")
    end = text.index("  log:")
    config.write_text(text[:start] + text[end:])
    assert render(kpt, package).returncode == 0
    assert "audit-webhook" not in (package / "cluster.yaml").read_text()
    assert "audit-webhook" not in (package / "kubeadm-config.yaml").read_text()
    assert not list(package.rglob("secret_*"))
    # mode remove: the documents come back as they were (kpt re-serialises the files it rewrites)
    config.write_text(config.read_text().replace('    config.kubernetes.io/local-config: "true"',
                                                 '    config.kubernetes.io/local-config: "true"\n'
                                                 '    kubeadm-audit.dev/mode: remove'))
    assert render(kpt, package).returncode == 0
    for name in ("cluster.yaml", "kubeadm-config.yaml"):
        assert load_all((package / name).read_text()) == load_all(original[name]), name
    assert "# kept by kpt: comments survive the function" in (package / "cluster.yaml").read_text()
    assert (package / "kubeadm-config.yaml").read_text() == original["kubeadm-config.yaml"]


def test_kubectl_kustomize_follows_the_configuration(tmp_path):
    kubectl = tool("kubectl")
    home = tmp_path / "plugins"
    install_plugin(home)
    copy_tls(tmp_path)
    shutil.copy(CAPI / "cluster-v1beta2.yaml", tmp_path / "cluster.yaml")
    (tmp_path / "kustomization.yaml").write_text("resources: [cluster.yaml]\ntransformers: [audit.yaml]\n")

    def build(config: dict) -> dict:
        (tmp_path / "audit.yaml").write_text(yaml.safe_dump(config))
        result = subprocess.run([kubectl, "kustomize", "--enable-alpha-plugins", str(tmp_path)], capture_output=True,
                                text=True, env={**os.environ, "KUSTOMIZE_PLUGIN_HOME": str(home)}, timeout=120)
        assert result.returncode == 0, result.stderr
        return by_id(load_all(result.stdout))

    first = build(webhook_config())
    changed = audit_config()
    changed["spec"]["log"]["maxAge"] = 45
    second = build(changed)
    kcp = second[("KubeadmControlPlane", "fleet", "edge-control-plane")]
    args = {a["name"]: a["value"] for a in kcp["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["apiServer"]
            ["extraArgs"]}
    assert args["audit-log-maxage"] == "45" and not [n for n in args if n.startswith("audit-webhook")]
    assert audit_secrets(first.values()) and not audit_secrets(second.values())
