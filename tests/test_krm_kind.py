"""The KRM function on a kind ``Cluster`` (kind.x-k8s.io/v1alpha4), checked with kind's own code.

In a ResourceList, through the real kpt (``fn eval --exec``) and through the real
``kubectl kustomize`` legacy exec plugin: inject, a re-run that changes nothing, remove taking out
exactly what was set, the user's own patches, mounts and nodes kept, conflicts, and hostile input
refused with one line naming the resource and the field. kind-check (conformance/kind: kind v0.33's
loader, validation and kubeadm patcher) reads what a user then hands ``kind create cluster``.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import realk8s
import test_krm_imports
from conftest import one_error_line, run_cli
from kubeadm_audit import yamlio
from oracle import ORACLE_VERSIONS, oracle
from pipelines import copy_tls, install_plugin, krm, load_all, resource_list, tool, webhook_config
from test_kustomize import build as kustomize_build
from test_target_kind import kind_check

MANAGED = "kubeadm-audit.dev/managed"
PATH = "internal.config.kubernetes.io/path"

#: A user's kind config, with what kpt and kustomize need (metadata.name) and content of their own.
USER_CLUSTER = {
    "kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4",
    "metadata": {"name": "dev"},
    "networking": {"podSubnet": "10.244.0.0/16"},
    "nodes": [
        {"role": "control-plane", "image": "kindest/node:v1.31.2",
         "extraMounts": [{"hostPath": "/srv/data", "containerPath": "/data"}]},
        {"role": "worker"},
    ],
    "kubeadmConfigPatches": ["kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    profiling: \"false\"\n"],
}


def cluster(**changes) -> dict:
    out = copy.deepcopy(USER_CLUSTER)
    out.update(changes)
    return out


def run_list(items: list, config: dict | None = None, mode: str | None = None, force: bool = False,
             cwd: Path | None = None) -> subprocess.CompletedProcess:
    config = copy.deepcopy(config or webhook_config())
    annotations = {}
    if mode:
        annotations["kubeadm-audit.dev/mode"] = mode
    if force:
        annotations["kubeadm-audit.dev/force"] = "true"
    if annotations:
        config["metadata"]["annotations"] = annotations
    return krm(input=resource_list(items, config), cwd=cwd)


def items_of(result: subprocess.CompletedProcess) -> list:
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["items"]


def kind_cluster(items: list) -> dict:
    (found,) = [i for i in items if i["kind"] == "Cluster"]
    return found


def audit_mounts(node: dict) -> dict:
    return {m["containerPath"]: m for m in node.get("extraMounts", []) if m["hostPath"].startswith("./")}


@pytest.fixture
def tls_dir(tmp_path):
    copy_tls(tmp_path)
    return tmp_path


# --- the ResourceList, in process of the real entry point -------------------------------------

def test_inject_writes_what_generate_target_kind_writes_and_keeps_the_users_content(tls_dir):
    items = items_of(run_list([cluster()], cwd=tls_dir))
    out = kind_cluster(items)
    assert out != USER_CLUSTER                                    # the run changed something
    # the user's own content, as it was
    assert out["networking"] == USER_CLUSTER["networking"] and out["nodes"][1] == {"role": "worker"}
    assert out["kubeadmConfigPatches"][0] == USER_CLUSTER["kubeadmConfigPatches"][0]
    assert out["nodes"][0]["extraMounts"][0] == {"hostPath": "/srv/data", "containerPath": "/data"}
    # what generate --target kind writes for the same AuditConfig
    spec = webhook_config(ca=str(tls_dir / "ca.pem"))["spec"]
    (tls_dir / "audit.yaml").write_text(yaml.safe_dump({**webhook_config(ca=str(tls_dir / "ca.pem")),
                                                        "spec": {**spec, "kubernetesVersion": "v1.31.2"}}))
    generated = run_cli("generate", "--target", "kind", "--config", tls_dir / "audit.yaml", "--out", tls_dir / "b")
    assert generated.returncode == 0, generated.stderr
    want = yaml.safe_load((tls_dir / "b" / "kind-config.yaml").read_text())
    assert out["kubeadmConfigPatches"][1:] == want["kubeadmConfigPatches"]
    assert out["nodes"][0]["extraMounts"][1:] == want["nodes"][0]["extraMounts"]
    assert MANAGED in out["metadata"]["annotations"]
    # the host files the mounts name, as resources
    files = {i["kind"]: i for i in items if i["kind"] != "Cluster"}
    assert set(files) == {"Policy", "Config"}
    assert files["Policy"]["rules"] == yaml.safe_load((tls_dir / "b" / "audit-policy.yaml").read_text())["rules"]
    assert files["Config"]["clusters"] == \
        yaml.safe_load((tls_dir / "b" / "audit-webhook.yaml").read_text())["clusters"]


def test_client_credentials_in_the_emitted_kubeconfig_are_warned_about(tls_dir):
    with_key = webhook_config(clientCertificate="client.pem", clientKey="client-key.pem")
    warned = run_list([cluster()], config=with_key, cwd=tls_dir)
    results = yaml.safe_load(warned.stdout)["results"]
    assert any("client credentials" in r["message"] and r["severity"] == "warning"
               and r["tags"] == {"id": "KT102"} for r in results)
    quiet = yaml.safe_load(run_list([cluster()], cwd=tls_dir).stdout)["results"]
    assert not any("client credentials" in r["message"] for r in quiet)


def test_a_loopback_webhook_is_the_finding_generate_reports(tls_dir):
    loopback = run_list([cluster()], config=webhook_config(server="https://127.0.0.1:9443"), cwd=tls_dir)
    assert loopback.returncode == 0, loopback.stderr
    (found,) = [r for r in yaml.safe_load(loopback.stdout)["results"] if r.get("tags") == {"id": "KT101"}]
    assert found["severity"] == "warning" and "node container" in found["message"]


def test_a_cluster_without_nodes_gets_kinds_default_control_plane_node(tls_dir):
    bare = {k: v for k, v in USER_CLUSTER.items() if k not in ("nodes", "kubeadmConfigPatches")}
    out = kind_cluster(items_of(run_list([bare], cwd=tls_dir)))
    (node,) = out["nodes"]
    assert node["role"] == "control-plane" and len(audit_mounts(node)) == 3
    assert len(out["kubeadmConfigPatches"]) == 1


@pytest.mark.parametrize("start", ["user", "bare"])
def test_rerun_changes_nothing_and_remove_takes_out_exactly_what_was_set(tls_dir, start):
    before = cluster() if start == "user" else \
        {k: v for k, v in USER_CLUSTER.items() if k not in ("nodes", "kubeadmConfigPatches")}
    first = items_of(run_list([before], cwd=tls_dir))
    assert first != [before] and len(first) == 3                  # changed: the Cluster and two files
    second = run_list(first, cwd=tls_dir)
    assert items_of(second) == first
    assert not yaml.safe_load(second.stdout).get("results")
    removed = items_of(run_list(first, mode="remove", cwd=tls_dir))
    assert removed == [before]


def test_a_changed_configuration_converges(tls_dir):
    first = items_of(run_list([cluster()], cwd=tls_dir))
    config = webhook_config()
    del config["spec"]["webhook"]
    config["spec"]["log"]["maxAge"] = 7
    second = items_of(run_list(first, config=config, cwd=tls_dir))
    out = kind_cluster(second)
    assert [i["kind"] for i in second] == ["Cluster", "Policy"]        # the kubeconfig went with the webhook
    assert "/etc/kubernetes/audit/audit-webhook.yaml" not in audit_mounts(out["nodes"][0])
    patch = yaml.safe_load(out["kubeadmConfigPatches"][-1])
    assert patch["apiServer"]["extraArgs"]["audit-log-maxage"] == "7"
    assert len(out["kubeadmConfigPatches"]) == 2                       # replaced in place, not added
    assert items_of(run_list(second, config=config, mode="remove", cwd=tls_dir)) == [cluster()]


def test_a_users_mount_at_an_audit_path_is_a_conflict_unless_forced(tls_dir):
    theirs = cluster()
    theirs["nodes"][0]["extraMounts"].append({"hostPath": "/home/me/policy.yaml",
                                              "containerPath": "/etc/kubernetes/audit/audit-policy.yaml"})
    refused = run_list([theirs], cwd=tls_dir)
    assert refused.returncode == 1
    line = one_error_line(refused)
    assert "Cluster dev" in line and "nodes[0].extraMounts" in line and "kubeadm-audit.dev/force" in line
    assert yaml.safe_load(refused.stdout)["items"] == [theirs]
    forced = kind_cluster(items_of(run_list([theirs], force=True, cwd=tls_dir)))
    assert audit_mounts(forced["nodes"][0])["/etc/kubernetes/audit/audit-policy.yaml"]["hostPath"] \
        == "./audit-policy.yaml"
    assert "/home/me/policy.yaml" not in str(forced["nodes"])


def test_another_patch_setting_an_audit_flag_is_a_conflict_unless_forced(tls_dir):
    theirs = cluster(kubeadmConfigPatches=["kind: ClusterConfiguration\napiServer:\n  extraArgs:\n"
                                           "    audit-log-maxage: \"3\"\n"])
    refused = run_list([theirs], cwd=tls_dir)
    assert refused.returncode == 1
    assert "kubeadmConfigPatches[0]" in one_error_line(refused) and "audit-log-maxage=3" in refused.stderr
    forced_items = items_of(run_list([theirs], force=True, cwd=tls_dir))
    forced = kind_cluster(forced_items)
    assert forced["kubeadmConfigPatches"][0] == theirs["kubeadmConfigPatches"][0]   # theirs kept, ours after it
    assert yaml.safe_load(forced["kubeadmConfigPatches"][1])["apiServer"]["extraArgs"]["audit-log-maxage"] == "30"
    # settled: a re-run without force converges; remove takes out ours and leaves theirs
    again = run_list(forced_items, cwd=tls_dir)
    assert items_of(again) == forced_items and not yaml.safe_load(again.stdout).get("results")
    assert items_of(run_list(forced_items, mode="remove", cwd=tls_dir)) == [theirs]
    # a new conflicting patch after ours is a conflict again
    later = copy.deepcopy(forced_items)
    kind_cluster(later)["kubeadmConfigPatches"].append(theirs["kubeadmConfigPatches"][0].replace('"3"', '"4"'))
    assert run_list(later, cwd=tls_dir).returncode == 1


def test_a_node_patch_kind_applies_after_ours_is_a_conflict_force_cannot_win(tls_dir):
    theirs = cluster()
    theirs["nodes"][0]["kubeadmConfigPatches"] = ["kind: ClusterConfiguration\napiServer:\n  extraVolumes:\n"
                                                  "  - name: mine\n    hostPath: /srv\n    mountPath: /srv\n"]
    for force in (False, True):
        refused = run_list([theirs], force=force, cwd=tls_dir)
        assert refused.returncode == 1
        line = one_error_line(refused)
        assert "nodes[0].kubeadmConfigPatches[0]" in line and "cannot win even when forced" in line


def test_someone_elses_identical_patch_and_mounts_agree_and_stay_theirs(tls_dir):
    injected = kind_cluster(items_of(run_list([cluster()], cwd=tls_dir)))
    pasted = copy.deepcopy(injected)
    del pasted["metadata"]["annotations"]                  # as if pasted from generate --target kind
    again = run_list([pasted], cwd=tls_dir)
    out = kind_cluster(items_of(again))
    assert {k: v for k, v in out.items() if k != "metadata"} == {k: v for k, v in pasted.items() if k != "metadata"}
    removed = kind_cluster(items_of(run_list([out], mode="remove", cwd=tls_dir)))
    assert removed == pasted                                 # never set by the function: never removed


def test_every_control_plane_node_gets_the_mounts(tls_dir):
    ha = cluster(nodes=[{"role": "control-plane"}, {"role": "control-plane"}, {"role": "worker"}])
    out = kind_cluster(items_of(run_list([ha], cwd=tls_dir)))
    assert [len(audit_mounts(node)) for node in out["nodes"]] == [3, 3, 0]
    assert items_of(run_list(items_of(run_list([ha], cwd=tls_dir)), mode="remove", cwd=tls_dir)) == [ha]


HOSTILE = {
    "nodes not a list": ({"nodes": {"role": "control-plane"}}, "nodes"),
    "a node not a mapping": ({"nodes": ["control-plane"]}, "nodes[0]"),
    "a role not a string": ({"nodes": [{"role": ["control-plane"]}]}, "nodes[0].role"),
    "extraMounts not a list": ({"nodes": [{"role": "control-plane", "extraMounts": "/data"}]},
                               "nodes[0].extraMounts"),
    "a mount not a mapping": ({"nodes": [{"role": "control-plane", "extraMounts": ["/data"]}]},
                              "nodes[0].extraMounts[0]"),
    "kubeadmConfigPatches not a list": ({"kubeadmConfigPatches": "kind: ClusterConfiguration"},
                                        "kubeadmConfigPatches"),
    "a patch not a string": ({"kubeadmConfigPatches": [{"kind": "ClusterConfiguration"}]},
                             "kubeadmConfigPatches[0]"),
    "a node patch not a string": ({"nodes": [{"role": "control-plane", "kubeadmConfigPatches": [3]}]},
                                  "nodes[0].kubeadmConfigPatches[0]"),
    "a patch not YAML": ({"kubeadmConfigPatches": ["kind: [unclosed"]}, "kubeadmConfigPatches[0]"),
    "an old kind API": ({"apiVersion": "kind.x-k8s.io/v1alpha3"}, "apiVersion"),
    "no control-plane node": ({"nodes": [{"role": "worker"}]}, "nodes"),
    "no metadata.name": ({"metadata": {"namespace": "x"}}, "metadata.name"),
    "an unreadable ownership record": ({"metadata": {"name": "dev", "annotations": {MANAGED: "{not json"}}},
                                       f"metadata.annotations.{MANAGED}"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_cluster_is_one_clear_error_and_nothing_changes(tls_dir, case):
    changes, field = HOSTILE[case]
    bad = cluster(**changes)
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}, "data": {"a": "b"}}
    result = run_list([bad, other], cwd=tls_dir)
    assert result.returncode == 2
    line = one_error_line(result)
    named = "Cluster x/" if case == "no metadata.name" else "Cluster dev"
    assert named in line and field in line, line
    out = yaml.safe_load(result.stdout)
    assert out["items"] == [bad, other]                               # nothing written
    (error,) = [r for r in out["results"] if r["severity"] == "error"]
    assert error["resourceRef"]["kind"] == "Cluster" and error["field"]["path"] == field


def test_two_clusters_in_one_directory_would_share_the_files(tls_dir):
    one = cluster()
    one["metadata"]["annotations"] = {PATH: "kind/a.yaml"}
    two = copy.deepcopy(one)
    two["metadata"] = {"name": "other", "annotations": {PATH: "kind/b.yaml"}}
    result = run_list([one, two], cwd=tls_dir)
    assert result.returncode == 2 and "kind/audit-policy.yaml" in one_error_line(result)


def test_the_one_kcp_path_never_imports_the_kind_handler():
    modules = test_krm_imports.imported_modules(test_krm_imports.ENTRY_POINTS["installed plugin"],
                                                test_krm_imports.ONE_RESOURCE)
    assert "kubeadm_audit.krm" in modules and "kubeadm_audit.transform_kind" not in modules
    with_kind = test_krm_imports.ONE_RESOURCE.replace("functionConfig:", (
        "- apiVersion: kind.x-k8s.io/v1alpha4\n  kind: Cluster\n  metadata:\n    name: dev\n"
        "functionConfig:"))
    assert "kubeadm_audit.transform_kind" in test_krm_imports.imported_modules(
        test_krm_imports.ENTRY_POINTS["installed plugin"], with_kind, output=("kind: Cluster", "extraMounts"))


# --- kpt, then kind's own loader on what the user hands kind ----------------------------------

@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    return install_plugin(tmp_path_factory.mktemp("plugins"))


def kpt_eval(package: Path, cwd: Path, plugin: Path, config: dict) -> subprocess.CompletedProcess:
    (cwd / "audit.yaml").write_text(yaml.safe_dump(config))
    return subprocess.run([tool("kpt"), "fn", "eval", str(package), "--exec", str(plugin), "--fn-config",
                           "audit.yaml"], capture_output=True, text=True, cwd=cwd, timeout=180)


def snapshot(package: Path) -> dict:
    return {str(p.relative_to(package)): p.read_text() for p in sorted(package.rglob("*")) if p.is_file()}


USER_FILE = "# my laptop cluster: kpt keeps this comment\n" + yamlio.dump(USER_CLUSTER)


def test_kpt_eval_then_kind_create_cluster_finds_every_file(tmp_path, plugin):
    copy_tls(tmp_path)
    package = tmp_path / "pkg"
    (package / "clusters").mkdir(parents=True)
    (package / "clusters" / "dev.yaml").write_text(USER_FILE)
    result = kpt_eval(package, tmp_path, plugin, webhook_config())
    assert result.returncode == 0, result.stdout + result.stderr
    first = snapshot(package)
    assert set(first) == {"clusters/dev.yaml", "clusters/audit-policy.yaml", "clusters/audit-webhook.yaml"}
    assert first["clusters/dev.yaml"] != USER_FILE and first["clusters/dev.yaml"].startswith("# my laptop cluster")
    # what the user runs next, from the Cluster's directory
    clusters = package / "clusters"
    stripped = run_cli("krm", "--strip-kubeadm-metadata", input=first["clusters/dev.yaml"])
    assert stripped.returncode == 0, stripped.stderr
    (clusters / "kind.yaml").write_text(stripped.stdout)
    found = kind_check(clusters / "kind.yaml", clusters, "v1.31.2")
    mounts = {m["containerPath"]: m for m in found["nodes"][0]["extraMounts"]}
    for node_path, name in (("/etc/kubernetes/audit/audit-policy.yaml", "audit-policy.yaml"),
                            ("/etc/kubernetes/audit/audit-webhook.yaml", "audit-webhook.yaml")):
        assert mounts[node_path]["absHostPath"] == str(clusters / name) and mounts[node_path]["readOnly"]
        assert (clusters / name).is_file()
    assert mounts["/data"]["absHostPath"] == "/srv/data"                          # the user's own mount
    kubeadm = found["kubeadm"]["v1.31.2"]
    assert "audit-webhook-config-file: /etc/kubernetes/audit/audit-webhook.yaml" in kubeadm
    assert 'profiling: "false"' in kubeadm                                       # the user's own patch
    # the files as kube-apiserver reads them, metadata and all: the policy with k8s.io/apiserver's
    # own loader (Policy has ObjectMeta), the kubeconfig with client-go's (the real kubectl's)
    for version in ORACLE_VERSIONS:
        loaded = oracle(version).policy(first["clusters/audit-policy.yaml"])
        assert loaded["loaded"] and not loaded["warnings"], (version, loaded)
    kubectl_binary = realk8s.binary("kubectl", realk8s.pinned("KUBERNETES_V1BETA4"))
    view = subprocess.run([str(kubectl_binary), "config", "view", "--raw", "-o", "json", "--kubeconfig",
                           str(clusters / "audit-webhook.yaml")], capture_output=True, text=True, timeout=60)
    assert view.returncode == 0 and not view.stderr, view.stderr
    assert json.loads(view.stdout)["clusters"][0]["cluster"]["server"] == "https://10.0.0.5:8080"
    (clusters / "kind.yaml").unlink()
    # again: nothing changes; remove: back to the user's file byte for byte
    assert kpt_eval(package, tmp_path, plugin, webhook_config()).returncode == 0
    assert snapshot(package) == first
    removing = webhook_config()
    removing["metadata"]["annotations"] = {"kubeadm-audit.dev/mode": "remove"}
    result = kpt_eval(package, tmp_path, plugin, removing)
    assert result.returncode == 0, result.stdout + result.stderr
    assert snapshot(package) == {"clusters/dev.yaml": USER_FILE}


def test_kpt_refuses_a_hostile_cluster_and_writes_nothing(tmp_path, plugin):
    copy_tls(tmp_path)
    package = tmp_path / "pkg"
    package.mkdir()
    bad = USER_FILE.replace("kubeadmConfigPatches:\n- ", "kubeadmConfigPatches:\n- 3\n- ")
    (package / "dev.yaml").write_text(bad)
    result = kpt_eval(package, tmp_path, plugin, webhook_config())
    assert result.returncode != 0
    assert "Cluster dev" in result.stdout + result.stderr and "kubeadmConfigPatches[0]" in result.stdout + result.stderr
    assert snapshot(package) == {"dev.yaml": bad}


def test_kind_reads_the_kind_config_kind_made_for_each_release(tmp_path):
    """kind's loader, validation and kubeadm patcher take the stripped output for every pinned release."""
    copy_tls(tmp_path)
    items = items_of(run_list([cluster()], cwd=tmp_path))
    text = run_cli("krm", "--strip-kubeadm-metadata", input=yaml.safe_dump(kind_cluster(items)))
    assert text.returncode == 0
    (tmp_path / "kind.yaml").write_text(text.stdout)
    releases = [realk8s.pinned(key) for key in ("KUBERNETES_V1BETA3", "KUBERNETES_V1BETA4")]
    found = kind_check(tmp_path / "kind.yaml", tmp_path, *releases)
    for release in releases:
        assert "audit-policy-file: /etc/kubernetes/audit/audit-policy.yaml" in found["kubeadm"][release] \
            or "name: audit-policy-file" in found["kubeadm"][release]


# --- kubectl kustomize, the legacy exec plugin ------------------------------------------------

@pytest.fixture(scope="module")
def plugin_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("kustomize-plugins")
    install_plugin(home)
    return home


def kustomization(directory: Path, resource: dict, config: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    copy_tls(directory)
    (directory / "dev.yaml").write_text(yaml.safe_dump(resource, sort_keys=False))
    (directory / "audit.yaml").write_text(yaml.safe_dump(config))
    (directory / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["dev.yaml"],
                                                                  "transformers": ["audit.yaml"]}))
    return directory


def kubectl() -> str:
    return tool("kubectl")


def test_kustomize_injects_rebuilds_idempotently_and_removes(tmp_path, plugin_home):
    first_dir = kustomization(tmp_path / "a", cluster(), webhook_config())
    first = load_all(kustomize_build(kubectl(), first_dir, plugin_home).stdout)
    assert sorted(d["kind"] for d in first) == ["Cluster", "Config", "Policy"]
    out = kind_cluster(first)
    assert out != USER_CLUSTER and len(audit_mounts(out["nodes"][0])) == 3
    # the build's output through the same transformer again: nothing changes
    again_dir = tmp_path / "b"
    again_dir.mkdir()
    (again_dir / "all.yaml").write_text(yaml.safe_dump_all(first, sort_keys=False))
    kustomization(again_dir, cluster(), webhook_config())
    (again_dir / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["all.yaml"],
                                                                  "transformers": ["audit.yaml"]}))
    assert load_all(kustomize_build(kubectl(), again_dir, plugin_home).stdout) == first
    removing = webhook_config()
    removing["metadata"]["annotations"] = {"kubeadm-audit.dev/mode": "remove"}
    (again_dir / "audit.yaml").write_text(yaml.safe_dump(removing))
    assert load_all(kustomize_build(kubectl(), again_dir, plugin_home).stdout) == [USER_CLUSTER]


def test_kustomize_fails_the_build_on_a_hostile_cluster(tmp_path, plugin_home):
    directory = kustomization(tmp_path, cluster(nodes={"role": "control-plane"}), webhook_config())
    result = kustomize_build(kubectl(), directory, plugin_home, check=False)
    assert result.returncode != 0 and "Cluster dev" in result.stderr and "nodes" in result.stderr
    assert result.stdout == ""


# --- examples/kind-kpt, run as its README says -------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "kind-kpt"


def test_kind_kpt_example_as_written(tmp_path):
    """The README's block, with a stand-in ``kind`` that hands the config to kind's own loader and
    patcher from the directory it is run in (kind itself needs docker)."""
    import re
    import sys

    tool("kpt")
    (block,) = re.findall(r"^```sh\n(.*?)^```", (EXAMPLE / "README.md").read_text(), re.M | re.S)
    checker = realk8s.binary("kind-check", realk8s.pinned("KIND"))
    stand_in = tmp_path / "bin" / "kind"
    stand_in.parent.mkdir()
    record = tmp_path / "kind-run.json"
    stand_in.write_text("#!/bin/sh\n"
                        '[ "$1 $2 $3" = "create cluster --config" ] || { echo "unexpected: $*" >&2; exit 2; }\n'
                        f'"{checker}" "$4" v1.35.0 > "{record}" && printf "%s" "$PWD" > "{record}.cwd"\n')
    stand_in.chmod(0o755)
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": os.pathsep.join([str(stand_in.parent), bindir, os.environ.get("PATH", "")])}
    copy_dir = tmp_path / "kind-audit"
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.replace("/tmp/kind-audit", str(copy_dir))],
                            cwd=EXAMPLE.parents[1], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads(record.read_text())
    assert "error" not in found, found
    ran_in = Path((tmp_path / "kind-run.json.cwd").read_text())
    assert ran_in == copy_dir / "kind"
    mounts = {m["containerPath"]: Path(m["absHostPath"]) for m in found["nodes"][0]["extraMounts"]}
    assert mounts["/etc/kubernetes/audit/audit-policy.yaml"].is_file()
    assert mounts["/etc/kubernetes/audit/audit-webhook.yaml"].is_file()
    assert "audit-webhook-config-file: /etc/kubernetes/audit/audit-webhook.yaml" in found["kubeadm"]["v1.35.0"]
    # as the README goes on: again changes nothing; remove restores the package
    (copy_dir / "kind" / "dev.kind.yaml").unlink()
    after = snapshot(copy_dir)
    kpt = [tool("kpt"), "fn", "eval", "kind", "--exec", "kubeadm-audit krm", "--fn-config", "audit.yaml"]
    assert subprocess.run(kpt, cwd=copy_dir, env=env, capture_output=True, timeout=180).returncode == 0
    assert snapshot(copy_dir) == after
    config = yaml.safe_load((copy_dir / "audit.yaml").read_text())
    config["metadata"]["annotations"]["kubeadm-audit.dev/mode"] = "remove"
    (copy_dir / "audit.yaml").write_text(yaml.safe_dump(config))
    assert subprocess.run(kpt, cwd=copy_dir, env=env, capture_output=True, timeout=180).returncode == 0
    assert snapshot(copy_dir / "kind") == snapshot(EXAMPLE / "kind")
