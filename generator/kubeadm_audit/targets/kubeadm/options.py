"""The kubeadm target's options: ``spec.targets.kubeadm`` {api, route, patchesDirectory}.

Their v1alpha1 spellings (``kubeadmApi``, ``kubeadmRoute``, ``paths.patchesDirectory``,
``--kubeadm-api``, ``--kubeadm-route``, ``--patches-dir``) still work: config moves them here.
"""
from __future__ import annotations

from collections.abc import Mapping

from kubeadm_audit import config, versions
from kubeadm_audit.errors import InputError
from kubeadm_audit.targets.kubeadm.patches import PATCH_FILE
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any

#: Where the audit flags travel: ClusterConfiguration extraArgs (kept in the kubeadm-config
#: ConfigMap for joins and upgrades) or only the patches every kubeadm command is pointed at.
ROUTES = ("extraArgs", "patches")
DEFAULT_ROUTE = "extraArgs"
DEFAULT_PATCHES_DIRECTORY = "/etc/kubernetes/kubeadm-audit/patches"
FIELDS = ("api", "route", "patchesDirectory")


class Options(NamedTuple):
    api: str                  # kubeadm config API: v1beta3 | v1beta4
    route: str                # one of ROUTES
    patches_directory: str    # node directory kubeadm --patches reads


def parse_options(raw: Mapping[str, Any], fields: config.OptionFields, version: versions.KubeVersion) -> Options:
    """``spec.targets.kubeadm`` read strictly; the API follows ``version`` unless given."""
    block = fields.mapping(raw, FIELDS)
    try:
        api = versions.kubeadm_api(version, fields.string(block.get("api"), "api"))
    except InputError as exc:
        if exc.field != "kubeadmApi":
            raise
        raise fields.fail("api", exc.message) from None
    route = fields.string(block.get("route"), "route", choices=ROUTES) or DEFAULT_ROUTE
    directory = fields.node_path(block.get("patchesDirectory", DEFAULT_PATCHES_DIRECTORY), "patchesDirectory",
                                 required=True)
    assert directory is not None  # required
    return Options(api=api, route=route, patches_directory=directory)


def options_document(options: Options, pinned: bool) -> dict[str, Any]:
    """``options`` for audit-config.yaml; the API only with a pinned version (else it follows it)."""
    out: dict[str, Any] = {"api": options.api} if pinned else {}
    out.update({"route": options.route, "patchesDirectory": options.patches_directory})
    return out


def node_files(options: Options) -> list[tuple[str, str]]:
    """The patch file, when kubeadm reads the flags from it."""
    if options.route != "patches":
        return []
    return [("spec.targets.kubeadm.patchesDirectory", f"{options.patches_directory}/{PATCH_FILE}")]


def of(cfg: config.AuditConfig) -> Options:
    """The kubeadm options of ``cfg``: its own when resolved for kubeadm, else read from
    ``spec.targets.kubeadm`` (a Cluster API or kind rendering of the same configuration)."""
    if isinstance(cfg.options, Options):
        return cfg.options
    reader = config.OptionFields.for_source(cfg.source, "spec.targets.kubeadm")
    return parse_options(cfg.targets.get("kubeadm") or {}, reader, cfg.kubernetes_version)
