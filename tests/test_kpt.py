"""The KRM function through the real kpt: ``fn eval --exec`` and ``fn render --allow-exec``.

kpt writes the package back in place, so these tests also show what users see in git:
untouched files byte for byte, comments kept in the files the function changed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines import CAPI, by_id, copy_tls, install_plugin, load_all, tool, webhook_config

FIXTURES = ["cluster-v1beta1.yaml", "cluster-v1beta2.yaml", "clusterclass-v1beta1.yaml", "kubeadm-config.yaml",
            "clusterconfiguration.yaml"]
CHANGED_FILES = set(FIXTURES) - {"unrelated.yaml"}

UNRELATED = """\
# Not a target: kpt must write this file back exactly as it is.
apiVersion: v1
kind: ConfigMap
metadata:
  name: unrelated # trailing comment
  namespace: fleet
data:
  enabled: yes
  mode: 0600
  ratio: 1e3
  nothing: ~
  quoted: "false"
  script: |
    #!/bin/sh
    echo "yes"
"""


@pytest.fixture
def kpt():
    return tool("kpt")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    return install_plugin(tmp_path_factory.mktemp("plugins"))


def make_package(root: Path) -> Path:
    package = root / "pkg"
    package.mkdir(parents=True)
    for name in FIXTURES:
        shutil.copy(CAPI / name, package / name)
    (package / "unrelated.yaml").write_text(UNRELATED)
    copy_tls(root)
    (root / "audit.yaml").write_text(yaml.safe_dump(webhook_config()))
    return package


def snapshot(package: Path) -> dict:
    return {str(p.relative_to(package)): p.read_text() for p in sorted(package.rglob("*")) if p.is_file()}


def run(kpt: str, *args, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([kpt, "fn", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=180)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_eval_injects_keeps_comments_and_untouched_files(kpt, plugin, tmp_path):
    package = make_package(tmp_path)
    before = snapshot(package)
    run(kpt, "eval", package, "--exec", plugin, "--fn-config", "audit.yaml", cwd=tmp_path)
    after = snapshot(package)
    assert after["unrelated.yaml"] == before["unrelated.yaml"]
    kcp_file = after["cluster-v1beta1.yaml"]
    assert "# pinned by the platform team" in kcp_file
    assert "# A Docker-provider workload cluster" in kcp_file
    assert 'mode: "0600"' in kcp_file and 'enabled: "yes"' in kcp_file
    docs = by_id(load_all(kcp_file))
    args = docs[("KubeadmControlPlane", "fleet", "prod-control-plane")]["spec"]["kubeadmConfigSpec"][
        "clusterConfiguration"]["apiServer"]["extraArgs"]
    assert args["audit-log-path"] == "/var/log/kubernetes/audit/audit.log"
    for name, text in after.items():
        if name.startswith(("fleet/", "secret_")):
            assert load_all(text)[0]["kind"] == "Secret"
    secrets = [n for n in after if n not in before]
    assert len(secrets) == 4, secrets                   # prod, edge, bare, standard
    assert "# kubectl -n kube-system get configmap" in after["kubeadm-config.yaml"]


def test_eval_again_changes_nothing(kpt, plugin, tmp_path):
    package = make_package(tmp_path)
    before = snapshot(package)
    run(kpt, "eval", package, "--exec", plugin, "--fn-config", "audit.yaml", cwd=tmp_path)
    first = snapshot(package)
    changed = [name for name in before if first[name] != before[name]]
    assert changed and all("audit-policy-file" in first[name] for name in changed), changed
    run(kpt, "eval", package, "--exec", plugin, "--fn-config", "audit.yaml", cwd=tmp_path)
    assert snapshot(package) == first


def test_untouched_files_match_an_identity_function(kpt, plugin, tmp_path):
    ours = make_package(tmp_path / "a")
    identity = make_package(tmp_path / "b")
    run(kpt, "eval", ours, "--exec", plugin, "--fn-config", "audit.yaml", cwd=tmp_path / "a")
    run(kpt, "eval", identity, "--exec", shutil.which("cat") or "/bin/cat", cwd=tmp_path / "b")
    a, b = snapshot(ours), snapshot(identity)
    assert a["unrelated.yaml"] == b["unrelated.yaml"] == UNRELATED
    for name in FIXTURES:
        ours_docs, identity_docs = by_id(load_all(a[name])), by_id(load_all(b[name]))
        for key, doc in identity_docs.items():
            if key[0] not in ("KubeadmControlPlane", "KubeadmControlPlaneTemplate", "ClusterConfiguration") \
                    and key != ("ConfigMap", "kube-system", "kubeadm-config"):
                assert ours_docs[key] == doc, (name, key)


def test_eval_with_the_cli_entry_point_and_key_value_config(kpt, tmp_path):
    package = make_package(tmp_path)
    ka = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "kubeadm-audit"
    if not ka.exists():
        ka = Path(shutil.which("kubeadm-audit") or (Path(__file__).parents[1] / ".venv/bin/kubeadm-audit"))
    run(kpt, "eval", package, "--exec", f"{ka} krm", "--", "preset=cis-minimal",
        "log.path=/var/log/kubernetes/audit/audit.log", "log.maxAge=30", "log.maxBackup=10", "log.maxSize=100",
        cwd=tmp_path)
    docs = by_id(load_all((package / "cluster-v1beta2.yaml").read_text()))
    args = docs[("KubeadmControlPlane", "fleet", "edge-control-plane")]["spec"]["kubeadmConfigSpec"][
        "clusterConfiguration"]["apiServer"]["extraArgs"]
    assert {"name": "audit-log-maxbackup", "value": "10"} in args
    assert not any(a["name"].startswith("audit-webhook") for a in args)


def test_bad_config_fails_and_changes_no_file(kpt, plugin, tmp_path):
    package = make_package(tmp_path)
    before = snapshot(package)
    bad = webhook_config()
    bad["spec"]["log"]["maxAge"] = "thirty"
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump(bad))
    result = run(kpt, "eval", package, "--exec", plugin, "--fn-config", "audit.yaml", cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert "spec.log.maxAge" in result.stdout + result.stderr
    assert snapshot(package) == before


def test_render_pipeline_with_allow_exec(kpt, plugin, tmp_path):
    package = make_package(tmp_path)
    shutil.copy(tmp_path / "ca.pem", package / "ca.pem")
    config = webhook_config()
    config["metadata"]["annotations"] = {"config.kubernetes.io/local-config": "true"}
    (package / "audit.yaml").write_text(yaml.safe_dump(config))
    (package / "Kptfile").write_text(yaml.safe_dump({
        "apiVersion": "kpt.dev/v1", "kind": "Kptfile",
        "metadata": {"name": "pkg", "annotations": {"config.kubernetes.io/local-config": "true"}},
        "pipeline": {"mutators": [{"exec": str(plugin), "configPath": "audit.yaml"}]}}))
    refused = run(kpt, "render", package, cwd=tmp_path, check=False)
    assert refused.returncode != 0 and "allow-exec" in refused.stdout + refused.stderr
    run(kpt, "render", package, "--allow-exec", cwd=tmp_path)   # ca.pem found next to audit.yaml, not in cwd
    first = snapshot(package)
    assert "audit-policy-file" in first["cluster-v1beta1.yaml"]
    assert first["unrelated.yaml"] == UNRELATED
    run(kpt, "render", package, "--allow-exec", cwd=tmp_path)
    assert snapshot(package) == first


def test_changed_config_rolls_the_secret_and_removes_the_old_one(kpt, plugin, tmp_path):
    package = make_package(tmp_path)
    run(kpt, "eval", package, "--exec", plugin, "--fn-config", "audit.yaml", cwd=tmp_path)
    first = {n for n in snapshot(package) if n.startswith("fleet/")}
    changed = webhook_config()
    changed["spec"]["webhook"]["server"] = "https://10.0.0.6:8080"
    changed["metadata"]["annotations"] = {"kubeadm-audit.dev/force": "true"}
    (tmp_path / "audit.yaml").write_text(yaml.safe_dump(changed))
    run(kpt, "eval", package, "--exec", plugin, "--fn-config", "audit.yaml", cwd=tmp_path)
    second = {n for n in snapshot(package) if n.startswith("fleet/")}
    assert len(second) == len(first) == 4 and not first & second
    docs = by_id(load_all((package / "cluster-v1beta1.yaml").read_text()))
    files = docs[("KubeadmControlPlane", "fleet", "prod-control-plane")]["spec"]["kubeadmConfigSpec"]["files"]
    refs = [f["contentFrom"]["secret"]["name"] for f in files if "audit" in f["path"] and "contentFrom" in f]
    assert refs and all(f"fleet/secret_{r}.yaml" in second for r in refs)


# --- examples/kpt, run as its README says -------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "kpt"


def example_copy(tmp_path: Path) -> Path:
    package = tmp_path / "audited"
    shutil.copytree(EXAMPLE, package)
    return package


def path_env() -> dict:
    """kubeadm-audit (this installation's console script) on PATH, as the README asks."""
    import sys

    bindir = os.path.dirname(sys.executable)
    if not os.path.exists(os.path.join(bindir, "kubeadm-audit")):
        pytest.skip(f"no kubeadm-audit console script next to {sys.executable}")
    return {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}


def test_example_render(kpt, tmp_path):
    package = example_copy(tmp_path)
    before = snapshot(package)
    result = subprocess.run([kpt, "fn", "render", "--allow-exec"], cwd=package, capture_output=True, text=True,
                            env=path_env(), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    after = snapshot(package)
    assert "# kept by kpt: comments survive the function" in after["cluster.yaml"]
    assert "audit-webhook-config-file" in after["cluster.yaml"]
    inner = yaml.safe_load(yaml.safe_load(after["kubeadm-config.yaml"])["data"]["ClusterConfiguration"])
    assert {"name": "audit-policy-file", "value": "/etc/kubernetes/audit/audit-policy.yaml"} in \
        inner["apiServer"]["extraArgs"]
    assert [n for n in after if n.startswith("fleet/secret_edge-control-plane-audit-")]
    assert after["audit.yaml"] == before["audit.yaml"] and after["Kptfile"] == before["Kptfile"]
    again = subprocess.run([kpt, "fn", "render", "--allow-exec"], cwd=package, capture_output=True, text=True,
                           env=path_env(), timeout=180)
    assert again.returncode == 0 and snapshot(package) == after


def test_example_eval_forms(kpt, tmp_path):
    package = example_copy(tmp_path)
    env = path_env()
    result = subprocess.run([kpt, "fn", "eval", ".", "--exec", "kubeadm-audit krm", "--fn-config", "audit.yaml"],
                            cwd=package, capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit-webhook-config-file" in (package / "cluster.yaml").read_text()
    other = example_copy(tmp_path / "kv")
    result = subprocess.run([kpt, "fn", "eval", ".", "--exec", "kubeadm-audit krm", "--", "preset=cis-minimal",
                             "log.path=/var/log/kubernetes/audit/audit.log", "log.maxAge=30", "log.maxBackup=10",
                             "log.maxSize=100"], cwd=other, capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (other / "cluster.yaml").read_text()
    assert "audit-log-maxsize" in text and "audit-webhook-config-file" not in text


def test_malformed_target_fails_and_changes_no_file(kpt, plugin, tmp_path):
    package = make_package(tmp_path)
    text = (package / "cluster-v1beta2.yaml").read_text().replace(
        "        extraArgs:\n        - name: enable-admission-plugins\n          value: NodeRestriction\n"
        "        - name: profiling\n          value: \"false\"\n",
        "        extraArgs:\n          profiling: \"false\"\n")
    (package / "cluster-v1beta2.yaml").write_text(text)
    before = snapshot(package)
    result = run(kpt, "eval", package, "--exec", plugin, "--fn-config", "audit.yaml", cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "KubeadmControlPlane fleet/edge-control-plane" in output and "list of {name, value}" in output
    assert snapshot(package) == before
