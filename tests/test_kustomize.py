"""The legacy exec plugin through the real ``kubectl kustomize --enable-alpha-plugins``.

Runs every kubectl found (the default one and /usr/lib/google-cloud-sdk/bin/kubectl.1.*),
with KUSTOMIZE_PLUGIN_HOME pointing at a temp plugin home filled by
``kubeadm-audit plugin install --plugin-home``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines import CAPI, by_id, copy_tls, install_plugin, kubectls, load_all, webhook_config

FIXTURES = ["cluster-v1beta1.yaml", "cluster-v1beta2.yaml", "clusterclass-v1beta1.yaml", "kubeadm-config.yaml",
            "clusterconfiguration.yaml"]
TARGET_KINDS = {"KubeadmControlPlane", "KubeadmControlPlaneTemplate", "ClusterConfiguration"}

IDENTITY = """\
apiVersion: test.kubeadm-audit.dev/v1
kind: Identity
metadata:
  name: identity
"""

_KUBECTLS = kubectls()


def _params():
    if not _KUBECTLS:
        return [pytest.param(None, id="no-kubectl")]
    return [pytest.param(path, id=name) for name, path in _KUBECTLS]


@pytest.fixture(params=_params())
def kubectl(request):
    if request.param is None:
        pytest.skip("kubectl is not installed (not on PATH, no /usr/lib/google-cloud-sdk/bin/kubectl.1.*)")
    return request.param


@pytest.fixture
def default_kubectl():
    if not _KUBECTLS:
        pytest.skip("kubectl is not installed (not on PATH)")
    return _KUBECTLS[0][1]


@pytest.fixture(scope="module")
def plugin_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("plugins")
    install_plugin(home)
    identity = home / "test.kubeadm-audit.dev" / "v1" / "identity" / "Identity"
    identity.parent.mkdir(parents=True)
    identity.write_text("#!/bin/sh\nexec cat\n")
    identity.chmod(0o755)
    return home


def build(kubectl: str, directory: Path, home: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUSTOMIZE_PLUGIN_HOME": str(home)}
    result = subprocess.run([kubectl, "kustomize", "--enable-alpha-plugins", str(directory)],
                            capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def make_kustomization(directory: Path, transformers: list, resources=FIXTURES, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in resources:
        shutil.copy(CAPI / name, directory / name)
    copy_tls(directory)
    (directory / "audit.yaml").write_text(yaml.safe_dump(webhook_config()))
    (directory / "identity.yaml").write_text(IDENTITY)
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": list(resources), **({"transformers": transformers} if transformers else {})})
        + extra)
    return directory


def documents(text: str) -> dict:
    """Build output as {id: document text}, so untouched resources can be compared as text."""
    out = {}
    for chunk in re.split(r"^---\n", text, flags=re.M):
        if chunk.strip():
            out[next(iter(by_id([yaml.safe_load(chunk)])))] = chunk
    return out


def api_server(doc: dict, template: bool = False) -> dict:
    spec = doc["spec"]["template"]["spec"] if template else doc["spec"]
    return spec["kubeadmConfigSpec"]["clusterConfiguration"]["apiServer"]


def test_build_injects_everywhere(kubectl, plugin_home, tmp_path):
    out = by_id(load_all(build(kubectl, make_kustomization(tmp_path / "k", ["audit.yaml"]), plugin_home).stdout))
    v1 = out[("KubeadmControlPlane", "fleet", "prod-control-plane")]
    args = api_server(v1)["extraArgs"]
    assert args["enable-admission-plugins"] == "NodeRestriction,PodSecurity"        # kept
    assert args["audit-webhook-config-file"] == "/etc/kubernetes/audit/audit-webhook.yaml"
    assert args["audit-log-maxage"] == "30"
    assert next(v["name"] for v in api_server(v1)["extraVolumes"]) == "encryption"    # kept, first
    files = v1["spec"]["kubeadmConfigSpec"]["files"]
    assert files[0]["path"] == "/etc/kubernetes/encryption/config.yaml"
    policy = next(f for f in files if f["path"] == "/etc/kubernetes/audit/audit-policy.yaml")
    assert policy["permissions"] == "0644" and policy["owner"] == "root:root"
    assert yaml.safe_load(policy["content"])["kind"] == "Policy"
    hook = next(f for f in files if f["path"] == "/etc/kubernetes/audit/audit-webhook.yaml")
    assert hook["permissions"] == "0600" and "content" not in hook
    secret = out[("Secret", "fleet", hook["contentFrom"]["secret"]["name"])]
    import base64

    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"][hook["contentFrom"]["secret"]["key"]]))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://10.0.0.5:8080"

    v2 = out[("KubeadmControlPlane", "fleet", "edge-control-plane")]
    names = [a["name"] for a in api_server(v2)["extraArgs"]]
    assert names[:2] == ["enable-admission-plugins", "profiling"] and "audit-policy-file" in names
    assert len(names) == len(set(names))
    bare = out[("KubeadmControlPlane", "fleet", "bare-control-plane")]
    assert api_server(bare)["extraArgs"] and api_server(bare)["extraVolumes"]           # never empty lists
    template = out[("KubeadmControlPlaneTemplate", "fleet", "standard-control-plane")]
    assert "audit-policy-file" in api_server(template, template=True)["extraArgs"]
    assert api_server(template, template=True)["certSANs"] == ["localhost"]

    configmap = out[("ConfigMap", "kube-system", "kubeadm-config")]
    embedded = configmap["data"]["ClusterConfiguration"]
    assert isinstance(embedded, str)
    inner = yaml.safe_load(embedded)
    assert next(a["name"] for a in inner["apiServer"]["extraArgs"]) == "authorization-mode"
    assert {"name": "audit-log-path", "value": "/var/log/kubernetes/audit/audit.log"} in inner["apiServer"]["extraArgs"]
    cluster = out[("ClusterConfiguration", None, "cluster-configuration")]
    assert cluster["apiServer"]["extraArgs"]["audit-policy-file"] == "/etc/kubernetes/audit/audit-policy.yaml"
    assert out[("InitConfiguration", None, "init-configuration")].get("apiServer") is None


def test_untouched_resources_are_unchanged(kubectl, plugin_home, tmp_path):
    ours = documents(build(kubectl, make_kustomization(tmp_path / "a", ["audit.yaml"]), plugin_home).stdout)
    plain = documents(build(kubectl, make_kustomization(tmp_path / "b", []), plugin_home).stdout)
    identity = documents(build(kubectl, make_kustomization(tmp_path / "c", ["identity.yaml"]), plugin_home).stdout)
    changed = {key for key in plain if key[0] in TARGET_KINDS} | {("ConfigMap", "kube-system", "kubeadm-config")}
    untouched = [key for key in plain if key not in changed]
    assert len(untouched) >= 10
    for key in untouched:
        assert ours[key] == identity[key], key
        assert yaml.safe_load(ours[key]) == yaml.safe_load(plain[key]), key
    assert {key for key in ours if key not in plain} == {k for k in ours if k[0] == "Secret" and "audit" in k[2]}


def test_rebuild_of_the_output_is_idempotent(kubectl, plugin_home, tmp_path):
    first = build(kubectl, make_kustomization(tmp_path / "a", ["audit.yaml"]), plugin_home).stdout
    plain = build(kubectl, make_kustomization(tmp_path / "p", []), plugin_home).stdout
    assert "audit-policy-file" in first and "audit-policy-file" not in plain   # the first build did inject
    second_dir = tmp_path / "b"
    second_dir.mkdir()
    (second_dir / "built.yaml").write_text(first)
    copy_tls(second_dir)
    (second_dir / "audit.yaml").write_text(yaml.safe_dump(webhook_config()))
    (second_dir / "kustomization.yaml").write_text("resources: [built.yaml]\ntransformers: [audit.yaml]\n")
    second = build(kubectl, second_dir, plugin_home).stdout
    assert second == first


def test_bad_function_config_fails_the_build(kubectl, plugin_home, tmp_path):
    directory = make_kustomization(tmp_path / "k", ["audit.yaml"], resources=["cluster-v1beta1.yaml"])
    bad = webhook_config()
    bad["spec"]["webhook"]["server"] = "ftp://10.0.0.5"
    (directory / "audit.yaml").write_text(yaml.safe_dump(bad))
    result = build(kubectl, directory, plugin_home, check=False)
    assert result.returncode != 0 and result.stdout == ""
    assert "spec.webhook.server" in result.stderr and "not an http(s) URL" in result.stderr


def test_malformed_target_fails_the_build(default_kubectl, plugin_home, tmp_path):
    directory = make_kustomization(tmp_path / "k", ["audit.yaml"], resources=["cluster-v1beta1.yaml"])
    text = (directory / "cluster-v1beta1.yaml").read_text()
    text = text.replace("        extraArgs:\n          enable-admission-plugins: NodeRestriction,PodSecurity\n"
                        "          profiling: \"false\"\n",
                        "        extraArgs:\n        - name: profiling\n          value: \"false\"\n")
    (directory / "cluster-v1beta1.yaml").write_text(text)
    result = build(default_kubectl, directory, plugin_home, check=False)
    assert result.returncode != 0
    assert "KubeadmControlPlane fleet/prod-control-plane" in result.stderr
    assert "extraArgs" in result.stderr and "map" in result.stderr


def secret_ref(kcp: dict) -> str:
    hook = next(f for f in kcp["spec"]["kubeadmConfigSpec"]["files"] if f["path"].endswith("audit-webhook.yaml"))
    return hook["contentFrom"]["secret"]["name"]


def test_transformer_in_overlay_sees_final_names(default_kubectl, plugin_home, tmp_path):
    make_kustomization(tmp_path / "base", [], resources=["cluster-v1beta1.yaml"])
    overlay = make_kustomization(tmp_path / "overlay", ["audit.yaml"], resources=[],
                                 extra="namePrefix: eu-\nnamespace: eu\n")
    (overlay / "kustomization.yaml").write_text(
        "resources: [../base]\nnamePrefix: eu-\nnamespace: eu\ntransformers: [audit.yaml]\n")
    out = by_id(load_all(build(default_kubectl, overlay, plugin_home).stdout))
    name = secret_ref(out[("KubeadmControlPlane", "eu", "eu-prod-control-plane")])
    assert ("Secret", "eu", name) in out and name.startswith("eu-prod-control-plane-audit-")


def test_transformer_in_base_reads_files_relative_to_base(default_kubectl, plugin_home, tmp_path):
    make_kustomization(tmp_path / "base", ["audit.yaml"], resources=["cluster-v1beta1.yaml"])
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources: [../base]\nnamespace: eu\n")
    out = by_id(load_all(build(default_kubectl, overlay, plugin_home).stdout))
    name = secret_ref(out[("KubeadmControlPlane", "eu", "prod-control-plane")])
    assert ("Secret", "eu", name) in out


def test_missing_plugin_fails_clearly(default_kubectl, tmp_path):
    directory = make_kustomization(tmp_path / "k", ["audit.yaml"], resources=["cluster-v1beta1.yaml"])
    empty = tmp_path / "empty-home"
    empty.mkdir()
    result = build(default_kubectl, directory, empty, check=False)
    assert result.returncode != 0 and "AuditConfig" in result.stderr


# --- examples/capi-kustomize, run as its README says ----------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "capi-kustomize"


def test_example_overlay(default_kubectl, plugin_home):
    out = by_id(load_all(build(default_kubectl, EXAMPLE / "overlays" / "prod", plugin_home).stdout))
    kcp = out[("KubeadmControlPlane", "prod", "prod-demo-control-plane")]
    assert "audit-webhook-config-file" in api_server(kcp)["extraArgs"]
    assert ("Secret", "prod", secret_ref(kcp)) in out
    assert out[("KubeadmConfigTemplate", "prod", "prod-demo-md-0")]["spec"]["template"]["spec"].get("files") is None


def test_example_clusterclass(default_kubectl, plugin_home):
    out = by_id(load_all(build(default_kubectl, EXAMPLE / "clusterclass", plugin_home).stdout))
    cluster_class = out[("ClusterClass", "fleet", "standard")]
    assert [p["name"] for p in cluster_class["spec"]["patches"]] == ["kubeadm-audit"]
    assert [v["name"] for v in cluster_class["spec"]["variables"]] == ["auditWebhookServer"]
    assert ("Secret", "fleet", "kubeadm-audit-files") in out
    template = out[("KubeadmControlPlaneTemplate", "fleet", "standard-control-plane")]
    assert "extraArgs" not in api_server(template, template=True)


def test_example_kubeadm_documents_then_strip(default_kubectl, plugin_home):
    built = build(default_kubectl, EXAMPLE / "kubeadm", plugin_home).stdout
    from conftest import run_cli

    stripped = run_cli("krm", "--strip-kubeadm-metadata", input=built)
    assert stripped.returncode == 0, stripped.stderr
    docs = {d["kind"]: d for d in load_all(stripped.stdout)}
    assert set(docs) == {"InitConfiguration", "ClusterConfiguration"}
    assert all("metadata" not in d for d in docs.values())
    names = [a["name"] for a in docs["ClusterConfiguration"]["apiServer"]["extraArgs"]]
    assert names[0] == "authorization-mode" and "audit-log-path" in names
