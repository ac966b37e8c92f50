"""The kube-apiserver static Pod manifest: the recipe's hand edit done safely, and drift checks.

kubeadm rebuilds ``/etc/kubernetes/manifests/kube-apiserver.yaml`` from the
ClusterConfiguration on every upgrade (and ``init phase control-plane``), so what
``apply`` adds is lost then unless the ConfigMap or the patches carry it too;
``check`` is how that loss is noticed. Both work on the parsed Pod and never touch
files: the CLI reads, writes and backs up.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeadm_audit import flags, ownership, versions, volumes, yamlio
from kubeadm_audit import pod as pod_mod
from kubeadm_audit.changes import Change
from kubeadm_audit.errors import ConflictError, ForceableConflict, InputError
from kubeadm_audit.findings import Finding
from kubeadm_audit.targets.kubeadm.findings import (
    NODE_FILE_DIFFERS,
    NODE_FILE_EXPOSED,
    NODE_FILE_MISSING,
    NODE_FILE_MODE,
    OTHER_AUDIT_FLAGS,
)
from kubeadm_audit.typing_lite import NamedTuple
from kubeadm_audit.volumes import HostPathMount

#: Annotation carrying a hash of the audit files, so changing them changes the Pod (and restarts it).
HASH_ANNOTATION = "kubeadm-audit.dev/config-hash"

UPGRADE_NOTE = ("the next 'kubeadm upgrade apply|node' (or 'kubeadm init phase control-plane apiserver') "
                "rebuilds this manifest from the ClusterConfiguration in kube-system/kubeadm-config and "
                "drops these changes: make them last by merging into the ConfigMap "
                "('make reconfigure', i.e. kubeadm-audit kubeadm-config merge) or by passing the audit "
                "patches to every upgrade ('make upgrade ROUTE=patches')")

#: Largest manifest read. Real ones are a few KiB, and the kubelet's mirror Pod of a static
#: Pod must fit the API server's object limit (etcd's 1.5 MiB request size): a bigger file
#: is refused before it is parsed, not parsed for minutes.
MAX_MANIFEST_BYTES = 16 << 20
WHAT = ("kube-apiserver static Pod manifest (those are a few KiB; a mirror Pod must fit etcd's "
        "1.5 MiB)")

_IMAGE_TAG = re.compile(r":(v?\d+\.\d+(?:\.\d+)?[0-9A-Za-z.+-]*)(?:@sha256:[0-9a-f]+)?\Z")


@dataclass
class Manifest:
    """A parsed kube-apiserver static Pod (round-trip, so untouched parts stay as written)."""

    source: str
    stream: yamlio.RoundTrip | None  # None when loaded only to be checked
    pod: MutableMapping[str, Any]
    container: MutableMapping[str, Any]

    def dump(self) -> str:
        if self.stream is None:
            raise ValueError(f"{self.source} was loaded to be checked, not edited")
        return self.stream.dump()

    @property
    def image_version(self) -> str | None:
        """The Kubernetes version of the kube-apiserver image tag, if it names one."""
        match = _IMAGE_TAG.search(str(self.container.get("image") or ""))
        return match.group(1) if match else None


def load(text: str, source: str, round_trip: bool = True) -> Manifest:
    """Parse a kube-apiserver static Pod manifest; InputError for anything else.

    ``round_trip`` keeps comments and layout for an edit (ruamel, pure Python: about
    4 s per 10 MB); a check only reads, so it goes without and takes libyaml's parse.
    """
    documents = yamlio.load_all(text, source)
    if len(documents) != 1:
        raise InputError(f"expected one Pod document, found {len(documents)}", source=source)
    if not isinstance(documents[0], dict) or documents[0].get("kind") != "Pod":
        kind = documents[0].get("kind") if isinstance(documents[0], dict) else None
        raise InputError(f"not a Pod (kind {repr(kind)[:60]}): expected the kube-apiserver static Pod manifest",
                         source=source, field="kind")
    stream = yamlio.RoundTrip(text, source) if round_trip else None
    pod = documents[0] if stream is None else next(doc for doc in stream.documents if doc is not None)
    pod_mod.validate(pod, source)
    container = pod_mod.apiserver_container(pod)
    if container is None:
        raise InputError("no kube-apiserver container (by name or command)", source=source,
                         field="spec.containers")
    index = next(i for i, c in enumerate(pod["spec"]["containers"]) if c is container)
    command = container.get("command") or []
    wrong = next((i for i, arg in enumerate(command) if not isinstance(arg, str)), None)
    if not command or wrong is not None:
        raise InputError("expected a list of strings starting with kube-apiserver" if wrong is None else
                         f"expected a string, found {yamlio.kind_of(command[wrong])}", source=source,
                         field=f"spec.containers[{index}].command" + (f"[{wrong}]" if wrong is not None else ""))
    return Manifest(source, stream, pod, container)


def config_hash(contents: Sequence[bytes]) -> str:
    """A stable hash of the audit files kube-apiserver reads (order matters)."""
    digest = hashlib.sha256()
    for content in contents:
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


# --- apply -----------------------------------------------------------------------------

def _set_flag(command: list[Any], name: str, value: str) -> Change | None:
    wanted = f"--{name}={value}"
    found = [occ for occ in flags.parse_command(command) if occ.name == name]
    if not found:
        command.append(wanted)
        return Change("", f"--{name}", "added", value, wanted)
    if len(found) == 1 and not found[0].separate and command[found[0].position] == wanted:
        return None
    old = ", ".join(f"--{occ.name}={occ.value}" if occ.value is not None else f"--{occ.name}" for occ in found)
    for occ in reversed(found):
        if occ.separate:
            del command[occ.position + 1]
        if occ is found[0]:
            command[occ.position] = wanted
        else:
            del command[occ.position]
    return Change("", f"--{name}", "replaced", value, f"{old} with {wanted}")


def _mounted_as(mount: HostPathMount, spec: MutableMapping[str, Any], container: MutableMapping[str, Any]) -> bool:
    """Whether the container already mounts ``mount``'s host path at its mount path (any name)."""
    by_name = {v.get("name"): v for v in spec.get("volumes") or [] if isinstance(v, dict)}
    for entry in container.get("volumeMounts") or []:
        if posixpath.normpath(str(entry.get("mountPath", ""))) != mount.mount_path:
            continue
        volume = by_name.get(entry.get("name")) or {}
        host = volume.get("hostPath") or {}
        if (posixpath.normpath(str(host.get("path", ""))) == mount.host_path
                and str(host.get("type") or "") == mount.path_type
                and bool(entry.get("readOnly")) == mount.read_only):
            return True
    return False


def _set_mount(mount: HostPathMount, spec: MutableMapping[str, Any],
               container: MutableMapping[str, Any]) -> Change | None:
    if _mounted_as(mount, spec, container):
        return None
    for holder, key in ((spec, "volumes"), (container, "volumeMounts")):
        if holder.get(key) is None:     # absent, or an empty "volumes:"
            holder[key] = []
    pod_volumes, mounts = spec["volumes"], container["volumeMounts"]
    replaced = [m for m in mounts if m.get("name") == mount.name
                or posixpath.normpath(str(m.get("mountPath", ""))) == mount.mount_path]
    old_names = {m.get("name") for m in replaced} | {mount.name}
    for entry in replaced:
        mounts.remove(entry)
    still_used = {m.get("name") for c in spec.get("containers") or [] for m in c.get("volumeMounts") or []}
    dropped = [v for v in pod_volumes if v.get("name") in old_names and v.get("name") not in still_used]
    for entry in dropped:
        pod_volumes.remove(entry)
    pod_volumes.append(mount.pod_volume())
    mounts.append(mount.volume_mount())
    what = f"volume {mount.name} ({mount.host_path} -> {mount.mount_path}, {'ro' if mount.read_only else 'rw'})"
    if replaced or dropped:
        gone = sorted({str(e.get("name")) for e in replaced + dropped})
        return Change("", mount.name, "replaced", what, f"{', '.join(gone)} with {what}")
    return Change("", mount.name, "added", what, what)


def _remove_flag(command: list[Any], name: str, value: str) -> Change | None:
    """Drop the occurrences of ``--name`` holding ``value`` (the value kubeadm-audit set)."""
    found = [occ for occ in flags.parse_command(command) if occ.name == name and occ.value == value]
    for occ in reversed(found):
        if occ.separate:
            del command[occ.position + 1]
        del command[occ.position]
    return Change("", f"--{name}", "removed", detail=f"--{name}={value}") if found else None


def _remove_mount(name: str, recorded: HostPathMount, spec: MutableMapping[str, Any],
                  container: MutableMapping[str, Any]) -> Change | None:
    """Drop the volume and mount ``name`` when they still are what kubeadm-audit set."""
    current = next((m for m in pod_mounts({"spec": spec}, container) if m.name == name), None)
    if current is None or current != recorded:
        return None
    mounts = container.get("volumeMounts") or []
    mounts[:] = [m for m in mounts if not (isinstance(m, dict) and m.get("name") == name)]
    still_used = {m.get("name") for c in spec.get("containers") or [] for m in c.get("volumeMounts") or []}
    if name not in still_used:
        spec["volumes"][:] = [v for v in spec.get("volumes") or []
                              if not (isinstance(v, dict) and v.get("name") == name)]
    return Change("", name, "removed", detail=f"volume {name} ({recorded.host_path} -> {recorded.mount_path})")


def _recorded_mount(name: str, entry: dict[str, Any]) -> HostPathMount:
    return HostPathMount(name, posixpath.normpath(str(entry.get("hostPath") or "")),
                         posixpath.normpath(str(entry.get("mountPath") or "")), entry.get("readOnly") is True,
                         str(entry.get("pathType") or ""))


def _plan_ownership(manifest: Manifest, args: Sequence[tuple[str, str]], mounts: Sequence[HostPathMount],
                    record: ownership.Record, force: bool) -> tuple[Any, ...]:
    """(flags, volumes) kubeadm-audit will own after this apply; ForceableConflict for others' values."""
    spec = manifest.pod["spec"]
    occurrences = flags.parse_command(manifest.container["command"])
    conflicts: list[str] = []
    owned_args: dict[str, Any] = {}
    for name, value in args:
        values = [occ.value for occ in occurrences if occ.name == name]
        ours = name in record.args and all(v == record.args[name] for v in values)
        if values and not all(v == value for v in values) and not ours and not force:
            changed = (f" (kubeadm-audit had set {record.args[name]!r}; it was changed since)"
                       if name in record.args else "")
            conflicts.append(f"--{name} is {', '.join(repr(v) for v in values)} in the manifest but the audit "
                             f"configuration sets {value!r}{changed}")
        if not values or not all(v == value for v in values) or name in record.args:
            owned_args[name] = value        # added, replaced, or still what kubeadm-audit set
    present = pod_mounts(manifest.pod)
    owned_volumes: dict[str, Any] = {}
    for mount in mounts:
        clashing = [m for m in present if m.name == mount.name or m.mount_path == mount.mount_path]
        if clashing and _mounted_as(mount, spec, manifest.container):
            if mount.name in record.volumes:
                owned_volumes[mount.name] = mount.kubeadm()
            continue
        theirs = [m for m in clashing if not (m.name in record.volumes
                                              and _recorded_mount(m.name, record.volumes[m.name]) == m)]
        if theirs and not force:
            other = theirs[0]
            conflicts.append(f"volume {other.name} ({other.host_path} -> {other.mount_path}) in the manifest "
                             f"clashes with the audit volume {mount.name} ({mount.host_path} -> {mount.mount_path})")
        owned_volumes[mount.name] = mount.kubeadm()
    if conflicts:
        raise ForceableConflict("; ".join(conflicts), source=manifest.source)
    return owned_args, owned_volumes


def apply(manifest: Manifest, args: Sequence[tuple[str, str]], mounts: Sequence[HostPathMount],
          version: versions.KubeVersion | None, hash_value: str | None = None,
          force: bool = False) -> list[Change]:
    """Add or replace the audit flags, volumes and mounts (and the hash annotation) in place.

    What it sets it records in the Pod's ``kubeadm-audit.dev/managed`` annotation (see
    :mod:`ownership`): those values are updated freely and removed when no longer wanted,
    so applying nothing (``args=()``, ``mounts=()``, ``version`` None) takes out exactly
    what earlier applies added. A flag or mount someone else set to another value is a
    ForceableConflict unless ``force``. Raises ConflictError when the result would stop
    kube-apiserver (invalid audit flags) or be rejected by the kubelet; the caller then
    writes nothing.
    """
    spec = manifest.pod["spec"]
    command = manifest.container["command"]
    record = ownership.read_annotation(manifest.pod, manifest.source)
    owned_args, owned_volumes = _plan_ownership(manifest, args, mounts, record, force)
    wanted_args = dict(args)
    wanted_mounts = {m.name for m in mounts}
    changes = [c for c in (_set_flag(command, name, value) for name, value in args) if c]
    changes += [c for c in (_remove_flag(command, name, value) for name, value in record.args.items()
                            if name not in wanted_args) if c]
    changes += [c for c in (_set_mount(m, spec, manifest.container) for m in mounts) if c]
    changes += [c for c in (_remove_mount(name, _recorded_mount(name, entry), spec, manifest.container)
                            for name, entry in record.volumes.items() if name not in wanted_mounts) if c]
    metadata = manifest.pod.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if hash_value is not None:
        if manifest.pod.get("metadata") is None:
            manifest.pod["metadata"] = {}
        metadata = manifest.pod["metadata"]
        annotations = metadata.get("annotations")
        if annotations is None:
            annotations = metadata["annotations"] = {}
        if not isinstance(annotations, MutableMapping):
            raise InputError(f"expected a mapping, got {yamlio.kind_of(annotations)}", source=manifest.source,
                             field="metadata.annotations")
        if annotations.get(HASH_ANNOTATION) != hash_value:
            annotations[HASH_ANNOTATION] = hash_value
            changes.append(Change("", HASH_ANNOTATION, "set", hash_value,
                                  f"annotation {HASH_ANNOTATION}={hash_value[:12]}..."))
    elif not args and isinstance(annotations, dict) and HASH_ANNOTATION in annotations:
        del annotations[HASH_ANNOTATION]
        changes.append(Change("", HASH_ANNOTATION, "removed", detail=f"annotation {HASH_ANNOTATION}"))
    record.args, record.volumes = owned_args, owned_volumes
    if ownership.write_annotation(manifest.pod, record, manifest.source) and not changes:
        changes.append(ownership.record_updated())
    if version is None:
        return changes
    report = check(manifest.pod, args, mounts, version)
    if report.invalid:
        raise ConflictError("the result would not run: " + "; ".join(report.invalid), source=manifest.source)
    return changes


def stray_audit_flags(manifest: Manifest, args: Sequence[tuple[str, str]]) -> list[str]:
    """Audit flags in the manifest that the configuration does not set (kept as they are)."""
    ours = {name for name, _ in args}
    return sorted({occ.name for occ in flags.parse_command(manifest.container["command"])
                   if occ.name.startswith("audit-") and occ.name not in ours})


# --- check -----------------------------------------------------------------------------

@dataclass
class Report:
    drift: list[str] = field(default_factory=list)      # configured but missing or different
    invalid: list[str] = field(default_factory=list)    # kube-apiserver or the kubelet would refuse
    warnings: list[str] = field(default_factory=list)
    insecure: list[str] = field(default_factory=list)   # node files others can read that hold secrets

    @property
    def ok(self) -> bool:
        return not self.drift and not self.invalid and not self.insecure

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "drift": self.drift, "invalid": self.invalid, "insecure": self.insecure,
                "warnings": self.warnings}


def pod_mounts(pod: Any, container: Any | None = None) -> list[HostPathMount]:
    """The kube-apiserver container's hostPath mounts as HostPathMounts."""
    container = container if container is not None else pod_mod.apiserver_container(pod) or {}
    by_name = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or [] if isinstance(v, dict)}
    found = []
    for entry in container.get("volumeMounts") or []:
        host = (by_name.get(entry.get("name")) or {}).get("hostPath")
        if isinstance(host, dict) and host.get("path") and entry.get("mountPath"):
            found.append(HostPathMount(str(entry["name"]), posixpath.normpath(str(host["path"])),
                                       posixpath.normpath(str(entry["mountPath"])),
                                       bool(entry.get("readOnly")), str(host.get("type") or "")))
    return found


def check(pod: Any, args: Sequence[tuple[str, str]], mounts: Sequence[HostPathMount],
          version: versions.KubeVersion) -> Report:
    """What differs from the configuration, and what kube-apiserver or the kubelet would refuse."""
    report = Report()
    container = pod_mod.apiserver_container(pod) or {}
    occurrences = [occ for occ in flags.parse_command(container.get("command") or [])
                   if occ.name.startswith("audit-")]
    values = flags.effective(occurrences)
    for name, value in args:
        if name not in values:
            report.drift.append(f"--{name}={value} is missing")
        elif values[name] != value:
            report.drift.append(f"--{name} is {values[name]!r}, the audit configuration sets {value!r}")
    present = {m.mount_path: m for m in pod_mounts(pod)}
    for mount in mounts:
        found = present.get(mount.mount_path)
        if found is None:
            report.drift.append(f"no volume mounts {mount.host_path} at {mount.mount_path}")
        elif (found.host_path, found.read_only, found.path_type) != (mount.host_path, mount.read_only,
                                                                      mount.path_type):
            report.drift.append(f"{mount.mount_path} is mounted from {found.host_path} "
                                f"({'ro' if found.read_only else 'rw'}, type {found.path_type or '(empty)'}), "
                                f"the audit configuration wants {mount.host_path} "
                                f"({'ro' if mount.read_only else 'rw'}, type {mount.path_type or '(empty)'})")
    for problem in flags.validate(values, version, occurrences):
        (report.invalid if problem.severity == "error" else report.warnings).append(str(problem))
    report.invalid += volumes.uncovered(sorted(values.items()), list(present.values()))
    report.invalid += pod_mod.kubelet_problems(pod)
    return report


# --- the apply workflow (the CLI reads the node and writes what this plans) -----------------

class NodeFile(NamedTuple):
    """A file kube-apiserver reads: as this configuration generates it, and as the node has it."""

    path: str
    content: bytes
    mode: int
    installed: bytes | None = None       # None: absent
    installed_mode: int | None = None    # permission bits of the installed file


class ApplyPlan(NamedTuple):
    text: str                                # the manifest after apply (the input when unchanged)
    changes: list[Change]
    writes: list[tuple[str, bytes, int]]     # node files to install: (path, content, mode)
    warnings: list[Finding]                  # about the node files
    notes: list[Finding]                     # about the manifest's other audit flags


def node_files(policy_file: str, webhook_config_file: str, files: Sequence[Any]) -> list[tuple[str, bytes, int]]:
    """(node path, generated content, mode) of the bundle ``files`` kube-apiserver reads."""
    wanted = {policy_file, webhook_config_file}
    return [(f.install_to, f.content.encode("utf-8"), f.mode) for f in files if f.install_to in wanted]


def exposed_secret(path: str, mode: int | None, data: bytes | None) -> str | None:
    """One line when the kubeconfig ``data`` at ``path`` holds a key or token and ``mode`` lets group
    or others read it."""
    from kubeadm_audit import webhook

    if data is None or mode is None or not mode & 0o077:
        return None
    try:
        fields = webhook.inline_secrets(yamlio.load(data.decode("utf-8", "replace"), path))
    except InputError:   # not YAML we can read: look for the fields by name
        fields = [m.group(1).decode() for m in re.finditer(
            rb"^[ \t-]*(" + b"|".join(f.encode() for f in webhook.SECRET_FIELDS) + rb")[ \t]*:[ \t]*\S", data, re.M)]
    if not fields:
        return None
    return (f"{path} is {mode:04o} but holds {fields[0]}: anyone on the node who can read it has the webhook "
            "credentials; chmod 0600 (manifest apply --write-files does)")


def plan_apply(manifest: Manifest, text: str, files: Sequence[NodeFile], args: Sequence[tuple[str, str]],
               mounts: Sequence[HostPathMount], version: versions.KubeVersion | None, *, remove: bool = False,
               write_files: bool = False, hash_annotation: bool = False, force: bool = False,
               dry_run: bool = False) -> ApplyPlan:
    """What ``manifest apply`` does to ``manifest`` (edited in place) and the node ``files``.

    Node files that differ are installed with ``write_files`` (never looser than the bundle's
    mode, nor than an installed file's: 0640 stays 0640); a missing one without it is a
    ConflictError (kube-apiserver would not start), only warned about in a ``dry_run``. With
    ``remove`` the record's flags, volumes and mounts come out and nothing is written but the
    manifest. ForceableConflict for values someone else set, unless ``force``.
    """
    warnings: list[Finding] = []
    writes: list[tuple[str, bytes, int]] = []
    for node in files:
        current = node.installed_mode if node.installed is not None else None
        if node.installed == node.content and (current is None or not current & ~node.mode):
            continue
        if write_files:
            writes.append((node.path, node.content, node.mode if current is None else node.mode & current))
        elif node.installed is None:
            missing = (f"{node.path} does not exist on this node: kube-apiserver would not start. Install "
                       "the bundle first (make install) or pass --write-files")
            if not dry_run:
                raise ConflictError(missing, source=manifest.source)
            warnings.append(NODE_FILE_MISSING(missing))
        elif node.installed == node.content:
            exposed = exposed_secret(node.path, current, node.installed)
            warnings.append(NODE_FILE_EXPOSED(exposed) if exposed else NODE_FILE_MODE(
                f"{node.path} is {current:04o}, the bundle installs it {node.mode:04o} (--write-files sets it)"))
        else:
            warnings.append(NODE_FILE_DIFFERS(f"{node.path} differs from what this configuration generates; "
                                              "kube-apiserver reads the installed file (--write-files replaces it)"))
    hash_value = None
    if hash_annotation:
        planned = {path: content for path, content, _mode in writes}
        hash_value = config_hash([planned.get(n.path) or n.installed or n.content for n in files])
    notes: list[Finding] = []
    if remove:
        changes = apply(manifest, (), (), None)
    else:
        changes = apply(manifest, args, mounts, version, hash_value, force)
        stray = stray_audit_flags(manifest, args)
        if stray:
            notes.append(OTHER_AUDIT_FLAGS(f"the manifest also sets {', '.join('--' + n for n in stray)}, which this "
                                           "configuration does not: kept", source=manifest.source))
    return ApplyPlan(manifest.dump() if changes else text, changes, writes, warnings, notes)
