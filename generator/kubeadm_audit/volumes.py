"""Host path mounts that make the audit files visible inside kube-apiserver.

kubeadm mounts only the certificate directories; everything the audit flags name
needs an extraVolume. Files the kubelet must read are mounted read-only, the
log directory read-write (the directory: rotation creates new files in it).
"""
from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence

from kubeadm_audit.errors import InputError
from kubeadm_audit.pod import HOST_PATH_TYPES, is_dns1123_label
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any

#: Volumes kubeadm itself gives kube-apiserver: name -> mountPath (Always: the first two).
KUBEADM_VOLUMES = {
    "k8s-certs": "/etc/kubernetes/pki",
    "ca-certs": "/etc/ssl/certs",
    "etc-ca-certificates": "/etc/ca-certificates",
    "etc-pki": "/etc/pki",
    "etc-pki-ca-trust": "/etc/pki/ca-trust",
    "etc-pki-tls-certs": "/etc/pki/tls/certs",
    "usr-share-ca-certificates": "/usr/share/ca-certificates",
    "usr-local-share-ca-certificates": "/usr/local/share/ca-certificates",
}
#: Always mounted by kubeadm, so a file below them is already visible.
ALWAYS_MOUNTED = ("/etc/kubernetes/pki", "/etc/ssl/certs")

#: kubeadm's own files and directories on a control-plane node: no audit file may live there.
PKI_DIRECTORY = "/etc/kubernetes/pki"
MANIFESTS_DIRECTORY = "/etc/kubernetes/manifests"
KUBEADM_KUBECONFIGS = tuple(f"/etc/kubernetes/{name}" for name in (
    "admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf",
    "controller-manager.conf", "scheduler.conf"))

#: Directories too broad to mount into kube-apiserver: files there are mounted one by one.
SHARED_DIRECTORIES = ("/", "/etc", "/etc/kubernetes", "/etc/kubernetes/manifests", "/var",
                      "/var/lib", "/var/lib/kubelet", "/var/log", "/root", "/home", "/tmp")



class HostPathMount(NamedTuple):
    """kubeadm's HostPathMount: one Pod volume plus one container volumeMount."""

    name: str
    host_path: str
    mount_path: str
    read_only: bool
    path_type: str

    def kubeadm(self) -> dict[str, Any]:
        return {"name": self.name, "hostPath": self.host_path, "mountPath": self.mount_path,
                "readOnly": self.read_only, "pathType": self.path_type}

    def pod_volume(self) -> dict[str, Any]:
        return {"hostPath": {"path": self.host_path, "type": self.path_type}, "name": self.name}

    def volume_mount(self) -> dict[str, Any]:
        mount: dict[str, Any] = {"mountPath": self.mount_path, "name": self.name}
        if self.read_only:
            mount["readOnly"] = True
        return mount


def is_within(path: str, directory: str) -> bool:
    path, directory = posixpath.normpath(path), posixpath.normpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def normalise_node_path(text: str) -> tuple[str, None] | tuple[None, str]:
    """(normalised path, None) or (None, why it is refused) for a path on a control-plane node.

    Refused: relative paths, ``..`` segments (what they reach depends on symlinks on the
    node), control characters and whitespace (install.list is "MODE SOURCE DEST" per line),
    and anything kubeadm owns: the pki and manifests directories (the kubelet starts every
    file in the latter as a Pod) and kubeadm's kubeconfigs.
    """
    if any(ord(ch) < 0x20 or ch == "\x7f" or ch.isspace() for ch in text):
        return None, f"contains whitespace or a control character (got {text!r})"
    if not text.startswith("/"):
        return None, f"must be an absolute path on the control-plane node (got {text!r})"
    if ".." in text.split("/"):
        return None, f"must not contain '..' (got {text!r}): give the path it should resolve to"
    path = "/" + posixpath.normpath(text).lstrip("/")
    if path == "/":
        return None, "is the root directory"
    for directory, what in ((PKI_DIRECTORY, "kubeadm's certificate directory"),
                            (MANIFESTS_DIRECTORY, "the static Pod directory: the kubelet runs every file there")):
        if is_within(path, directory):
            return None, f"{path} is inside {directory} ({what})"
    if path in KUBEADM_KUBECONFIGS:
        return None, f"{path} is one of kubeadm's own kubeconfigs"
    return path, None


def plan(files: Sequence[str], log_path: str | None, names: Mapping[str, str]) -> list[HostPathMount]:
    """Mounts for read-only ``files`` (policy, webhook kubeconfig) and the log directory.

    ``names`` maps roles (config, policy, webhookConfig, log) to volume names.
    """
    mounts: list[HostPathMount] = []
    pending = [posixpath.normpath(f) for f in files if f]
    pending = [f for f in pending if not any(is_within(f, d) for d in ALWAYS_MOUNTED)]
    dirs = {posixpath.dirname(f) for f in pending}
    roles = ("policy", "webhookConfig", "webhookToken")
    if len(dirs) == 1 and not dirs & set(SHARED_DIRECTORIES):
        directory = dirs.pop()
        mounts.append(HostPathMount(names["config"], directory, directory, True, "Directory"))
    else:
        mounted: set[str] = set()
        for role, path in zip(roles, [posixpath.normpath(f) for f in files if f]):
            if path not in pending:
                continue
            directory = posixpath.dirname(path)
            shared = directory in SHARED_DIRECTORIES
            if (path if shared else directory) in mounted:
                continue                     # two files in one directory: one mount
            mounted.add(path if shared else directory)
            name = names.get(role) or f"audit-{role.lower().replace('webhook', 'webhook-')}"
            if shared:
                mounts.append(HostPathMount(name, path, path, True, "File"))
            else:
                mounts.append(HostPathMount(name, directory, directory, True, "Directory"))
    if log_path and log_path != "-":
        log_dir = posixpath.dirname(posixpath.normpath(log_path))
        if log_dir in SHARED_DIRECTORIES:
            raise InputError(f"the audit log directory {log_dir} would be mounted read-write into "
                             "kube-apiserver: keep the log in a directory of its own "
                             "(e.g. /var/log/kubernetes/audit/audit.log)", field="log.path")
        for mount in mounts:
            if mount.mount_path == log_dir:
                raise InputError(f"the audit log directory {log_dir} also holds the policy or webhook "
                                 "kubeconfig, which must be mounted read-only: put the log elsewhere",
                                 field="log.path")
        mounts.append(HostPathMount(names["log"], log_dir, log_dir, False, "DirectoryOrCreate"))
    check(mounts)
    return mounts


def check(mounts: Iterable[HostPathMount]) -> None:
    """Refuse what the kubelet would reject, or what would clash with kubeadm's own mounts."""
    names: set[str] = set()
    paths: set[str] = set()
    for mount in mounts:
        if not is_dns1123_label(mount.name):
            raise InputError(f"volume name {mount.name!r} is not a DNS-1123 label", field="extraVolumes")
        if mount.name in names or mount.name in KUBEADM_VOLUMES:
            raise InputError(f"volume name {mount.name!r} is used twice or is one of kubeadm's own",
                             field="extraVolumes")
        for path in (mount.host_path, mount.mount_path):
            if not path.startswith("/") or posixpath.normpath(path) != path:
                raise InputError(f"path {path!r} must be absolute and normalised", field="extraVolumes")
        if mount.mount_path in paths or mount.mount_path in KUBEADM_VOLUMES.values():
            raise InputError(f"mount path {mount.mount_path} collides with another mount", field="extraVolumes")
        if mount.path_type not in HOST_PATH_TYPES:
            raise InputError(f"pathType {mount.path_type!r} is not a Kubernetes HostPathType", field="extraVolumes")
        names.add(mount.name)
        paths.add(mount.mount_path)


def uncovered(args: Sequence[tuple[str, str]], mounts: Sequence[HostPathMount]) -> list[str]:
    """Paths named by audit flags that no mount (ours or kubeadm's) makes visible, as messages."""
    problems = []
    for name, value in args:
        if name not in ("audit-policy-file", "audit-webhook-config-file", "audit-log-path") or value in ("", "-"):
            continue
        target = posixpath.dirname(value) if name == "audit-log-path" else value
        visible = [m for m in mounts if is_within(target, m.mount_path)]
        if any(is_within(target, d) for d in ALWAYS_MOUNTED) and name != "audit-log-path":
            continue
        if not visible:
            problems.append(f"--{name}={value} is not inside any volume mounted into kube-apiserver")
        elif name == "audit-log-path" and all(m.read_only for m in visible):
            problems.append(f"--{name}={value}: its directory is mounted read-only; the log needs read-write")
    return problems
