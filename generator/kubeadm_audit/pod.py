"""The kube-apiserver static Pod: finding it and checking what the kubelet would refuse.

The kubelet validates static Pods (ValidatePodCreate) and silently never starts an
invalid one, so the checks here mirror the rules audit changes can break.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from kubeadm_audit.errors import InputError

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice")
APISERVER = "kube-apiserver"


def is_dns1123_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


def is_dns1123_subdomain(name: str) -> bool:
    """What the API server takes as a Secret's (or ConfigMap's) name: ValidateSecretName."""
    return len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))


#: YAML 1.1 spellings of booleans, as the kubelet's YAML reader takes them (``readOnly: yes``).
_YAML11_BOOLS = {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE",
                 "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF"}


def _expect(value: Any, kind: str, source: str, where: str, required: bool = False) -> Any:
    """``value`` if it is of ``kind`` (or null, unless required), as the kubelet's decoder needs; else InputError."""
    from kubeadm_audit.yamlio import kind_of

    if value is None and not required:
        return value
    ok = {"mapping": isinstance(value, Mapping),
          "list": isinstance(value, list),
          "string": isinstance(value, str),
          "boolean": isinstance(value, bool) or (isinstance(value, str) and value in _YAML11_BOOLS)}[kind]
    if not ok:
        raise InputError(f"expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}, found {kind_of(value)}",
                         source=source, field=where)
    return value


def validate(pod: Mapping, source: str) -> None:
    """Check the types of every Pod field the audit edits and checks read; InputError names the first wrong one.

    Only those fields: the rest of the manifest is passed through as it was written.
    """
    metadata = _expect(pod.get("metadata"), "mapping", source, "metadata") or {}
    annotations = _expect(metadata.get("annotations"), "mapping", source, "metadata.annotations") or {}
    for key, value in annotations.items():
        _expect(value, "string", source, f"metadata.annotations[{key}]")
    spec = _expect(pod.get("spec"), "mapping", source, "spec", required=True)
    for index, volume in enumerate(_expect(spec.get("volumes"), "list", source, "spec.volumes") or []):
        where = f"spec.volumes[{index}]"
        _expect(volume, "mapping", source, where, required=True)
        _expect(volume.get("name"), "string", source, f"{where}.name")
        host = _expect(volume.get("hostPath"), "mapping", source, f"{where}.hostPath") or {}
        for key in ("path", "type"):
            _expect(host.get(key), "string", source, f"{where}.hostPath.{key}")
    containers = _expect(spec.get("containers"), "list", source, "spec.containers", required=True)
    for c_index, container in enumerate(containers):
        where = f"spec.containers[{c_index}]"
        _expect(container, "mapping", source, where, required=True)
        for key in ("name", "image"):
            _expect(container.get(key), "string", source, f"{where}.{key}")
        _expect(container.get("command"), "list", source, f"{where}.command")
        for m_index, mount in enumerate(_expect(container.get("volumeMounts"), "list", source,
                                                f"{where}.volumeMounts") or []):
            at = f"{where}.volumeMounts[{m_index}]"
            _expect(mount, "mapping", source, at, required=True)
            for key in ("name", "mountPath"):
                _expect(mount.get(key), "string", source, f"{at}.{key}")
            _expect(mount.get("readOnly"), "boolean", source, f"{at}.readOnly")


def apiserver_container(pod: Any) -> Optional[dict]:
    """The container that runs kube-apiserver (by name, else by its command)."""
    containers = ((pod or {}).get("spec") or {}).get("containers") or []
    for container in containers:
        if isinstance(container, dict) and container.get("name") == APISERVER:
            return container
    for container in containers:
        command = isinstance(container, dict) and (container.get("command") or [])
        if command and str(command[0]).rsplit("/", 1)[-1] == APISERVER:
            return container
    return None


def kubelet_problems(pod: Any) -> list:
    """Reasons the kubelet would reject this Pod's volumes and mounts (empty: accepted)."""
    problems = []
    spec = (pod or {}).get("spec") or {}
    volumes = spec.get("volumes") or []
    names = []
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
        seen = []
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
