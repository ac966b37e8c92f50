"""A ClusterClass patch: every cluster a fleet creates from the class gets the audit configuration.

The patch is a ``spec.patches[]`` entry of JSON patches against the class's
KubeadmControlPlaneTemplate, plus a ``spec.variables[]`` entry for the webhook
server, so each Cluster can point at its own receiver
(``spec.topology.variables: [{name: auditWebhookServer, value: https://...}]``).

RFC 6902 ``add .../-`` fails on a list that does not exist, and adding a whole
list replaces one that does, so the operations are planned against the template
itself ("append" where a list or map exists, "create" where it does not) -- the
template must therefore be part of the same build.

The webhook kubeconfig is rendered from a template with the server variable when
it holds no client credentials (a CA certificate is public); with a client key it
goes into a Secret and the server is fixed. Pure: plain data in, plain data out.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from kubeadm_audit.errors import ConflictError, ForceableConflict, InputError
from kubeadm_audit.targets.capi import kcp as capi

GROUP = "cluster.x-k8s.io"
KIND = "ClusterClass"
PATCH_NAME = "kubeadm-audit"
SERVER_VARIABLE = "auditWebhookServer"
TEMPLATE_SPEC = ("spec", "template", "spec", "kubeadmConfigSpec")
_PLACEHOLDER = "https://kubeadm-audit.invalid/server-placeholder"


def template_ref(cluster_class: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The control-plane template the class names: v1beta1 ``ref``, v1beta2 ``templateRef``."""
    from kubeadm_audit.yamlio import expect

    spec = expect(cluster_class.get("spec"), "mapping", source, "spec") or {}
    control_plane = expect(spec.get("controlPlane"), "mapping", source, "spec.controlPlane") or {}
    ref = control_plane.get("templateRef") or control_plane.get("ref")
    if not isinstance(ref, Mapping) or not ref.get("name"):
        raise InputError("no control-plane template reference", source=source, field="spec.controlPlane.ref")
    return dict(ref)


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _pointer(parts: Sequence[str]) -> str:
    return "/" + "/".join(_escape(str(p)) for p in parts)


def _get(node: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _nest(parts: Sequence[str], value: Any) -> Any:
    for part in reversed(parts):
        value = {part: value}
    return value


class _Planner:
    """JSON patch operations planned against a copy of the template, applied as they are planned."""

    def __init__(self, template: Mapping[str, Any], force: bool, source: str) -> None:
        self.doc = copy.deepcopy(dict(template))
        self.ops: list[dict[str, Any]] = []
        self.force = force
        self.source = source

    def _create(self, parts: Sequence[str], value: Any) -> None:
        """Add ``value`` at ``parts``, creating the missing ancestors in one operation."""
        depth = len(parts)
        while depth > 0 and not isinstance(_get(self.doc, parts[:depth - 1]), MutableMapping):
            depth -= 1
        parent = _get(self.doc, parts[:depth - 1]) if depth else None
        if parent is None:
            raise InputError("the template has no mapping to add to", source=self.source, field=".".join(parts))
        nested = _nest(parts[depth:], value)
        self.ops.append({"op": "add", "path": _pointer(parts[:depth]), "value": copy.deepcopy(nested)})
        parent[parts[depth - 1]] = nested

    def map_entries(self, parts: Sequence[str], entries: Sequence[tuple[str, Any]]) -> None:
        current = _get(self.doc, parts)
        if current is None:
            self._create(parts, dict(entries))
            return
        for name, value in entries:
            if name in current and str(current[name]) != value and not self.force:
                raise ForceableConflict(f"{'.'.join(parts)}.{name} is {current[name]!r} in the template but the "
                                    f"audit configuration sets {value!r}", source=self.source)
            if current.get(name) != value:
                self.ops.append({"op": "add", "path": _pointer([*parts, name]), "value": value})
                current[name] = value

    def list_entries(self, parts: Sequence[str], entries: Sequence[Mapping[str, Any]], key: str) -> None:
        current = _get(self.doc, parts)
        if current is None:
            self._create(parts, [dict(e) for e in entries])
            return
        for entry in entries:
            same = [item for item in current if isinstance(item, Mapping) and item.get(key) == entry[key]]
            if same and dict(same[0]) == dict(entry):
                continue
            if same:
                raise ConflictError(f"{'.'.join(parts)} already has {key} {entry[key]!r} in the template; the "
                                    "ClusterClass patch can only append", source=self.source)
            self.ops.append({"op": "add", "path": _pointer([*parts, "-"]), "value": dict(entry)})
            current.append(dict(entry))


def plan(template: Mapping[str, Any], shape: str, args: Sequence[tuple[str, str]], mounts: Sequence[Mapping[str, Any]],
         files: Sequence[Mapping[str, Any]], force: bool, source: str) -> list[dict[str, Any]]:
    """The JSON patch operations that put args, volumes and files into ``template``."""
    planner = _Planner(template, force, source)
    api_server = [*TEMPLATE_SPEC, "clusterConfiguration", "apiServer"]
    if shape == "map":
        planner.map_entries([*api_server, "extraArgs"], args)
    else:
        planner.list_entries([*api_server, "extraArgs"], [{"name": n, "value": v} for n, v in args], "name")
    planner.list_entries([*api_server, "extraVolumes"], mounts, "name")
    planner.list_entries([*TEMPLATE_SPEC, "files"], files, "path")
    return planner.ops


def templated(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn the operations that carry the webhook server into ``valueFrom.template`` ones."""
    from kubeadm_audit import yamlio

    out = []
    for op in ops:
        text = yamlio.dump(op["value"]) if "value" in op else ""
        if _PLACEHOLDER not in text:
            out.append(op)
            continue
        out.append({"op": op["op"], "path": op["path"],
                    "valueFrom": {"template": text.replace(_PLACEHOLDER, "{{ ." + SERVER_VARIABLE + " }}")}})
    return out


def variable(server: str) -> dict[str, Any]:
    return {"name": SERVER_VARIABLE, "required": False,
            "schema": {"openAPIV3Schema": {
                "type": "string", "default": server, "pattern": r"^https?://[^\s]+$",
                "description": "Audit webhook receiver URL for this cluster's kube-apiserver (kubeadm-audit)."}}}


def patch(template_ref_: Mapping[str, Any], ops: list[dict[str, Any]], description: str) -> dict[str, Any]:
    return {"name": PATCH_NAME, "description": description, "definitions": [{
        "selector": {"apiVersion": template_ref_.get("apiVersion") or f"{capi.GROUP}/v1beta1",
                     "kind": template_ref_.get("kind") or "KubeadmControlPlaneTemplate",
                     "matchResources": {"controlPlane": True}},
        "jsonPatches": ops}]}


def upsert(cluster_class: MutableMapping[str, Any], key: str, entry: Mapping[str, Any], source: str) -> bool:
    """Put ``entry`` into ``spec.<key>`` by name; True when something changed."""
    spec = cluster_class.setdefault("spec", {})
    if not isinstance(spec, MutableMapping):
        raise InputError("expected a mapping", source=source, field="spec")
    items = spec.get(key)
    if items is None:
        spec[key] = [dict(entry)]
        return True
    if not isinstance(items, list):
        raise InputError("expected a list", source=source, field=f"spec.{key}")
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            from kubeadm_audit.yamlio import kind_of

            raise InputError(f"expected a mapping, found {kind_of(item)}", source=source, field=f"spec.{key}[{index}]")
        if item.get("name") == entry["name"]:
            if item == entry:
                return False
            items[index] = dict(entry)
            return True
    items.append(dict(entry))
    return True


def remove(cluster_class: MutableMapping[str, Any], key: str, name: str) -> bool:
    items = (cluster_class.get("spec") or {}).get(key)
    if not isinstance(items, list):
        return False
    kept = [item for item in items if not (isinstance(item, Mapping) and item.get("name") == name)]
    if len(kept) == len(items):
        return False
    cluster_class["spec"][key] = kept
    return True


def placeholder_kubeconfig(kubeconfig: Mapping[str, Any]) -> dict[str, Any] | None:
    """The kubeconfig with the server replaced by the placeholder, or None when it holds a
    credential (a client key, a token, or a password in the server URL): that stays in a Secret."""
    from kubeadm_audit.webhook import has_userinfo

    user = (kubeconfig.get("users") or [{}])[0].get("user") or {}
    server = str(((kubeconfig.get("clusters") or [{}])[0].get("cluster") or {}).get("server") or "")
    if user.get("client-key-data") or user.get("token") or has_userinfo(server):
        return None
    out = copy.deepcopy(dict(kubeconfig))
    out["clusters"][0]["cluster"]["server"] = _PLACEHOLDER
    return out
