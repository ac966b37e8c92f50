"""The kube-apiserver static Pod: finding it and checking what the kubelet would refuse.

The kubelet validates static Pods (ValidatePodCreate) and silently never starts an
invalid one, so the checks here mirror the rules audit changes can break.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from kubeadm_audit.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice")
APISERVER = "kube-apiserver"


def is_dns1123_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


#: Compiled on first use (re's cache): not on the KRM start-up path.
_DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"


def is_dns1123_subdomain(name: str) -> bool:
    """What the API server takes as a Secret's (or ConfigMap's) name: ValidateSecretName."""
    return len(name) <= 253 and bool(re.match(_DNS1123_SUBDOMAIN, name))


def validate(pod: Mapping[str, Any], source: str) -> None:
    """Check the types of every Pod field the audit edits and checks read; InputError names the first wrong one.

    Only those fields: the rest of the manifest is passed through as it was written.
    """
    from kubeadm_audit.yamlio import expect

    metadata = expect(pod.get("metadata"), "mapping", source, "metadata") or {}
    annotations = expect(metadata.get("annotations"), "mapping", source, "metadata.annotations") or {}
    for key, value in annotations.items():
        expect(value, "string", source, f"metadata.annotations[{key}]")
    spec = expect(pod.get("spec"), "mapping", source, "spec", required=True)
    for index, volume in enumerate(expect(spec.get("volumes"), "list", source, "spec.volumes") or []):
        where = f"spec.volumes[{index}]"
        expect(volume, "mapping", source, where, required=True)
        expect(volume.get("name"), "string", source, f"{where}.name")
        host = expect(volume.get("hostPath"), "mapping", source, f"{where}.hostPath") or {}
        for key in ("path", "type"):
            expect(host.get(key), "string", source, f"{where}.hostPath.{key}")
    containers = expect(spec.get("containers"), "list", source, "spec.containers", required=True)
    for c_index, container in enumerate(containers):
        where = f"spec.containers[{c_index}]"
        expect(container, "mapping", source, where, required=True)
        for key in ("name", "image"):
            expect(container.get(key), "string", source, f"{where}.{key}")
        expect(container.get("command"), "list", source, f"{where}.command")
        for m_index, mount in enumerate(expect(container.get("volumeMounts"), "list", source,
                                                f"{where}.volumeMounts") or []):
            at = f"{where}.volumeMounts[{m_index}]"
            expect(mount, "mapping", source, at, required=True)
            for key in ("name", "mountPath"):
                expect(mount.get(key), "string", source, f"{at}.{key}")
            expect(mount.get("readOnly"), "boolean", source, f"{at}.readOnly")


def apiserver_container(pod: Any) -> dict[str, Any] | None:
    """The container that runs kube-apiserver (by name, else by its command)."""
    containers = ((pod or {}).get("spec") or {}).get("containers") or []
    for container in containers:
        if isinstance(container, dict) and container.get("name") == APISERVER:
            return container
    for container in containers:
        if not isinstance(container, dict):
            continue
        command = container.get("command") or []
        if command and str(command[0]).rsplit("/", 1)[-1] == APISERVER:
            return container
    return None


def kubelet_problems(pod: Any) -> list[str]:
    """Reasons the kubelet would reject this Pod's volumes and mounts (empty: accepted)."""
    problems: list[str] = []
    spec = (pod or {}).get("spec") or {}
    volumes = spec.get("volumes") or []
    names: list[str] = []
    for index, volume in enumerate(volumes):
        name = volume.get("name") or ""
        if not is_dns1123_label(name):
            problems.append(f"spec.volumes[{index}].name: {name!r} is not a DNS-1123 label")
        if name in names:
            problems.append(f"spec.volumes[{index}].name: duplicate volume name {name!r}")
        names.append(name)
        host = volume.get("hostPath")
        if host is not None:
            if not str(host.get("path", "")).startswith("/"):
                problems.append(f"spec.volumes[{index}].hostPath.path: must be absolute")
            if host.get("type", "") not in HOST_PATH_TYPES:
                problems.append(f"spec.volumes[{index}].hostPath.type: unsupported {host.get('type')!r}")
    for c_index, container in enumerate(spec.get("containers") or []):
        seen: list[str] = []
        for m_index, mount in enumerate(container.get("volumeMounts") or []):
            where = f"spec.containers[{c_index}].volumeMounts[{m_index}]"
            path = mount.get("mountPath", "")
            if not path:
                problems.append(f"{where}.mountPath: required")
            if path in seen:
                problems.append(f"{where}.mountPath: {path!r} must be unique")
            seen.append(path)
            if mount.get("name") not in names:
                problems.append(f"{where}.name: volume {mount.get('name')!r} not found")
    return problems
