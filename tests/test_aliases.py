"""Shared YAML nodes: an edit never writes through an alias (issue 10.1).

When ``apiServer.extraArgs`` (or extraVolumes, or apiServer itself) is an anchor that the
controller-manager or scheduler also use, or comes in through ``<<`` merge keys, the audit
flags must reach kube-apiserver only: the node being edited is un-shared, and everything
else keeps exactly its values. Checked for all three entry points: ``kubeadm-config merge``
on a kubeadm file, on the ConfigMap's embedded ClusterConfiguration, and ``krm``.
"""
from __future__ import annotations

import textwrap

import pytest
import yaml

from conftest import run_cli
from pipelines import audit_config, krm

HEAD3 = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
HEAD4 = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"

CASES = {
    "anchor-alias": HEAD3 + """\
apiServer:
  extraArgs: &args
    profiling: "false"
controllerManager:
  extraArgs: *args
scheduler:
  extraArgs: *args
""",
    "merge-key": HEAD3 + """\
controllerManager: &common
  extraArgs:
    profiling: "false"
  extraVolumes:
  - name: shared
    hostPath: /srv/shared
    mountPath: /srv/shared
apiServer:
  <<: *common
  certSANs: [lb.example.com]
""",
    "merge-key-list": HEAD3 + """\
controllerManager: &a
  extraArgs:
    profiling: "false"
scheduler: &b
  extraVolumes:
  - name: shared
    hostPath: /srv/shared
    mountPath: /srv/shared
apiServer:
  <<: [*a, *b]
""",
    "list-anchor-v1beta4": HEAD4 + """\
apiServer:
  extraArgs: &args
  - name: profiling
    value: "false"
controllerManager:
  extraArgs: *args
scheduler:
  extraArgs: *args
""",
    "whole-apiserver": HEAD3 + """\
apiServer: &cp
  extraArgs:
    profiling: "false"
controllerManager: *cp
scheduler: *cp
""",
    "nested": HEAD4 + """\
controllerManager: &cm
  extraArgs: &cmargs
  - name: profiling
    value: "false"
  extraVolumes:
  - &vol
    name: shared
    hostPath: /srv/shared
    mountPath: /srv/shared
scheduler:
  extraArgs: *cmargs
  extraVolumes: [*vol]
apiServer:
  <<: *cm
  extraVolumes:
  - *vol
""",
}

OTHERS = ("controllerManager", "scheduler")


def check(before_text: str, after: dict) -> None:
    before = yaml.safe_load(before_text)
    for key in OTHERS:
        assert after.get(key) == before.get(key), key           # untouched, values and all
        assert "audit" not in yaml.safe_dump(after.get(key))
    args = after["apiServer"]["extraArgs"]
    names = [a["name"] for a in args] if isinstance(args, list) else list(args)
    assert "audit-policy-file" in names and "profiling" in names
    assert any(v["name"] == "audit-config" for v in after["apiServer"]["extraVolumes"])
    for old in (before["apiServer"].get("extraVolumes") or []) if isinstance(before.get("apiServer"), dict) else []:
        assert old in after["apiServer"]["extraVolumes"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_merge_file_never_writes_through_an_alias(tmp_path, case):
    path = tmp_path / "kubeadm.yaml"
    path.write_text(CASES[case])
    result = run_cli("kubeadm-config", "merge", path, "--in-place")
    assert result.returncode == 0, result.stderr
    check(CASES[case], yaml.safe_load(path.read_text()))
    again = run_cli("kubeadm-config", "merge", path, "--in-place")
    assert again.returncode == 0 and again.stdout.endswith("no change\n"), again.stdout + again.stderr
    removed = run_cli("kubeadm-config", "merge", path, "--in-place", "--remove")
    assert removed.returncode == 0, removed.stderr
    restored = yaml.safe_load(path.read_text())
    assert {k: restored.get(k) for k in OTHERS} == {k: yaml.safe_load(CASES[case]).get(k) for k in OTHERS}
    assert "audit" not in path.read_text()


def configmap(inner: str) -> str:
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubeadm-config\n  namespace: kube-system\n"
            "data:\n  ClusterConfiguration: |\n" + textwrap.indent(inner, "    "))


@pytest.mark.parametrize("case", sorted(CASES))
def test_merge_configmap_never_writes_through_an_alias(tmp_path, case):
    path = tmp_path / "cm.yaml"
    path.write_text(configmap(CASES[case]))
    result = run_cli("kubeadm-config", "merge", path, "--in-place")
    assert result.returncode == 0, result.stderr
    check(CASES[case], yaml.safe_load(yaml.safe_load(path.read_text())["data"]["ClusterConfiguration"]))


def resource_list_text(documents: list, config: dict) -> str:
    items = "".join("- " + textwrap.indent(doc, "  ")[2:] for doc in documents)
    return ("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n" + items
            + yaml.safe_dump({"functionConfig": config}))


def kcp(inner: str) -> str:
    """A v1beta1/v1beta2 KubeadmControlPlane whose clusterConfiguration is ``inner`` (minus its header)."""
    body = inner.split("kind: ClusterConfiguration\n", 1)[1]
    version = "v1beta2" if "v1beta4" in inner else "v1beta1"
    return (f"apiVersion: controlplane.cluster.x-k8s.io/{version}\nkind: KubeadmControlPlane\nmetadata:\n"
            "  name: cp\n  namespace: fleet\nspec:\n  version: v1.33.1\n  kubeadmConfigSpec:\n"
            "    clusterConfiguration:\n" + textwrap.indent(body, "      "))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("target", ["kubeadm", "configmap", "kcp"])
def test_krm_never_writes_through_an_alias(tmp_path, case, target):
    if target == "kubeadm":
        document = CASES[case].replace("kind: ClusterConfiguration\n",
                                       "kind: ClusterConfiguration\nmetadata:\n  name: cluster\n", 1)
    elif target == "configmap":
        document = configmap(CASES[case])
    else:
        document = kcp(CASES[case])
    result = krm(input=resource_list_text([document], audit_config()), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    item = yaml.safe_load(result.stdout)["items"][0]
    if target == "configmap":
        after = yaml.safe_load(item["data"]["ClusterConfiguration"])
    elif target == "kcp":
        after = item["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]
    else:
        after = item
    check(CASES[case], after)
