"""The KRM function's handler for a kind ``Cluster`` (``kind.x-k8s.io/v1alpha4``).

Inject mode gives the Cluster what ``generate --target kind`` writes (the rendering is
``targets.kind``'s, shared): one ``kubeadmConfigPatches`` entry with kube-apiserver's audit
flags and volumes, and ``extraMounts`` on every control-plane node (a Cluster without
``nodes`` gets kind's default one, written out). The mounts name host files relative to the
directory kind runs in (``./audit-policy.yaml``, ``./audit-webhook.yaml``, ``./audit-log``),
so the function also emits those files as resources: the policy as the ``audit.k8s.io/v1``
``Policy`` it is and the webhook kubeconfig as its ``v1`` ``Config``, each annotated with
a kpt path beside the Cluster's file. kube-apiserver reads both with their ``metadata``
(Policy has ObjectMeta; kubeconfig loading ignores unknown fields).

What it set it records on the Cluster (annotation ``kubeadm-audit.dev/managed``, see
:mod:`ownership`): the patch's digest under ``files``, the mounts under ``volumes`` (keyed
by ``containerPath``), the others' patches a forced run merged it over (their digests, under
``files`` too), and the containers it created under ``created``. A value someone else
set stays theirs: a mount of theirs at one of our node paths, or another patch that sets an
audit flag to another value or any ``apiServer.extraVolumes`` (kind merges patches as RFC 7386
merge patches, so one ``extraVolumes`` list replaces the other), is a conflict unless forced
(forced, our patch goes last, so kind merges it over theirs). A control-plane node's own patch
is applied after every cluster patch, so a conflict there cannot be forced.

kind's strict loader refuses ``metadata``, which kpt and kustomize require: ``kubeadm-audit
krm --strip-kubeadm-metadata`` drops it before kind reads the file.

Imported only when a kind Cluster passes through (the KRM start-up path stays short).
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from kubeadm_audit import ownership, yamlio
from kubeadm_audit.changes import Change
from kubeadm_audit.errors import ConflictError, ForceableConflict, InputError
from kubeadm_audit.fnconfig import CONFIG_PATHS
from kubeadm_audit.pipeline.bundle import POLICY_FILE, WEBHOOK_FILE
from kubeadm_audit.targets import kind
from kubeadm_audit.targets.capi.kcp import OWNER_ANNOTATION
from kubeadm_audit.targets.kubeadm import documents

#: The record's ``files`` key for the patch's digest.
PATCH_KEY = "kubeadmConfigPatches"
#: Record ``files`` keys (prefix + digest) of others' patches a forced run merged ours over: settled
#: while ours still comes after them, so a re-run without force converges instead of failing.
OVERRIDDEN = "kubeadmConfigPatches overridden "
#: ``kindest/node:v1.31.2`` (a digest may follow): the Kubernetes version of a node image.
_IMAGE_VERSION = re.compile(r":(v\d+\.\d+\.\d+)(?:@sha256:[0-9a-f]+)?$")


def owner(resource: Mapping[str, Any]) -> str:
    """The owner annotation value of what the function emits for this Cluster."""
    meta = resource.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return f"Cluster.kind.x-k8s.io/{name}"


def handle(resource: MutableMapping[str, Any], audit_for: Any, settings: Any, source: str) -> tuple[Any, ...] | None:
    """Inject into (or remove from) the Cluster in place: (changes, findings, (owner, emitted
    resources, the kpt file paths they take), audit)."""
    if resource.get("apiVersion") != kind.API_VERSION:
        raise InputError(f"kind's configuration API is {kind.API_VERSION} (kind v0.20+); "
                         f"{resource.get('apiVersion')!r} is not one kubeadm-audit writes", source=source,
                         field="apiVersion")
    meta = resource.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise InputError("a kind Cluster in a pipeline needs metadata.name (drop metadata afterwards with "
                         "'kubeadm-audit krm --strip-kubeadm-metadata': kind refuses it)", source=source,
                         field="metadata.name")
    nodes = _nodes(resource, source)
    if nodes and not any(_control_plane(node) for node in nodes):
        raise InputError("no control-plane node: kind needs one, and kube-apiserver runs there", source=source,
                         field="nodes")
    patches = _patches(resource.get("kubeadmConfigPatches"), source, "kubeadmConfigPatches")
    record = ownership.read_annotation(resource, source)
    removing = settings.mode == "remove"
    if removing and not record:
        return [], [], (owner(resource), [], []), None
    audit = None if removing else audit_for(_version(nodes))
    changes: list[Change] = []
    if audit is not None:
        mounts = kind.extra_mounts(audit.cfg, audit.parts)
        patch = kind.config_patch(audit.parts)
    else:
        mounts, patch = [], None
    conflicts: list[str] = []
    over: set[str] = set()
    owned_patch = record.files.get(PATCH_KEY)
    ours = [i for i, text in enumerate(patches) if owned_patch and ownership.digest({"patch": text}) == owned_patch]
    if audit is not None:
        args = dict(audit.parts.args)
        node_level: list[str] = []
        overridden = {key[len(OVERRIDDEN):] for key in record.files if key.startswith(OVERRIDDEN)}
        for where, index, text in _other_patches(resource, nodes, patches, ours):
            found = _patch_conflicts(text, args, where, source) if text != patch else []  # identical: agrees
            if not found:
                continue
            if index is None:
                node_level.extend(found)
                continue
            key = ownership.digest({"patch": text})
            over.add(key)
            if key not in overridden or not ours or index > ours[0]:
                conflicts.extend(found)           # forced over earlier and still merged under ours: settled
        if node_level:
            raise ConflictError("; ".join(node_level) + " (kind applies a node's patches after the cluster's, "
                                "so the audit patch cannot win even when forced: take these out of the node's "
                                "patch)", source=source)
    theirs: list[set[str]] = []
    plans = [_plan_mounts(node, index, mounts, record.volumes, settings.force, conflicts, theirs)
             for index, node in enumerate(nodes) if _control_plane(node)]
    if conflicts and not settings.force:
        raise ForceableConflict("; ".join(conflicts), source=source)
    # the edits: nothing above wrote into the resource
    created = list(record.created)
    if patch is not None and not nodes:
        resource["nodes"] = nodes = [{"role": kind.CONTROL_PLANE}]
        created.append("nodes")
        plans = [_plan_mounts(nodes[0], 0, mounts, {}, settings.force, [], theirs)]
    for plan in plans:
        changes.extend(plan(created))
    patch_changes, owns_patch = _set_patch(resource, patches, ours, patch, created, bool(conflicts))
    changes.extend(patch_changes)
    record.files = {PATCH_KEY: ownership.digest({"patch": patch}), **{OVERRIDDEN + key: "forced" for key in over}} \
        if owns_patch else {}
    everywhere = set.intersection(*theirs) if theirs else set()
    record.volumes = {path: dict(m) for m in mounts
                      if (path := posixpath.normpath(m["containerPath"])) not in everywhere}
    record.created = _drop_emptied(resource, created, changes)
    yamlio.unshare(resource, ("metadata", "annotations"))
    if ownership.write_annotation(resource, record, source) and not changes:
        changes.append(ownership.record_updated())
    emitted = _emitted(resource, audit) if audit is not None else []
    warnings: list[Any] = []
    if audit is not None:
        warnings.extend(kind.findings(audit.cfg))
        if _has_credentials(audit.cfg.webhook):
            warnings.append(kind.READABLE_CREDENTIALS(
                f"the webhook kubeconfig ({WEBHOOK_FILE}) holds client credentials, and kpt writes new files "
                "readable by others (0644): chmod 600 it, and keep it out of version control",
                path="spec.webhook", source=audit.cfg.source or ""))
    paths = [value for item in emitted for key, value in item["metadata"]["annotations"].items() if key in CONFIG_PATHS]
    return changes, warnings, (owner(resource), emitted, sorted(set(paths))), audit


def _has_credentials(webhook: Any) -> bool:
    from kubeadm_audit.webhook import has_userinfo

    return webhook is not None and bool(webhook.client_key or webhook.token or has_userinfo(webhook.server))


# --- reading the Cluster strictly ------------------------------------------------------------

def _nodes(resource: MutableMapping[str, Any], source: str) -> list[Any]:
    """``nodes`` as fresh mappings (no YAML alias shared with another node), checked."""
    raw = resource.get("nodes")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError(f"expected a list of nodes, got {yamlio.kind_of(raw)}", source=source, field="nodes")
    for index, node in enumerate(raw):
        where = f"nodes[{index}]"
        if not isinstance(node, Mapping):
            raise InputError(f"expected a node mapping, got {yamlio.kind_of(node)}", source=source, field=where)
        for key in ("role", "image"):
            if key in node and not isinstance(node[key], str):
                raise InputError(f"expected a string, got {yamlio.kind_of(node[key])}", source=source,
                                 field=f"{where}.{key}")
        mounts = node.get("extraMounts")
        if mounts is not None:
            if not isinstance(mounts, list):
                raise InputError(f"expected a list of mounts, got {yamlio.kind_of(mounts)}", source=source,
                                 field=f"{where}.extraMounts")
            for at, mount in enumerate(mounts):
                if not isinstance(mount, Mapping) or not isinstance(mount.get("containerPath", ""), str):
                    raise InputError("expected a mount mapping with a string containerPath", source=source,
                                     field=f"{where}.extraMounts[{at}]")
        _patches(node.get("kubeadmConfigPatches"), source, f"{where}.kubeadmConfigPatches")
    fresh = yamlio.plain_copy(raw)
    resource["nodes"] = fresh
    return list(fresh)


def _patches(raw: Any, source: str, where: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError(f"expected a list of YAML patches (strings), got {yamlio.kind_of(raw)}",
                         source=source, field=where)
    for index, text in enumerate(raw):
        if not isinstance(text, str):
            raise InputError(f"expected a YAML patch as a string, got {yamlio.kind_of(text)}", source=source,
                             field=f"{where}[{index}]")
    return list(raw)



def _control_plane(node: Mapping[str, Any]) -> bool:
    return bool(node.get("role", kind.CONTROL_PLANE) == kind.CONTROL_PLANE)


def _version(nodes: Sequence[Mapping[str, Any]]) -> str | None:
    """The Kubernetes version of the first control-plane node's image (None: kind's default image)."""
    for node in nodes:
        if _control_plane(node):
            match = _IMAGE_VERSION.search(str(node.get("image") or ""))
            return match.group(1) if match else None
    return None


# --- the patch --------------------------------------------------------------------------------

def _other_patches(resource: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]], patches: Sequence[str],
                   ours: Sequence[int]) -> list[tuple[str, int | None, str]]:
    """Every patch kind applies to a control-plane node's kubeadm config, but ours: (where, its
    index among the cluster's patches or None for a node's, text)."""
    out: list[tuple[str, int | None, str]] = [(f"kubeadmConfigPatches[{i}]", i, text)
                                              for i, text in enumerate(patches) if i not in ours]
    for index, node in enumerate(nodes):
        if _control_plane(node):
            out.extend((f"nodes[{index}].kubeadmConfigPatches[{i}]", None, text)
                       for i, text in enumerate(node.get("kubeadmConfigPatches") or []))
    return out


def _patch_conflicts(text: str, args: Mapping[str, str], where: str, source: str) -> list[str]:
    """What another ClusterConfiguration patch sets that kind's merge would fight ours over."""
    out = []
    try:
        loaded = yamlio.load_all(text, source="the patch")
    except InputError as exc:
        raise InputError(f"kind could not read this patch: {exc.message}", source=source, field=where) from None
    for document in loaded:
        if not isinstance(document, Mapping) or document.get("kind") != documents.CLUSTER_KIND:
            continue
        api_server = document.get("apiServer")
        if not isinstance(api_server, Mapping):
            continue
        extra = api_server.get("extraArgs")
        pairs: list[tuple[Any, Any]] = []
        if isinstance(extra, Mapping):
            pairs = list(extra.items())
        elif isinstance(extra, list):
            pairs = [(e.get("name"), e.get("value")) for e in extra if isinstance(e, Mapping)]
        for name, value in pairs:
            if name in args and str(value) != args[name]:
                out.append(f"{where} sets apiServer.extraArgs {name}={value!s}, the audit configuration {args[name]}")
        if api_server.get("extraVolumes"):
            out.append(f"{where} sets apiServer.extraVolumes, and kind's merge of the patches keeps only one "
                       "extraVolumes list: move those volumes out of the way of the audit ones")
    return out


def _set_patch(resource: MutableMapping[str, Any], patches: list[str], ours: Sequence[int], patch: str | None,
               created: list[str], last: bool) -> tuple[list[Change], bool]:
    """Our patch where the one we wrote before stands (or last, or when forced past a conflict, last
    again, so it is merged after the others); none when removing. Returns (changes, whether the
    patch in the Cluster is ours)."""
    if patch is not None and not ours and patch in patches:
        return [], False                              # someone else's identical patch does it already
    new = [text for i, text in enumerate(patches) if i not in ours]
    if patch is not None:
        new.insert(len(new) if last or not ours else ours[0], patch)
    if new == patches:
        return [], patch is not None
    action = "removed" if patch is None else "replaced" if ours else "added"
    if PATCH_KEY not in resource:
        created.append(PATCH_KEY)
    resource[PATCH_KEY] = new
    return [Change(PATCH_KEY, "audit patch", action, detail="the kube-apiserver audit patch")], patch is not None


# --- the mounts -------------------------------------------------------------------------------

def _plan_mounts(node: MutableMapping[str, Any], index: int, mounts: Sequence[Mapping[str, Any]],
                 owned: Mapping[str, Mapping[str, Any]], force: bool, conflicts: list[str],
                 theirs: list[set[str]]) -> Any:
    """Check one control-plane node's mounts now; the returned edit applies them later."""
    where = f"nodes[{index}].extraMounts"
    current = list(node.get("extraMounts") or [])

    def key(mount: Mapping[str, Any]) -> str:
        return posixpath.normpath(str(mount.get("containerPath") or ""))

    def same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        return (str(a.get("hostPath")), key(a), bool(a.get("readOnly"))) == \
            (str(b.get("hostPath")), key(b), bool(b.get("readOnly")))

    wanted = {key(m): m for m in mounts}
    keep: list[Any] = []
    adds: list[tuple[str, Mapping[str, Any]]] = []
    unowned: set[str] = set()
    for mount in current:
        path = key(mount)
        mine = path in owned and same(mount, owned[path])
        if path in wanted:
            if same(mount, wanted[path]):
                keep.append(mount)
                wanted.pop(path)
                if not mine:
                    unowned.add(path)             # someone else's, set the same: stays theirs
                continue
            if not mine and not force:
                conflicts.append(f"{where}: {mount.get('hostPath')} is mounted at {path}, where the audit "
                                 f"configuration mounts {wanted[path]['hostPath']}")
            continue                                  # replaced below
        if mine:
            continue                                  # ours, no longer wanted: removed
        keep.append(mount)
    adds = list(wanted.items())
    theirs.append(unowned)

    def edit(created: list[str]) -> list[Change]:
        new = list(keep)
        new.extend(dict(mount) for _path, mount in adds)
        removed = [m for m in current if not any(m is k for k in keep)]
        if len(new) == len(current) and not removed:
            return []
        if "extraMounts" not in node:
            created.append(f"{where}")
        node["extraMounts"] = new
        changes = [Change(where, key(m), "removed", detail=key(m)) for m in removed
                   if key(m) not in dict(adds)]
        changes += [Change(where, path, "added" if not any(key(m) == path for m in removed) else "replaced",
                           detail=path) for path, _m in adds]
        return changes

    return edit


def _drop_emptied(resource: MutableMapping[str, Any], created: list[str], changes: list[Change]) -> list[str]:
    """Remove the containers the function created that are now empty; the rest stay recorded."""
    kept: list[str] = []
    nodes = resource.get("nodes")
    for path in dict.fromkeys(created):
        match = re.fullmatch(r"nodes\[(\d+)\]\.extraMounts", path)
        if match and isinstance(nodes, list) and int(match.group(1)) < len(nodes):
            node = nodes[int(match.group(1))]
            if isinstance(node, MutableMapping) and node.get("extraMounts") == []:
                del node["extraMounts"]
                changes.append(Change(path, "", "removed", detail="(empty)"))
                continue
            kept.append(path)
        elif path == PATCH_KEY and resource.get(PATCH_KEY) == []:
            del resource[PATCH_KEY]
            changes.append(Change(path, "", "removed", detail="(empty)"))
        elif path != "nodes" and not match and path in resource:
            kept.append(path)
    nodes = resource.get("nodes")
    if "nodes" in created:
        if nodes == [{"role": kind.CONTROL_PLANE}]:
            del resource["nodes"]
            changes.append(Change("nodes", "", "removed", detail="(kind's default control-plane node)"))
        elif nodes is not None:
            kept.insert(0, "nodes")
    return kept


# --- the host files, as resources ------------------------------------------------------------

def _emitted(resource: Mapping[str, Any], audit: Any) -> list[dict[str, Any]]:
    """The policy and the webhook kubeconfig, named for kpt to write beside the Cluster's file."""
    meta = resource.get("metadata")
    assert isinstance(meta, Mapping)
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    assert isinstance(annotations, Mapping)
    out = []
    for file_name, body in ((POLICY_FILE, audit.parts.policy), (WEBHOOK_FILE, audit.parts.kubeconfig)):
        if body is None:
            continue
        notes = {OWNER_ANNOTATION: owner(resource)}
        for key in CONFIG_PATHS:
            if isinstance(annotations.get(key), str):
                notes[key] = posixpath.join(posixpath.dirname(annotations[key]), file_name)
        metadata: dict[str, Any] = {"name": f"{meta['name']}-{file_name.rsplit('.', 1)[0]}", "annotations": notes}
        if meta.get("namespace"):
            metadata["namespace"] = meta["namespace"]
        document = dict(body)
        out.append({"apiVersion": document.pop("apiVersion"), "kind": document.pop("kind"),
                    "metadata": metadata, **document})
    return out
