"""The kubeadm target: kubeadm-config.yaml and the kube-apiserver JSON patch.

Lives here: the kubeadm documents (``documents``), the RFC 6902 patch (``patches``) and the
target's options (``options``: kubeadm API, route, patches directory). Merging into a user's
kubeadm config or ConfigMap and editing a static Pod manifest work on the same pieces.

May import: config, errors, versions, volumes, flags, yamlio, pipeline. Not cli.
"""
from __future__ import annotations

import posixpath

from kubeadm_audit import yamlio
from kubeadm_audit.config import AuditConfig
from kubeadm_audit.pipeline.bundle import header
from kubeadm_audit.pipeline.parts import BundleFile, Parts, Rendered
from kubeadm_audit.targets.kubeadm import documents, patches
from kubeadm_audit.targets.kubeadm.findings import FINDINGS
from kubeadm_audit.targets.kubeadm.options import node_files, of, options_document, parse_options
from kubeadm_audit.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

NAME = "kubeadm"
SUMMARY = "kubeadm init/join/upgrade: kubeadm-config.yaml (extraArgs, extraVolumes) and a JSON patch"

#: This target's own files in the bundle.
KUBEADM_FILE = "kubeadm-config.yaml"
PATCHES_DIR = "kubeadm-patches"

__all__ = [
    "FINDINGS",
    "KUBEADM_FILE",
    "NAME",
    "PATCHES_DIR",
    "SUMMARY",
    "node_files",
    "options_document",
    "parse_options",
    "render",
    "summary",
]


def summary(cfg: AuditConfig) -> dict[str, Any]:
    """``generate -o json``: the kubeadm API the documents use."""
    return {"kubeadmApi": of(cfg).api}


def render(cfg: AuditConfig, parts: Parts) -> Rendered:
    """kubeadm-config.yaml and kubeadm-patches/kube-apiserver+json.yaml (installed only with the
    patches route: with extraArgs the ClusterConfiguration already mounts everything, and the
    patch would mount it twice)."""
    options = of(cfg)
    note = f"kubeadm init --config {KUBEADM_FILE}."
    if options.route == "patches":
        note += (f" Install {PATCHES_DIR}/ at {options.patches_directory} on every control-plane node;"
                 f" join them with 'kubeadm join ... --control-plane --patches {options.patches_directory}'"
                 " (or patches.directory in their JoinConfiguration).")
    else:
        note += " Joining control planes take the audit settings from the kubeadm-config ConfigMap."
    return Rendered([
        BundleFile(KUBEADM_FILE, header(cfg, note)
                   + yamlio.dump_all(documents.documents(cfg, options, parts.args, parts.mounts)), 0o644),
        BundleFile(posixpath.join(PATCHES_DIR, patches.PATCH_FILE),
                   header(cfg, "JSON patch for kubeadm --patches / patches.directory.")
                   + yamlio.dump(patches.json_patch(parts.args, parts.mounts)), 0o644,
                   posixpath.join(options.patches_directory, patches.PATCH_FILE)
                   if options.route == "patches" else None),
    ])
