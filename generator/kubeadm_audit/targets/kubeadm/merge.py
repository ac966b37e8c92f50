"""Merging the audit flags and volumes into configuration users already have.

``merge_api_server`` is the one merge every injector shares (kubeadm config files,
the ``kubeadm-config`` ConfigMap, Cluster API ``KubeadmControlPlane``). It works on
plain mutable mappings and sequences -- ruamel's round-trip nodes subclass them -- and
edits in place, so untouched entries keep their order and comments. It plans every
change first and raises before touching anything, so a conflict leaves the input as
it was.

The file-level half (``load_target`` / ``merge_target`` / ``render``) finds the
ClusterConfiguration in a multi-document kubeadm config or inside the ConfigMap's
``data.ClusterConfiguration`` block string.
"""
from __future__ import annotations

import posixpath
from collections.abc import Mapping, MutableMapping, Sequence
from functools import partial

from kubeadm_audit import flags, ownership, versions, volumes, yamlio
from kubeadm_audit.changes import Change, flag
from kubeadm_audit.errors import ConflictError, ForceableConflict, InputError
from kubeadm_audit.findings import Finding
from kubeadm_audit.targets.kubeadm import documents as kubeadm
from kubeadm_audit.targets.kubeadm.findings import NOT_KUBEADM_CONFIGMAP, PATCHES_TWICE, UNMOUNTED, UNQUOTED_VALUE
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple
from kubeadm_audit.volumes import HostPathMount

if TYPE_CHECKING:
    from typing import Any, Callable

SHAPES = ("map", "list")


CLUSTER_KIND = kubeadm.CLUSTER_KIND
CONFIGMAP_KEY = kubeadm.CONFIGMAP_KEY


def kubeadm_api(document: Mapping[str, Any], source: str) -> str:
    """The kubeadm API version ("v1beta3" | "v1beta4") a kubeadm document is written in."""
    api_version = str(document.get("apiVersion") or "")
    group, _, version = api_version.partition("/")
    if group != kubeadm.GROUP or not version:
        raise InputError(f"not a kubeadm document (apiVersion {api_version!r}, expected "
                         f"{kubeadm.GROUP}/v1beta3 or /v1beta4)", source=source, field="apiVersion")
    if version in versions.KUBEADM_APIS:
        return version
    if version in versions.RETIRED_KUBEADM_APIS:
        raise InputError(f"{api_version} is no longer read by kubeadm (removed in kubeadm "
                         f"1.{versions.RETIRED_KUBEADM_APIS[version]}): convert "
                         "it to v1beta3 or v1beta4 first with 'kubeadm config migrate' of a kubeadm release "
                         "that still reads it", source=source, field="apiVersion")
    raise InputError(f"unsupported kubeadm API {api_version} (kubeadm-audit writes v1beta3 and v1beta4)",
                     source=source, field="apiVersion")


# --- the shared merge -------------------------------------------------------------------

def _text(value: Any) -> str:
    """A YAML scalar as kubeadm would need it as a string (for comparing)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _container(parent: MutableMapping[str, Any], key: str, want: type, where: str, source: str | None,
               shape_hint: str = "") -> Any:
    value = parent.get(key)
    if value is None or isinstance(value, want):
        return value
    expected = "a mapping" if want is MutableMapping else "a list"
    raise InputError(f"expected {expected}{shape_hint}, got {yamlio.kind_of(value)}", source=source, field=where)


def _volume_fields(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """(hostPath, mountPath, readOnly, pathType) with kubeadm's defaults filled in."""
    return (posixpath.normpath(_text(entry.get("hostPath"))) if entry.get("hostPath") else "",
            posixpath.normpath(_text(entry.get("mountPath"))) if entry.get("mountPath") else "",
            entry.get("readOnly") is True or _text(entry.get("readOnly")) == "true",
            _text(entry.get("pathType")))


#: Why a value that already reads right is rewritten.
_STRINGS_ONLY = "kubeadm decodes extraArgs values as strings only"


def _volume_change(where: str, action: str, entry: Mapping[str, Any]) -> Change:
    return Change(where, _text(entry.get("name")), action, _describe_volume(entry), _describe_volume(entry))


def _describe_volume(entry: Mapping[str, Any]) -> str:
    host, mount, read_only, path_type = _volume_fields(entry)
    return (f"{_text(entry.get('name'))!r} ({host} -> {mount}, {'ro' if read_only else 'rw'}, "
            f"pathType {path_type or '(empty)'})")


class _Plan:
    """Edits to apply once no conflict was found; ``changes`` say what."""

    __slots__ = ("changes", "conflicts", "edits")

    def __init__(self) -> None:
        self.edits: list[Callable[[], None]] = []
        self.changes: list[Change] = []
        self.conflicts: list[str] = []

    def add(self, change: Change, edit: Callable[[], None]) -> None:
        self.changes.append(change)
        self.edits.append(edit)


def merge_api_server(cluster: MutableMapping[str, Any], args: Sequence[tuple[str, str]],
                     mounts: Sequence[HostPathMount], shape: str, force: bool = False, *, source: str | None = None,
                     prefix: str = "", record: ownership.Record | None = None,
                     record_path: str = "") -> list[Change]:
    """Put ``args`` and ``mounts`` into ``cluster.apiServer.extraArgs`` / ``extraVolumes`` in place.

    ``shape`` is "map" (kubeadm v1beta3, CAPI v1beta1) or "list" (kubeadm v1beta4, CAPI
    v1beta2). ``record`` says what an earlier run set (see :mod:`ownership`): those values,
    while unchanged, are updated freely, and removed when no longer wanted -- so merging
    nothing (``args=()``, ``mounts=()``) takes out exactly what was added. An audit flag or
    extraVolume someone else set to another value is a conflict (ForceableConflict naming
    both values) unless ``force`` replaces it. ``record`` is updated in place to what this
    merge set. Existing entries stay where they are; no empty list or duplicate name is
    ever created; shared (aliased) YAML nodes are copied before the edit, never written
    through. Returns the changes made ([] = nothing to do). ``prefix`` (e.g.
    "spec.kubeadmConfigSpec.clusterConfiguration.") makes field names exact in messages;
    ``record_path`` is where ``cluster`` sits relative to the record's object.
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}")
    if not isinstance(cluster, MutableMapping):
        raise InputError(f"expected a mapping, got {yamlio.kind_of(cluster)}", source=source,
                         field=prefix.rstrip(".") or None)
    record = ownership.Record() if record is None else record
    where = f"{prefix}apiServer"
    api_server = _container(cluster, "apiServer", MutableMapping, where, source)
    if api_server is not None:
        for key in ("extraArgs", "extraVolumes"):
            if key in api_server:
                yamlio.unshare(cluster, ("apiServer", key))
        api_server = yamlio.unshare(cluster, ("apiServer",))
    holder: MutableMapping[str, Any] = {} if api_server is None else api_server
    plan = _Plan()
    created = list(record.created)
    new_args: dict[str, Any] = {}
    new_volumes: dict[str, Any] = {}
    if shape == "map":
        _plan_map_args(plan, holder, args, force, f"{where}.extraArgs", source, record.args, new_args)
    else:
        _plan_list_args(plan, holder, args, force, f"{where}.extraArgs", source, record.args, new_args)
    _plan_volumes(plan, holder, mounts, force, f"{where}.extraVolumes", source, record.volumes, new_volumes)
    if plan.conflicts:
        raise ForceableConflict("; ".join(plan.conflicts), source=source)
    if plan.edits and api_server is None:
        cluster["apiServer"] = holder
        created.append(f"{record_path}apiServer")
    for key in ("extraArgs", "extraVolumes"):
        if key not in holder:
            path = f"{record_path}apiServer.{key}"
            plan.edits.append(partial(_note_created, holder, key, path, created))
    for edit in plan.edits:
        edit()
    record.args, record.volumes = new_args, new_volumes
    record.created = drop_emptied(cluster, created, record_path, plan.changes, prefix)
    return plan.changes


def _note_created(holder: Mapping[str, Any], key: str, path: str, created: list[str]) -> None:
    """Record ``path`` as created by kubeadm-audit when the edits gave ``holder`` its ``key``."""
    if key in holder:
        created.append(path)


def drop_emptied(root: MutableMapping[str, Any], created: list[str], record_path: str, changes: list[Change],
                 message_prefix: str = "") -> list[str]:
    """Remove the containers kubeadm-audit created (``created``, paths below ``record_path``) that are
    now empty, deepest first; return the ``created`` entries still standing."""
    kept = []
    for path in sorted(dict.fromkeys(created), key=lambda p: -p.count(".")):
        if not path.startswith(record_path) or path.startswith("<"):
            kept.append(path)
            continue
        keys = path[len(record_path):].split(".")
        parent: Any = root
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, Mapping) else None
        if not isinstance(parent, MutableMapping) or keys[-1] not in parent:
            continue
        value = parent[keys[-1]]
        if isinstance(value, (Mapping, list)) and not value:
            del parent[keys[-1]]
            changes.append(Change(f"{message_prefix}{'.'.join(keys)}", "", "removed", detail="(empty)"))
            continue
        kept.append(path)
    return [p for p in dict.fromkeys(created) if p in kept]


def _plan_map_args(plan: _Plan, api_server: MutableMapping[str, Any], args: Sequence[tuple[str, str]], force: bool,
                   where: str, source: str | None, owned: Mapping[str, str], new: dict[str, Any]) -> None:
    extra = _container(api_server, "extraArgs", MutableMapping, where, source,
                       " (this API version takes extraArgs as a map of name: value)")
    target: MutableMapping[str, Any] = {} if extra is None else extra
    start = len(plan.edits)
    wanted = dict(args)
    for name, value in args:
        if name not in target:
            plan.add(flag(where, "added", name, value), partial(target.__setitem__, name, value))
            new[name] = value
            continue
        current = target[name]
        ours = name in owned and _text(current) == owned[name]
        if _text(current) == value:
            if not isinstance(current, str):
                plan.add(flag(where, "quoted", name, value, note=_STRINGS_ONLY),
                         partial(target.__setitem__, name, value))
            if ours:
                new[name] = value
            continue
        if not ours and not force:
            plan.conflicts.append(f"{where}.{name} is {_text(current)!r} in the file but the audit "
                                  f"configuration sets {value!r}" + _changed_since(name, owned))
            continue
        plan.add(flag(where, "replaced", name, value, old=_text(current)),
                 partial(target.__setitem__, name, value))
        new[name] = value
    for name, value in owned.items():
        if name not in wanted and name in target and _text(target[name]) == value:
            plan.add(flag(where, "removed", name, value), partial(target.__delitem__, name))
    if extra is None and len(plan.edits) > start:
        plan.edits.insert(start, lambda: api_server.__setitem__("extraArgs", target))


def _changed_since(name: str, owned: Mapping[str, str]) -> str:
    return f" (kubeadm-audit had set {owned[name]!r}; it was changed since)" if name in owned else ""


def _plan_list_args(plan: _Plan, api_server: MutableMapping[str, Any], args: Sequence[tuple[str, str]], force: bool,
                    where: str, source: str | None, owned: Mapping[str, str], new: dict[str, Any]) -> None:
    extra = _container(api_server, "extraArgs", list, where, source,
                       " (this API version takes extraArgs as a list of {name, value})")
    target: list[Any] = [] if extra is None else extra
    for index, entry in enumerate(target):
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise InputError("expected a {name, value} entry", source=source, field=f"{where}[{index}]")
    start = len(plan.edits)
    wanted = dict(args)
    for name, value in args:
        same = [entry for entry in target if _text(entry.get("name")) == name]
        if not same:
            plan.add(flag(where, "added", name, value),
                     partial(target.append, {"name": name, "value": value}))
            new[name] = value
            continue
        values = [_text(entry.get("value")) for entry in same]
        ours = name in owned and all(v == owned[name] for v in values)
        if all(v == value for v in values):
            for entry in same:
                if not isinstance(entry.get("value"), str):
                    plan.add(flag(where, "quoted", name, value, note=_STRINGS_ONLY),
                             partial(entry.__setitem__, "value", value))
            if ours:
                new[name] = value
            continue
        if not ours and not force:
            other = next(v for v in values if v != value)
            plan.conflicts.append(f"{where}[{name}] is {other!r} in the file but the audit configuration "
                                  f"sets {value!r}" + _changed_since(name, owned))
            continue
        plan.add(flag(where, "replaced", name, value, old=", ".join(values)),
                 partial(_replace_entries, target, same, {**same[0], "value": value}))
        new[name] = value
    for name, value in owned.items():
        if name in wanted:
            continue
        mine = [entry for entry in target if _text(entry.get("name")) == name and _text(entry.get("value")) == value]
        if mine:
            plan.add(flag(where, "removed", name, value), partial(_delete_entries, target, mine))
    if extra is None and len(plan.edits) > start:
        plan.edits.insert(start, lambda: api_server.__setitem__("extraArgs", target))


def _delete_entries(target: list[Any], entries: Sequence[Any]) -> None:
    for entry in entries:
        for index, candidate in enumerate(target):
            if candidate is entry:
                del target[index]
                break


def _replace_entries(target: list[Any], old: Sequence[Any], new: Mapping[str, Any]) -> None:
    """Put ``new`` where the first of ``old`` was and drop the rest (kept as a node when possible)."""
    first = old[0]
    if isinstance(first, MutableMapping):
        for key in [k for k in first if k not in new]:
            del first[key]
        for key, value in new.items():
            if key not in first or first[key] != value or type(first[key]) is not type(value):
                first[key] = value
    _delete_entries(target, old[1:])


def _plan_volumes(plan: _Plan, api_server: MutableMapping[str, Any], mounts: Sequence[HostPathMount], force: bool,
                  where: str, source: str | None, owned: Mapping[str, dict[str, Any]], new: dict[str, Any]) -> None:
    extra = _container(api_server, "extraVolumes", list, where, source)
    target: list[Any] = [] if extra is None else extra
    for index, entry in enumerate(target):
        if not isinstance(entry, Mapping):
            raise InputError("expected a HostPathMount mapping", source=source, field=f"{where}[{index}]")

    def ours(entry: Mapping[str, Any]) -> bool:
        name = _text(entry.get("name"))
        return name in owned and _volume_fields(entry) == _volume_fields(owned[name])

    start = len(plan.edits)
    wanted = {mount.name for mount in mounts}
    for mount in mounts:
        ours_entry = mount.kubeadm()
        wanted_fields = _volume_fields(ours_entry)
        clashing = [entry for entry in target
                    if _text(entry.get("name")) == mount.name
                    or _volume_fields(entry)[1] == posixpath.normpath(mount.mount_path)]
        if not clashing:
            plan.add(_volume_change(where, "added", ours_entry), partial(target.append, dict(ours_entry)))
            new[mount.name] = dict(ours_entry)
            continue
        # The same mount under another name is the same mount: nothing to do.
        if len(clashing) == 1 and _volume_fields(clashing[0]) == wanted_fields:
            if _text(clashing[0].get("name")) == mount.name and mount.name in owned:
                new[mount.name] = dict(ours_entry)
            continue
        if not force and not all(ours(entry) or _volume_fields(entry) == wanted_fields for entry in clashing):
            other = next((e for e in clashing if _volume_fields(e) != wanted_fields and not ours(e)), clashing[-1])
            plan.conflicts.append(f"{where}: {_describe_volume(other)} in the file clashes with the audit "
                                  f"volume {_describe_volume(ours_entry)}")
            continue
        plan.add(Change(where, mount.name, "replaced", _describe_volume(ours_entry),
                        f"{', '.join(_describe_volume(e) for e in clashing)} with {_describe_volume(ours_entry)}"),
                 partial(_replace_entries, target, clashing, ours_entry))
        new[mount.name] = dict(ours_entry)
    for name, recorded in owned.items():
        if name in wanted:
            continue
        mine = [entry for entry in target if _text(entry.get("name")) == name
                and _volume_fields(entry) == _volume_fields(recorded)]
        if mine:
            plan.add(_volume_change(where, "removed", mine[0]), partial(_delete_entries, target, mine))
    if extra is None and len(plan.edits) > start:
        plan.edits.insert(start, lambda: api_server.__setitem__("extraVolumes", target))


# --- what the merged configuration says ------------------------------------------------------

def api_server_args(cluster: Mapping[str, Any]) -> list[Any]:
    """(name, value) pairs of ``apiServer.extraArgs`` in either shape, in order."""
    api_server = cluster.get("apiServer") if isinstance(cluster, Mapping) else None
    return kubeadm.extra_args_items((api_server or {}).get("extraArgs")) if isinstance(api_server, Mapping) else []


def api_server_mounts(cluster: Mapping[str, Any]) -> list[Any]:
    """The well-formed ``apiServer.extraVolumes`` as HostPathMounts (others are skipped)."""
    api_server = cluster.get("apiServer") if isinstance(cluster, Mapping) else None
    found = []
    for entry in ((api_server or {}).get("extraVolumes") or []) if isinstance(api_server, Mapping) else []:
        if isinstance(entry, Mapping) and entry.get("name") and entry.get("hostPath") and entry.get("mountPath"):
            host, mount, read_only, path_type = _volume_fields(entry)
            found.append(HostPathMount(_text(entry["name"]), host, mount, read_only, path_type))
    return found


def check_audit_flags(args: Sequence[tuple[str, str]], mounts: Sequence[HostPathMount],
                      version: versions.KubeVersion, source: str | None = None,
                      field_name: str = "apiServer.extraArgs") -> list[Finding]:
    """Validate the final audit flags as kube-apiserver would: ConflictError on what it refuses.

    Returns warnings (accepted settings that do not do what people expect, paths no volume shows).
    """
    audit = [(name, value) for name, value in args if name.startswith("audit-")]
    occurrences = flags.parse_command(flags.to_command(audit))
    problems = flags.validate(flags.effective(occurrences), version, occurrences)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConflictError("kube-apiserver would refuse the merged audit flags: "
                            + "; ".join(str(p) for p in errors), source=source, field=field_name)
    return problems + [UNMOUNTED(message, path=field_name, source=source or "")
                       for message in volumes.uncovered(audit, mounts)]


# --- kubeadm config files and the kubeadm-config ConfigMap ---------------------------------

class Target(NamedTuple):
    """Where in a user's file the ClusterConfiguration lives, and how to write it back."""

    source: str
    text: str
    stream: yamlio.RoundTrip
    cluster: MutableMapping[str, Any]
    api: str
    notes: list[Finding]                              # warnings found on the way
    configmap: MutableMapping[str, Any] | None = None       # the ConfigMap, when the file is one
    inner: yamlio.RoundTrip | None = None          # the ClusterConfiguration's own stream
    added_cluster: bool = False                       # a ClusterConfiguration document was appended

    @property
    def kubernetes_version(self) -> str | None:
        value = self.cluster.get("kubernetesVersion")
        return _text(value) if value not in (None, "") else None

    @property
    def field_prefix(self) -> str:
        return f"data.{CONFIGMAP_KEY}: " if self.configmap is not None else ""


def load_target(text: str, source: str) -> Target:
    """Parse a kubeadm config file or a kubectl-printed ``kubeadm-config`` ConfigMap."""
    yamlio.load_all(text, source)     # the project's reader: clear errors, duplicate keys refused
    stream = yamlio.RoundTrip(text, source)
    documents = [doc for doc in stream.documents if doc is not None]
    if not documents:
        raise InputError("empty file: expected kubeadm configuration documents or the kubeadm-config "
                         "ConfigMap", source=source)
    for index, doc in enumerate(documents):
        if not isinstance(doc, MutableMapping):
            raise InputError(f"document {index + 1} is {yamlio.kind_of(doc)}, not a Kubernetes-style object",
                             source=source)
    configmaps = [doc for doc in documents if doc.get("kind") == "ConfigMap"]
    if configmaps:
        if len(documents) > 1:
            raise InputError("a ConfigMap file must hold only the kubeadm-config ConfigMap", source=source)
        return _configmap_target(text, stream, configmaps[0], source)
    kubeadm_docs = [doc for doc in documents if str(doc.get("apiVersion") or "").startswith(kubeadm.GROUP + "/")]
    if not kubeadm_docs:
        raise InputError(f"no kubeadm configuration ({kubeadm.GROUP}/...) and no kubeadm-config ConfigMap found",
                         source=source)
    apis = {kubeadm_api(doc, f"{source}: {doc.get('kind')}") for doc in kubeadm_docs}
    clusters = [doc for doc in kubeadm_docs if doc.get("kind") == CLUSTER_KIND]
    if len(clusters) > 1:
        raise InputError(f"{len(clusters)} ClusterConfiguration documents: kubeadm reads one, so which "
                         "to change is ambiguous", source=source, field="kind")
    if clusters:
        return Target(source, text, stream, clusters[0], kubeadm_api(clusters[0], source), [])
    if len(apis) > 1:
        raise InputError("kubeadm documents mix v1beta3 and v1beta4 and there is no ClusterConfiguration",
                         source=source, field="apiVersion")
    api = apis.pop()
    from ruamel.yaml.comments import CommentedMap

    cluster: MutableMapping[str, Any] = CommentedMap([("apiVersion", f"{kubeadm.GROUP}/{api}"), ("kind", CLUSTER_KIND)])
    return Target(source, text, stream, cluster, api, [], added_cluster=True)


def _configmap_target(text: str, stream: yamlio.RoundTrip, configmap: MutableMapping[str, Any], source: str) -> Target:
    data = configmap.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get(CONFIGMAP_KEY), str):
        raise InputError("a ConfigMap without a ClusterConfiguration string: expected "
                         "'kubectl -n kube-system get cm kubeadm-config -o yaml'", source=source,
                         field=f"data.{CONFIGMAP_KEY}")
    inner_source = f"{source}: data.{CONFIGMAP_KEY}"
    yamlio.load_all(str(data[CONFIGMAP_KEY]), inner_source)
    inner = yamlio.RoundTrip(str(data[CONFIGMAP_KEY]), inner_source)
    docs = [doc for doc in inner.documents if doc is not None]
    if len(docs) != 1 or not isinstance(docs[0], MutableMapping) or docs[0].get("kind") != CLUSTER_KIND:
        raise InputError("expected exactly one ClusterConfiguration document", source=source,
                         field=f"data.{CONFIGMAP_KEY}")
    target = Target(source, text, stream, docs[0], kubeadm_api(docs[0], inner_source), [],
                    configmap=configmap, inner=inner)
    metadata = configmap.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InputError(f"expected a mapping, found {yamlio.kind_of(metadata)}", source=source, field="metadata")
    name = (metadata or {}).get("name")
    if name != kubeadm.CONFIGMAP[1]:
        target.notes.append(NOT_KUBEADM_CONFIGMAP(f"the ConfigMap is named {name!r}, not kubeadm-config: kubeadm "
                                                  f"reads only {'/'.join(kubeadm.CONFIGMAP)}",
                                                  path="metadata.name", source=source))
    return target


#: ``created`` entry for a ClusterConfiguration document kubeadm-audit appended to a file.
ADDED_DOCUMENT = "<document>"


def read_record(target: Target) -> ownership.Record:
    """What an earlier merge set here: the ConfigMap's (or the document's) annotation, else our comment line."""
    holder = target.configmap if target.configmap is not None else target.cluster
    if target.configmap is not None or isinstance(target.cluster.get("metadata"), Mapping):
        return ownership.read_annotation(holder, target.source)
    return ownership.read_comment(target.cluster, target.source)


def _write_record(target: Target, record: ownership.Record) -> bool:
    if target.configmap is not None or isinstance(target.cluster.get("metadata"), Mapping):
        holder = target.configmap if target.configmap is not None else target.cluster
        yamlio.unshare(holder, ("metadata", "annotations"))
        return ownership.write_annotation(holder, record, target.source)
    before = ownership.read_comment(target.cluster, target.source).encode()
    ownership.write_comment(target.cluster, record)
    return before != record.encode()


def merge_target(target: Target, args: Sequence[tuple[str, str]], mounts: Sequence[HostPathMount],
                 version: versions.KubeVersion | None, force: bool = False,
                 patches_directory: str | None = None) -> list[Change]:
    """Merge into the target's ClusterConfiguration, then check the flags kube-apiserver will get.

    Returns the changes; warnings are added to ``target.notes``. Raises before any edit
    on conflicts, and ConflictError (after planning, before rendering) when the merged
    flags would stop kube-apiserver. With nothing to merge (``args=()``, ``mounts=()``,
    ``version`` None) it removes what the record says an earlier merge added.
    """
    import copy

    shape = "map" if target.api == "v1beta3" else "list"
    record = read_record(target)
    probe = yamlio.plain_copy(target.cluster)
    merge_api_server(probe, args, mounts, shape, force, source=target.source, prefix=target.field_prefix,
                     record=copy.deepcopy(record))
    if version is not None:
        target.notes.extend(check_audit_flags(api_server_args(probe), api_server_mounts(probe), version,
                                              target.source, f"{target.field_prefix}apiServer.extraArgs"))
    if patches_directory:
        target.notes.extend(_patch_warnings(target, patches_directory))
    target.notes.extend(_unquoted_warnings(target, probe))
    changes = merge_api_server(target.cluster, args, mounts, shape, force, source=target.source,
                               prefix=target.field_prefix, record=record)
    if target.added_cluster:
        if changes:
            target.stream.documents.append(target.cluster)
            changes.insert(0, Change("", CLUSTER_KIND, "added", f"{kubeadm.GROUP}/{target.api}",
                                     f"a {CLUSTER_KIND} document ({kubeadm.GROUP}/{target.api})"))
            record.created.append(ADDED_DOCUMENT)
    elif ADDED_DOCUMENT in record.created and set(target.cluster) <= {"apiVersion", "kind"}:
        target.stream.documents[:] = [doc for doc in target.stream.documents if doc is not target.cluster]
        changes.append(Change("", CLUSTER_KIND, "removed",
                              detail=f"the {CLUSTER_KIND} document kubeadm-audit had added"))
        return changes
    if _write_record(target, record) and not changes:
        changes.append(ownership.record_updated())
    return changes



def _patch_warnings(target: Target, patches_directory: str) -> list[Finding]:
    """Audit patches on top of audit extraVolumes give the Pod duplicate mounts."""
    out = []
    for doc in target.stream.documents:
        if not isinstance(doc, Mapping):
            continue
        for where, holder in (("", doc), ("apply.", doc.get("apply")), ("node.", doc.get("node"))):
            directory = ((holder or {}).get("patches") or {}).get("directory") if isinstance(holder, Mapping) else None
            if directory and posixpath.normpath(str(directory)) == posixpath.normpath(patches_directory):
                out.append(PATCHES_TWICE(
                    f"{doc.get('kind')} uses the audit patches directory {directory}: with the audit extraVolumes "
                    "in the ClusterConfiguration as well, kube-apiserver gets every audit mount twice and the "
                    "kubelet refuses the Pod; drop one of them", path=f"{where}patches.directory",
                    source=target.source))
    return out


def _unquoted_warnings(target: Target, merged: Mapping[str, Any]) -> list[Finding]:
    """The file's own extraArgs values that are not strings: kubeadm refuses the whole file
    (it decodes them as strings only). Not ours to change, so said rather than quoted."""
    api_server = merged.get("apiServer")
    extra = api_server.get("extraArgs") if isinstance(api_server, Mapping) else None
    if isinstance(extra, Mapping):
        pairs = list(extra.items())
    else:
        pairs = [(e.get("name"), e.get("value")) for e in extra or [] if isinstance(e, Mapping)]
    where = f"{target.field_prefix}apiServer.extraArgs"
    return [UNQUOTED_VALUE(f"the value of {name} is {yamlio.kind_of(value)}, and kubeadm decodes extraArgs values "
                           "as strings only, so it refuses this file: quote the value as you mean it",
                           path=where, source=target.source)
            for name, value in pairs if value is not None and not isinstance(value, str)]


def render(target: Target) -> str:
    """The file's new text (round-trip: everything not merged stays as it was)."""
    if target.configmap is not None and target.inner is not None:
        target.configmap["data"][CONFIGMAP_KEY] = yamlio.literal(target.inner.dump_one(target.cluster))
    return target.stream.dump()
