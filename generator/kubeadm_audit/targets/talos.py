"""Talos Linux: a machine-config patch for the control-plane nodes.

``talosctl gen config ... --config-patch-control-plane @talos-patch.yaml`` (or ``talosctl patch
machineconfig --patch @talos-patch.yaml``): a strategic merge patch of the v1alpha1 machine
config, checked by the tests with Talos's own loader, patcher and validator
(siderolabs/talos pkg/machinery, tests/test_target_talos.py). What Talos does with it:

- ``cluster.apiServer.auditPolicy``: the policy inline (replaced, not merged, on patching);
  Talos writes it to its own config directory, mounted into kube-apiserver, and sets
  ``--audit-policy-file`` itself, so the patch names no policy path;
- ``cluster.apiServer.extraArgs`` override Talos's own audit flags (log in /var/log/audit/kube,
  30 days, 10 files, 100 MB). kube-apiserver runs as uid 65534 and can write only in that
  directory, which Talos creates for it: a log path elsewhere is kept as kube-apiserver's path,
  and the node's /var/log/audit/kube is mounted there (the log lands in it);
- ``machine.files`` is how a file reaches the node: ``op: create`` only below /var, written by
  root with the given permissions, so the webhook kubeconfig is world-readable (0644) for
  kube-apiserver to read it. A webhook kubeconfig path outside /var is kube-apiserver's path: the
  file is kept in /var/lib/kubernetes-audit and its directory mounted there
  (``cluster.apiServer.extraVolumes``).

Talos 1.14 also offers this as multi-document config (KubeAuditPolicyConfig, KubeAPIServerConfig);
a machine config using those refuses ``cluster.apiServer``, and KubeAPIServerConfig has no extra
volumes for a webhook kubeconfig: this patch is for machine configs that use ``cluster.apiServer``.
"""
from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from kubeadm_audit import volumes, yamlio
from kubeadm_audit.config import AuditConfig
from kubeadm_audit.errors import InputError
from kubeadm_audit.pipeline.parts import BundleFile, Parts

NAME = "talos"
SUMMARY = "Talos Linux: machine-config patch (cluster.apiServer auditPolicy, extraArgs, extraVolumes)"

PATCH_FILE = "talos-patch.yaml"
#: Where Talos writes cluster.apiServer.auditPolicy (mounted into kube-apiserver by Talos).
POLICY_FILE = "/system/config/kubernetes/kube-apiserver/auditpolicy.yaml"
#: The log directory Talos creates for kube-apiserver's user and mounts read-write.
LOG_DIRECTORY = "/var/log/audit/kube"
#: Directories Talos mounts into kube-apiserver itself: no extra volume may go there.
TALOS_MOUNTS = ("/system/secrets/kubernetes/kube-apiserver", "/system/config/kubernetes/kube-apiserver",
                LOG_DIRECTORY)
#: machine.files creates files only below this directory.
FILES_ROOT = "/var"
#: Where a file kube-apiserver expects outside /var is kept on the node.
FILES_DIRECTORY = "/var/lib/kubernetes-audit"
#: kube-apiserver's user on Talos is not root: the files it reads must be readable by others.
READABLE = 0o644

DEFAULT_PATHS: Mapping[str, str] = {
    "policyFile": POLICY_FILE,
    "webhookConfigFile": f"{FILES_DIRECTORY}/audit-webhook.yaml",
    "log": f"{LOG_DIRECTORY}/kube-apiserver.log",
}


def render(cfg: AuditConfig, parts: Parts) -> list[BundleFile]:
    """talos-patch.yaml: the policy inline, the flags, and the webhook kubeconfig as a machine file."""
    args: dict[str, str] = {name: value for name, value in parts.args if name != "audit-policy-file"}
    extra_volumes: list[dict[str, Any]] = []
    notes: list[str] = []
    if cfg.log is None:
        args["audit-log-path"] = ""          # Talos logs by default; no log backend asked for
    elif cfg.log.path != "-" and posixpath.dirname(cfg.log.path) != LOG_DIRECTORY:
        log_dir = _mount_path(cfg, posixpath.dirname(cfg.log.path), "spec.log.path")
        extra_volumes.append({"hostPath": LOG_DIRECTORY, "mountPath": log_dir})
        notes.append(f"the audit log is {LOG_DIRECTORY}/{posixpath.basename(cfg.log.path)} on the node")
    machine: dict[str, Any] = {}
    if cfg.webhook is not None:
        if cfg.webhook.token_file:
            raise InputError("a Talos node has no file of yours at that path: put the token in the webhook "
                             "kubeconfig (spec.webhook.token) instead", source=cfg.source,
                             field="spec.webhook.tokenFile")
        path = cfg.paths.webhook_config_file
        directory = _mount_path(cfg, posixpath.dirname(path), "spec.paths.webhookConfigFile")
        node_path = path
        if not volumes.is_within(directory, FILES_ROOT) or directory in volumes.SHARED_DIRECTORIES:
            node_path = posixpath.join(FILES_DIRECTORY, posixpath.basename(path))
        extra_volumes.append({"hostPath": posixpath.dirname(node_path), "mountPath": directory, "readonly": True})
        machine["files"] = [{"content": yamlio.dump(parts.kubeconfig), "permissions": READABLE,
                             "path": node_path, "op": "create"}]
        notes.append(f"machine.files writes the webhook kubeconfig (its credentials) to {node_path} with mode "
                     "0644: kube-apiserver runs as uid 65534")
    api_server: dict[str, Any] = {"extraArgs": args}
    if extra_volumes:
        api_server["extraVolumes"] = extra_volumes
    api_server["auditPolicy"] = parts.policy
    document: dict[str, Any] = {"machine": machine} if machine else {}
    document["cluster"] = {"apiServer": api_server}
    header = (f"# Generated by kubeadm-audit (preset {cfg.preset.name}) for Talos Linux: a strategic merge patch\n"
              "# for control-plane machine configs that use cluster.apiServer:\n"
              f"#   talosctl gen config CLUSTER ENDPOINT --config-patch-control-plane @{PATCH_FILE}\n"
              f"#   talosctl patch machineconfig --nodes CONTROL-PLANE-NODES --patch @{PATCH_FILE}\n"
              + "".join(f"# Note: {note}.\n" for note in notes))
    return [BundleFile(PATCH_FILE, header + yamlio.dump(document), 0o600 if machine else 0o644)]


def _mount_path(cfg: AuditConfig, directory: str, field: str) -> str:
    """``directory`` as a mount path in kube-apiserver, refused where Talos mounts its own."""
    for own in TALOS_MOUNTS:
        if volumes.is_within(directory, own) or volumes.is_within(own, directory):
            raise InputError(f"{directory} would overlap {own}, which Talos mounts into kube-apiserver itself",
                             source=cfg.source, field=field)
    return directory
