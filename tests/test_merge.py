"""kubeadm-config merge: the shared merge function and the command on realistic files."""
from __future__ import annotations

import copy
import os
import shutil
import stat
import subprocess
import sys

import pytest
import yaml

from kubeadm_audit import yamlio
from kubeadm_audit.errors import ConflictError, InputError
from kubeadm_audit.targets.kubeadm import merge
from kubeadm_audit.volumes import HostPathMount

HERE = os.path.dirname(os.path.abspath(__file__))
EXISTING = os.path.join(HERE, "fixtures", "existing")
TLS = os.path.join(HERE, "fixtures", "tls")

ARGS = (("audit-policy-file", "/etc/kubernetes/audit/audit-policy.yaml"),
        ("audit-log-path", "/var/log/kubernetes/audit/audit.log"),
        ("audit-log-maxage", "30"))
MOUNTS = (HostPathMount("audit-config", "/etc/kubernetes/audit", "/etc/kubernetes/audit", True, "Directory"),
          HostPathMount("audit-log", "/var/log/kubernetes/audit", "/var/log/kubernetes/audit", False,
                        "DirectoryOrCreate"))


def run(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubeadm_audit", *args], capture_output=True, text=True, cwd=cwd)


def copy_fixture(tmp_path, name: str) -> str:
    target = tmp_path / name
    shutil.copy(os.path.join(EXISTING, name), target)
    return str(target)


def read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


# --- the shared function ---------------------------------------------------------------

def test_map_shape_adds_after_existing_and_second_run_is_a_no_op():
    cluster = {"apiServer": {"extraArgs": {"profiling": "false"}}}
    changes = merge.merge_api_server(cluster, ARGS, MOUNTS, "map")
    assert list(cluster["apiServer"]["extraArgs"]) == ["profiling", "audit-policy-file", "audit-log-path",
                                                       "audit-log-maxage"]
    assert cluster["apiServer"]["extraArgs"]["audit-log-maxage"] == "30"
    assert [v["name"] for v in cluster["apiServer"]["extraVolumes"]] == ["audit-config", "audit-log"]
    assert len(changes) == 5
    before = copy.deepcopy(cluster)
    assert merge.merge_api_server(cluster, ARGS, MOUNTS, "map") == []
    assert cluster == before


def test_list_shape_keeps_existing_entries_and_creates_nothing_empty():
    cluster = {"apiServer": {"extraArgs": [{"name": "audit-log-maxage", "value": "30"},
                                           {"name": "profiling", "value": "false"}]}}
    merge.merge_api_server(cluster, ARGS, (), "list")
    names = [e["name"] for e in cluster["apiServer"]["extraArgs"]]
    assert names == ["audit-log-maxage", "profiling", "audit-policy-file", "audit-log-path"]
    assert "extraVolumes" not in cluster["apiServer"]      # CAPI v1beta2 refuses empty lists
    empty: dict = {}
    assert merge.merge_api_server(empty, (), (), "list") == [] and empty == {}


def test_conflicting_flag_names_both_values_and_changes_nothing():
    cluster = {"apiServer": {"extraArgs": [{"name": "audit-log-maxage", "value": "7"},
                                           {"name": "audit-log-path", "value": "/var/log/audit.log"}]}}
    before = copy.deepcopy(cluster)
    with pytest.raises(ConflictError) as info:
        merge.merge_api_server(cluster, ARGS, MOUNTS, "list")
    assert "'7'" in str(info.value) and "'30'" in str(info.value)
    assert "'/var/log/audit.log'" in str(info.value) and "\n" not in str(info.value)
    assert cluster == before


def test_force_replaces_in_place_and_collapses_duplicates():
    cluster = {"apiServer": {"extraArgs": [{"name": "audit-log-maxage", "value": "7"},
                                           {"name": "profiling", "value": "false"},
                                           {"name": "audit-log-maxage", "value": "9"}]}}
    changes = merge.merge_api_server(cluster, ARGS[2:], (), "list", force=True)
    assert cluster["apiServer"]["extraArgs"] == [{"name": "audit-log-maxage", "value": "30"},
                                                 {"name": "profiling", "value": "false"}]
    assert [str(c) for c in changes] == ["apiServer.extraArgs: replaced audit-log-maxage=7, 9 with 30"]
    assert [(c.object, c.field, c.action, c.value) for c in changes] == \
        [("apiServer.extraArgs", "audit-log-maxage", "replaced", "30")]


def test_unquoted_existing_value_is_quoted_for_kubeadm():
    cluster = {"apiServer": {"extraArgs": {"audit-log-maxage": 30}}}
    changes = merge.merge_api_server(cluster, ARGS[2:], (), "map")
    assert cluster["apiServer"]["extraArgs"]["audit-log-maxage"] == "30" and "quoted" in changes[0]


@pytest.mark.parametrize("shape, extra", [("map", [{"name": "a", "value": "b"}]), ("list", {"a": "b"})])
def test_wrong_extra_args_shape_is_an_input_error(shape, extra):
    with pytest.raises(InputError) as info:
        merge.merge_api_server({"apiServer": {"extraArgs": extra}}, ARGS, (), shape)
    assert info.value.field == "apiServer.extraArgs"


def test_same_mount_under_another_name_is_already_there():
    cluster = {"apiServer": {"extraVolumes": [{"name": "audit", "hostPath": "/etc/kubernetes/audit/",
                                               "mountPath": "/etc/kubernetes/audit", "readOnly": True,
                                               "pathType": "Directory"}]}}
    changes = merge.merge_api_server(cluster, (), MOUNTS[:1], "list")
    assert changes == [] and len(cluster["apiServer"]["extraVolumes"]) == 1


def test_clashing_volume_is_a_conflict_unless_forced():
    clash = {"name": "logs", "hostPath": "/data/audit", "mountPath": "/var/log/kubernetes/audit"}
    cluster = {"apiServer": {"extraVolumes": [dict(clash)]}}
    with pytest.raises(ConflictError) as info:
        merge.merge_api_server(cluster, (), MOUNTS, "map")
    assert "/data/audit" in str(info.value) and "audit-log" in str(info.value)
    assert cluster["apiServer"]["extraVolumes"] == [clash]
    merge.merge_api_server(cluster, (), MOUNTS, "map", force=True)
    assert [v["name"] for v in cluster["apiServer"]["extraVolumes"]] == ["audit-log", "audit-config"]
    assert cluster["apiServer"]["extraVolumes"][0]["hostPath"] == "/var/log/kubernetes/audit"


def test_round_trip_nodes_keep_comments_when_merged_in_place():
    text = "apiServer:\n  extraArgs:\n    # humans log in with OIDC\n    oidc-client-id: kubernetes  # app id\n"
    stream = yamlio.RoundTrip(text)
    merge.merge_api_server(stream.documents[0], ARGS[:1], (), "map")
    out = stream.dump()
    assert "# humans log in with OIDC" in out and "# app id" in out
    assert out.index("oidc-client-id") < out.index("audit-policy-file")


@pytest.mark.parametrize("api, expected", [("kubeadm.k8s.io/v1beta3", "v1beta3"),
                                           ("kubeadm.k8s.io/v1beta4", "v1beta4")])
def test_kubeadm_api(api, expected):
    assert merge.kubeadm_api({"apiVersion": api}, "f.yaml") == expected


@pytest.mark.parametrize("api, words", [("kubeadm.k8s.io/v1beta2", "kubeadm config migrate"),
                                        ("kubeadm.k8s.io/v1beta1", "no longer read"),
                                        ("kubeadm.k8s.io/v9", "unsupported"),
                                        ("cluster.x-k8s.io/v1beta1", "not a kubeadm document")])
def test_kubeadm_api_refuses_others(api, words):
    with pytest.raises(InputError) as info:
        merge.kubeadm_api({"apiVersion": api}, "f.yaml")
    assert words in str(info.value) and info.value.exit_code == 2


# --- the command -------------------------------------------------------------------------

def removed_lines(before: str, after: str) -> list:
    """Lines of ``before`` the merge changed or dropped (a merge only adds)."""
    import difflib

    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line.startswith("- ")]


def _docs_except_cluster(text: str) -> list:
    return [d for d in yaml.safe_load_all(text) if d and d.get("kind") != "ClusterConfiguration"]


def test_v1beta4_file_to_stdout_keeps_everything_else_and_leaves_the_file(tmp_path):
    path = copy_fixture(tmp_path, "kubeadm-config-v1beta4.yaml")
    original = read(path)
    result = run("kubeadm-config", "merge", path)
    assert result.returncode == 0, result.stderr
    assert read(path) == original
    out = result.stdout
    for comment in ("# Cluster \"prod-eu1\"", "# control-plane-1", "# keepalived VIP", "# OIDC login for humans",
                    "# kubelet settings shared by every node", "# needs the ip_vs modules"):
        assert comment in out
    assert 'controlPlaneEndpoint: "cp.example.internal:6443"' in out and 'serviceSubnet: "10.96.0.0/12"' in out
    assert _docs_except_cluster(out) == _docs_except_cluster(original)
    assert removed_lines(original, out) == []
    cluster = next(d for d in yaml.safe_load_all(out) if d["kind"] == "ClusterConfiguration")
    args = cluster["apiServer"]["extraArgs"]
    assert args[:3] == [{"name": "oidc-issuer-url", "value": "https://sso.example.internal/realms/k8s"},
                        {"name": "oidc-client-id", "value": "kubernetes"},
                        {"name": "profiling", "value": "false"}]
    assert {"name": "audit-log-maxage", "value": "30"} in args
    assert [v["name"] for v in cluster["apiServer"]["extraVolumes"]] == ["oidc-ca", "audit-config", "audit-log"]
    assert "merged: apiServer.extraArgs: added audit-policy-file" in result.stderr


def test_in_place_is_idempotent_and_keeps_the_mode(tmp_path):
    path = copy_fixture(tmp_path, "kubeadm-config-v1beta4.yaml")
    os.chmod(path, 0o600)
    original = read(path)
    first = run("kubeadm-config", "merge", path, "--in-place")
    assert first.returncode == 0 and "change(s)" in first.stdout
    merged = read(path)
    assert merged != original and "audit-policy-file" in merged
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = run("kubeadm-config", "merge", path, "--in-place")
    assert second.returncode == 0 and "no change" in second.stdout
    assert read(path) == merged
    assert sorted(os.listdir(tmp_path)) == ["kubeadm-config-v1beta4.yaml"]


def test_v1beta3_keeps_the_map_shape_and_the_hand_set_value(tmp_path):
    path = copy_fixture(tmp_path, "kubeadm-config-v1beta3.yaml")
    result = run("kubeadm-config", "merge", path)
    assert result.returncode == 0, result.stderr
    assert 'audit-log-maxage: "30"    # set by hand last year' in result.stdout
    assert "# pinned until the Q3 upgrade" in result.stdout
    assert removed_lines(read(path), result.stdout) == []
    cluster = next(d for d in yaml.safe_load_all(result.stdout) if d["kind"] == "ClusterConfiguration")
    extra = cluster["apiServer"]["extraArgs"]
    assert isinstance(extra, dict) and list(extra)[:3] == ["anonymous-auth", "profiling", "audit-log-maxage"]
    assert all(isinstance(v, str) for v in extra.values())
    assert extra["audit-log-maxbackup"] == "10"
    assert "timeoutForControlPlane" in cluster["apiServer"]


def test_configmap_keeps_the_block_string_and_metadata(tmp_path):
    path = copy_fixture(tmp_path, "kubeadm-config-cm.yaml")
    result = run("kubeadm-config", "merge", path, "--in-place")
    assert result.returncode == 0, result.stderr
    text = read(path)
    assert removed_lines(read(os.path.join(EXISTING, "kubeadm-config-cm.yaml")), text) == ["-     apiServer: {}"]
    assert "  ClusterConfiguration: |\n    apiServer:\n      extraArgs:\n      - name: audit-policy-file" in text
    cm = yaml.safe_load(text)
    assert cm["metadata"]["resourceVersion"] == "231" and cm["metadata"]["name"] == "kubeadm-config"
    inner = yaml.safe_load(cm["data"]["ClusterConfiguration"])
    assert inner["networking"]["podSubnet"] == "10.244.0.0/16"
    assert {"name": "audit-log-path", "value": "/var/log/kubernetes/audit/audit.log"} in inner["apiServer"]["extraArgs"]
    again = run("kubeadm-config", "merge", path, "--in-place")
    assert "no change" in again.stdout and read(path) == text


def test_configmap_from_stdin(tmp_path):
    with open(os.path.join(EXISTING, "kubeadm-config-cm.yaml"), encoding="utf-8") as handle:
        result = subprocess.run([sys.executable, "-m", "kubeadm_audit", "kubeadm-config", "merge", "-"],
                                stdin=handle, capture_output=True, text=True)
    assert result.returncode == 0 and "audit-config" in yaml.safe_load(result.stdout)["data"]["ClusterConfiguration"]


def test_conflict_exits_1_naming_both_values_and_leaves_the_file(tmp_path):
    path = copy_fixture(tmp_path, "kubeadm-config-v1beta3.yaml")
    original = read(path)
    result = run("kubeadm-config", "merge", path, "--in-place", "--log-maxage", "90")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "'30'" in result.stderr and "'90'" in result.stderr
    assert "Traceback" not in result.stderr and read(path) == original
    forced = run("kubeadm-config", "merge", path, "--in-place", "--log-maxage", "90", "--force")
    assert forced.returncode == 0
    assert 'audit-log-maxage: "90"    # set by hand last year' in read(path)


def test_audit_flag_kube_apiserver_would_refuse_is_refused(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n"
                    "  extraArgs:\n  - name: audit-log-format\n    value: xml\n")
    result = run("kubeadm-config", "merge", str(path), "--in-place")
    assert result.returncode == 1 and "audit-log-format" in result.stderr and "xml" in result.stderr
    assert "value: xml" in path.read_text() and "audit-policy-file" not in path.read_text()


def test_kubernetes_version_comes_from_the_file(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.37.0\n")
    result = run("kubeadm-config", "merge", str(path))
    assert result.returncode == 0 and "v1beta3 was removed in Kubernetes 1.37" in result.stderr
    pinned = run("kubeadm-config", "merge", str(path), "--kubernetes-version", "v1.30.2")
    assert "removed" not in pinned.stderr


def test_init_only_file_gets_a_cluster_configuration_and_patch_clash_is_reported(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("# node 1\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\npatches:\n"
                    "  directory: /etc/kubernetes/kubeadm-audit/patches\n")
    result = run("kubeadm-config", "merge", str(path))
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["InitConfiguration", "ClusterConfiguration"]
    assert docs[1]["apiVersion"] == "kubeadm.k8s.io/v1beta4" and docs[1]["apiServer"]["extraVolumes"]
    assert "every audit mount twice" in result.stderr


def test_webhook_config_merges_all_webhook_flags(tmp_path):
    path = copy_fixture(tmp_path, "kubeadm-config-cm.yaml")
    result = run("kubeadm-config", "merge", path, "--preset", "zeron", "--webhook-server", "https://10.0.0.5:8080",
                 "--ca-file", os.path.join(TLS, "ca.pem"))
    assert result.returncode == 0, result.stderr
    inner = yaml.safe_load(yaml.safe_load(result.stdout)["data"]["ClusterConfiguration"])
    names = [a["name"] for a in inner["apiServer"]["extraArgs"]]
    assert "audit-webhook-config-file" in names and "audit-webhook-batch-max-size" in names
    assert result.stderr.count("caps delivery") == 1


@pytest.mark.parametrize("content, words", [
    (None, "v1beta2"),
    ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n---\n"
     "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n", "2 ClusterConfiguration documents"),
    ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  extraArgs: [\n",
     "malformed YAML"),
    ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  extraArgs:\n    a: b\n",
     "apiServer.extraArgs: expected a list"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubeadm-config\ndata:\n  other: x\n",
     "data.ClusterConfiguration"),
    ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n", "no kubeadm configuration"),
])
def test_bad_input_exits_2_with_one_line_and_the_file_untouched(tmp_path, content, words):
    if content is None:
        path = copy_fixture(tmp_path, "kubeadm-config-v1beta2.yaml")
    else:
        path = str(tmp_path / "cfg.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
    original = read(path)
    result = run("kubeadm-config", "merge", path, "--in-place")
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and path in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert read(path) == original and os.listdir(tmp_path) == [os.path.basename(path)]


def test_the_existing_cluster_example_merges_as_its_readme_says():
    example = os.path.join(os.path.dirname(HERE), "examples", "existing-cluster")
    result = run("kubeadm-config", "merge", os.path.join(example, "kubeadm-config-cm.yaml"),
                 "--config", os.path.join(example, "audit.yaml"))
    assert result.returncode == 0, result.stderr
    inner = yaml.safe_load(yaml.safe_load(result.stdout)["data"]["ClusterConfiguration"])
    assert {"name": "audit-log-maxbackup", "value": "10"} in inner["apiServer"]["extraArgs"]
    drift = run("manifest", "check", os.path.join(example, "kube-apiserver.yaml"),
                "--config", os.path.join(example, "audit.yaml"))
    assert drift.returncode == 1
    assert "drift: --audit-policy-file=/etc/kubernetes/audit/audit-policy.yaml" in drift.stdout


def test_unpinned_kubernetes_version_falls_back_with_a_warning(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: stable-1\n")
    result = run("kubeadm-config", "merge", str(path))
    assert result.returncode == 0 and "stable-1" in result.stderr and "validating for Kubernetes" in result.stderr


def test_v1beta3_configmap_gets_the_map_shape(tmp_path):
    text = read(os.path.join(EXISTING, "kubeadm-config-cm.yaml")).replace(
        "kubeadm.k8s.io/v1beta4", "kubeadm.k8s.io/v1beta3").replace("v1.34.2", "v1.30.4")
    path = tmp_path / "cm.yaml"
    path.write_text(text)
    result = run("kubeadm-config", "merge", str(path))
    assert result.returncode == 0, result.stderr
    inner = yaml.safe_load(yaml.safe_load(result.stdout)["data"]["ClusterConfiguration"])
    assert inner["apiServer"]["extraArgs"]["audit-log-maxsize"] == "100"
    assert "removed" not in result.stderr
