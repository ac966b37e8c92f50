"""kubeadm configuration documents carrying the audit flags and volumes.

v1beta3 takes ``extraArgs`` as a map, v1beta4 as a list of ``{name, value}``;
values are always strings (kubeadm's decoder is strict and typed).
"""
from __future__ import annotations

from collections.abc import Sequence

from kubeadm_audit.config import AuditConfig
from kubeadm_audit.targets.kubeadm.options import Options
from kubeadm_audit.typing_lite import TYPE_CHECKING
from kubeadm_audit.volumes import HostPathMount

if TYPE_CHECKING:
    from typing import Any

#: kubeadm's API group, its cluster-wide document, and the ConfigMap kubeadm keeps it in
#: (kube-system/kubeadm-config, data.ClusterConfiguration) for joins and upgrades.
GROUP = "kubeadm.k8s.io"
CLUSTER_KIND = "ClusterConfiguration"
CONFIGMAP = ("kube-system", "kubeadm-config")
CONFIGMAP_KEY = "ClusterConfiguration"


def extra_args(args: Sequence[tuple[str, str]], api: str) -> object:
    """``apiServer.extraArgs`` in the shape ``api`` decodes."""
    if api == "v1beta3":
        return {name: str(value) for name, value in args}
    return [{"name": name, "value": str(value)} for name, value in args]


def extra_args_items(extra: object) -> list[tuple[str, str]]:
    """(name, value) pairs from either shape (None and empty give [])."""
    if isinstance(extra, dict):
        return [(str(k), "" if v is None else str(v)) for k, v in extra.items()]
    if isinstance(extra, list):
        return [(str(item.get("name")), "" if item.get("value") is None else str(item.get("value")))
                for item in extra if isinstance(item, dict)]
    return []


def documents(cfg: AuditConfig, options: Options, args: Sequence[tuple[str, str]],
              mounts: Sequence[HostPathMount]) -> list[dict[str, Any]]:
    """InitConfiguration and ClusterConfiguration (+ UpgradeConfiguration on v1beta4).

    With ``kubeadmRoute: extraArgs`` the ClusterConfiguration carries the audit flags and
    volumes (stored in the kubeadm-config ConfigMap, so joins and upgrades keep them) and no
    patches directory is named: patches adding the same mounts again would give the Pod
    duplicate mount paths, which the kubelet rejects. With ``kubeadmRoute: patches`` the
    ClusterConfiguration stays untouched and every command is pointed at the patches.

    No JoinConfiguration: kubeadm validates every document of a file it is given
    (``kubeadm config validate``, ``kubeadm join``) and one without ``discovery``, which only
    the joining node knows, is refused. A joining control plane takes the audit settings from
    the ConfigMap, or the patches with ``kubeadm join --patches`` (the file's header says so).
    """
    api_version = f"{GROUP}/{options.api}"
    patches = {"directory": options.patches_directory}
    via_patches = options.route == "patches"
    init: dict[str, Any] = {"apiVersion": api_version, "kind": "InitConfiguration"}
    if via_patches:
        init["patches"] = dict(patches)
    cluster: dict[str, Any] = {"apiVersion": api_version, "kind": CLUSTER_KIND}
    if cfg.version_pinned:  # else kubeadm deploys its own version (the target only picks the API)
        cluster["kubernetesVersion"] = str(cfg.kubernetes_version)
    if not via_patches:
        cluster["apiServer"] = {"extraArgs": extra_args(args, options.api),
                                "extraVolumes": [m.kubeadm() for m in mounts]}
    docs = [init, cluster]
    if options.api == "v1beta4":
        upgrade: dict[str, Any] = {"apiVersion": api_version, "kind": "UpgradeConfiguration"}
        if via_patches:
            upgrade["apply"] = {"patches": dict(patches)}
            upgrade["node"] = {"patches": dict(patches)}
        docs.append(upgrade)
    return docs
