"""kubeadm patches: RFC 6902 JSON patches against kubeadm's generated kube-apiserver Pod.

``command`` has no merge key, so a strategic or merge patch would replace every
default flag; JSON ``add .../-`` appends instead. kubeadm manifests always have
``spec.volumes`` and a ``volumeMounts`` list, so appending is safe there.
"""
from __future__ import annotations

from collections.abc import Sequence

from kubeadm_audit import flags
from kubeadm_audit.typing_lite import TYPE_CHECKING
from kubeadm_audit.volumes import HostPathMount

if TYPE_CHECKING:
    from typing import Any

#: kubeadm reads ``target[suffix][+type].{json,yaml}``; this is the default set's file.
PATCH_FILE = "kube-apiserver+json.yaml"
CONTAINER = "/spec/containers/0"


def json_patch(args: Sequence[tuple[str, str]], mounts: Sequence[HostPathMount]) -> list[dict[str, Any]]:
    """Append the flags to kube-apiserver's command, the volumes and their mounts to the Pod."""
    ops: list[dict[str, Any]] = [{"op": "add", "path": f"{CONTAINER}/command/-", "value": arg}
                                 for arg in flags.to_command(args)]
    ops += [{"op": "add", "path": "/spec/volumes/-", "value": m.pod_volume()} for m in mounts]
    ops += [{"op": "add", "path": f"{CONTAINER}/volumeMounts/-", "value": m.volume_mount()} for m in mounts]
    return ops


def command_args(ops: Any) -> list[str]:
    """The arguments a JSON patch appends to kube-apiserver's command (what the Pod will run)."""
    if not isinstance(ops, list):
        return []
    return [str(op["value"]) for op in ops
            if isinstance(op, dict) and op.get("op") == "add" and op.get("path") == f"{CONTAINER}/command/-"
            and isinstance(op.get("value"), (str, int, float))]
