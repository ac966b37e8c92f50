"""Cluster API: the audit configuration in a KubeadmControlPlane or KubeadmControlPlaneTemplate.

Cluster API writes ``kubeadmConfigSpec.files[]`` onto every control-plane machine at
bootstrap, so the policy and the webhook kubeconfig travel with the spec, and the
flags and mounts go into ``clusterConfiguration.apiServer``. Cluster API only rolls
machines when the spec changes, so content kept in a Secret is referenced under a
name that carries a hash of that content: new content, new name, new spec, rollout.

Pure: takes and edits plain mappings; the Secret comes back as data.
"""
from __future__ import annotations

import posixpath
from collections.abc import Mapping, MutableMapping, Sequence

from kubeadm_audit.changes import Change
from kubeadm_audit.errors import ForceableConflict, InputError
from kubeadm_audit.inputs import POLICY_FILE, WEBHOOK_FILE
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple
from kubeadm_audit.yamlio import mapping_in

if TYPE_CHECKING:
    from typing import Any

GROUP = "controlplane.cluster.x-k8s.io"

#: Cluster API version -> shape of ``clusterConfiguration.apiServer.extraArgs``.
ARG_SHAPES = {"v1beta1": "map", "v1beta2": "list"}

#: kind -> where its KubeadmConfigSpec lives.
CONFIG_SPEC_PATHS = {
    "KubeadmControlPlane": ("spec", "kubeadmConfigSpec"),
    "KubeadmControlPlaneTemplate": ("spec", "template", "spec", "kubeadmConfigSpec"),
}

#: Cluster API refuses ``files[].content`` longer than this (characters).
MAX_FILE_CONTENT = 10240
FILE_OWNER = "root:root"
POLICY_PERMISSIONS = "0644"
KUBECONFIG_PERMISSIONS = "0600"

#: Keys of the generated Secret, the file names of the bundle.
POLICY_KEY = POLICY_FILE
WEBHOOK_KEY = WEBHOOK_FILE

MANAGED_BY = {"app.kubernetes.io/managed-by": "kubeadm-audit"}
OWNER_ANNOTATION = "kubeadm-audit.dev/owner"
MAX_NAME = 253
_HASH_LENGTH = 10


class AuditFiles(NamedTuple):
    """What must exist on each control-plane node, with where it goes."""

    policy_path: str
    policy_text: str
    webhook_path: str | None = None
    webhook_text: str | None = None


def shape_for(api_version: str, kind: str, source: str) -> str:
    """The extraArgs shape of this Cluster API version; InputError for versions we do not write."""
    version = api_version.partition("/")[2]
    if version not in ARG_SHAPES:
        raise InputError(f"{kind} {api_version} is not a Cluster API version kubeadm-audit writes "
                         f"(supported: {', '.join(f'{GROUP}/{v}' for v in ARG_SHAPES)})",
                         source=source, field="apiVersion")
    return ARG_SHAPES[version]


def config_spec(resource: MutableMapping[str, Any], kind: str, source: str) -> MutableMapping[str, Any]:
    """The resource's KubeadmConfigSpec, created when absent."""
    node: MutableMapping[str, Any] = resource
    walked: list[str] = []
    for key in CONFIG_SPEC_PATHS[kind]:
        walked.append(key)
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, MutableMapping):
            raise InputError("expected a mapping", source=source, field=".".join(walked))
        node = child
    return node


def cluster_configuration(spec: MutableMapping[str, Any], source: str, prefix: str) -> MutableMapping[str, Any]:
    cluster = spec.get("clusterConfiguration")
    if cluster is None:
        cluster = spec["clusterConfiguration"] = {}
    elif not isinstance(cluster, MutableMapping):
        raise InputError("expected a mapping", source=source, field=f"{prefix}clusterConfiguration")
    return cluster


def _secret_prefix(owner: str) -> str:
    return owner[:MAX_NAME - len("-audit-") - _HASH_LENGTH].rstrip("-.") + "-audit-"


def secret_name(owner: str, data: Mapping[str, str]) -> str:
    """``<owner>-audit-<hash of the content>``: deterministic, and new whenever the content is."""
    import json

    from kubeadm_audit.ownership import sha256  # not hashlib: OpenSSL is slow to load

    digest = str(sha256(json.dumps(dict(data), sort_keys=True).encode()).hexdigest())
    return _secret_prefix(owner) + digest[:_HASH_LENGTH]


def secret(name: str, namespace: str | None, data: Mapping[str, str],
           annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A kubeadm-audit Secret holding ``data`` base64-encoded (``data``, not ``stringData``,
    so GitOps tools show no perpetual diff)."""
    import base64

    from kubeadm_audit.pod import is_dns1123_subdomain

    if not is_dns1123_subdomain(name):
        raise InputError(f"the Secret name {name!r} would not be a DNS-1123 subdomain, which the API "
                         "server refuses: name its owner in lower-case letters, digits, '-' and '.'",
                         field="metadata.name")
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = dict(MANAGED_BY)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque",
            "data": {key: base64.b64encode(text.encode()).decode("ascii") for key, text in data.items()}}


def plan_files(owner_kind: str, owner: str, namespace: str | None, files: AuditFiles,
               inline_webhook: bool = False) -> tuple[Any, ...]:
    """The ``files[]`` entries and the Secret (or None) they reference.

    The webhook kubeconfig goes into the Secret: it names the receiver and may hold a
    client key, and ``files[].content`` is readable by anyone who can read the
    KubeadmControlPlane and KubeadmConfig objects. Only a ClusterClass patch that
    templates the server (no credentials in it) asks for it inline. The policy is
    inline unless it is over Cluster API's size limit.
    """
    secret_data: dict[str, Any] = {}
    if len(files.policy_text) > MAX_FILE_CONTENT:
        secret_data[POLICY_KEY] = files.policy_text
    if files.webhook_text is not None and (not inline_webhook or len(files.webhook_text) > MAX_FILE_CONTENT):
        secret_data[WEBHOOK_KEY] = files.webhook_text
    name = secret_name(owner, secret_data) if secret_data else None

    def entry(path: str, permissions: str, key: str, text: str) -> dict[str, Any]:
        out: dict[str, Any] = {"path": path, "owner": FILE_OWNER, "permissions": permissions}
        if key in secret_data:
            out["contentFrom"] = {"secret": {"name": name, "key": key}}
        else:
            out["content"] = text
        return out

    entries = [entry(files.policy_path, POLICY_PERMISSIONS, POLICY_KEY, files.policy_text)]
    if files.webhook_path and files.webhook_text is not None:
        entries.append(entry(files.webhook_path, KUBECONFIG_PERMISSIONS, WEBHOOK_KEY, files.webhook_text))
    owned = secret(name, namespace, secret_data, {OWNER_ANNOTATION: f"{owner_kind}/{owner}"}) if name else None
    return entries, owned


def is_ours(entry: Mapping[str, Any], owner: str, marker: str) -> bool:
    """Whether a files[] entry was written by kubeadm-audit (so it may be replaced)."""
    source = entry.get("contentFrom")
    if isinstance(source, Mapping):
        secret = mapping_in(source, "secret")
        name = str(secret.get("name") or "")
        return name.startswith(_secret_prefix(owner))
    return str(entry.get("content") or "").startswith(marker)


def merge_files(spec: MutableMapping[str, Any], entries: Sequence[Mapping[str, Any]], owner: str, marker: str,
                force: bool, source: str, prefix: str, owned: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """Upsert ``entries`` into ``spec.files`` by path; other files stay as they are.

    ``owned`` maps the paths an earlier run wrote to the digest of the entry it wrote
    (:func:`ownership.digest`): such an entry, while unchanged, is replaced or, when no
    longer wanted, removed. Without a record, an entry whose content carries ``marker``
    or that reads one of this owner's Secrets counts as ours (written before records
    existed). Any other file at one of our paths is a conflict unless ``force``: the
    audit flags name that path, so one of the two would lose. Returns (changes, the
    new ``owned`` mapping).
    """
    from kubeadm_audit.ownership import digest

    owned = dict(owned or {})
    where = f"{prefix}files"
    files = spec.get("files")
    if files is not None and not isinstance(files, list):
        raise InputError("expected a list", source=source, field=where)
    current: list[Any] = [] if files is None else files
    for index, item in enumerate(current):
        if not isinstance(item, Mapping):
            raise InputError("expected a file mapping", source=source, field=f"{where}[{index}]")

    def ours(item: Mapping[str, Any], path: str) -> bool:
        if path in owned:
            return bool(digest(item) == owned[path])
        return is_ours(item, owner, marker)

    edits: list[Any] = []
    changes: list[Change] = []
    new: dict[str, Any] = {}
    for entry in entries:
        path = posixpath.normpath(str(entry["path"]))
        found = [i for i, item in enumerate(current) if posixpath.normpath(str(item.get("path") or "")) == path]
        if not found:
            edits.append(("append", None, entry))
            changes.append(Change(where, path, "added", detail=path))
            new[path] = digest(entry)
            continue
        index = found[0]
        if dict(current[index]) == dict(entry):
            if ours(current[index], path):
                new[path] = digest(entry)
            continue
        if not force and not ours(current[index], path):
            raise ForceableConflict(f"{where}[{index}] already writes {path}, which the audit configuration "
                                    "needs for its own file; move it", source=source)
        edits.append(("replace", index, entry))
        changes.append(Change(where, path, "replaced", detail=path))
        new[path] = digest(entry)
    gone = [i for i, item in enumerate(current)
            if posixpath.normpath(str(item.get("path") or "")) in owned
            and posixpath.normpath(str(item.get("path") or "")) not in new
            and ours(item, posixpath.normpath(str(item.get("path") or "")))]
    for action, index, entry in edits:
        if action == "append":
            current.append(dict(entry))
        else:
            current[index] = dict(entry)
    for index in reversed(gone):
        path = posixpath.normpath(str(current[index].get("path")))
        changes.append(Change(where, path, "removed", detail=path))
        del current[index]
    if files is None and current:
        spec["files"] = current
    return changes, new


def referenced_secrets(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the Secrets ``files[]`` entries read with ``contentFrom``."""
    names = []
    for entry in entries:
        source = entry.get("contentFrom")
        secret = source.get("secret") if isinstance(source, Mapping) else None
        if isinstance(secret, Mapping) and secret.get("name"):
            names.append(str(secret["name"]))
    return list(dict.fromkeys(names))


def secrets_to_prune(secrets: Sequence[Mapping[str, Any]], owner_kind: str, owner: str, namespace: str | None,
                     keep: str | None) -> list[Any]:
    """Indexes of earlier generated Secrets of this owner that nothing references any more."""
    stale = []
    for index, secret in enumerate(secrets):
        meta = mapping_in(secret, "metadata")
        annotations = mapping_in(meta, "annotations")
        if annotations.get(OWNER_ANNOTATION) == f"{owner_kind}/{owner}" \
                and (meta.get("namespace") or None) == (namespace or None) and meta.get("name") != keep:
            stale.append(index)
    return stale


def describe(resource: Mapping[str, Any]) -> str:
    meta = mapping_in(resource, "metadata")
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{resource.get('kind')} {where}{meta.get('name')}"
