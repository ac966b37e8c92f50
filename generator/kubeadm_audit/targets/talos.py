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

Talos 1.14 writes new machine configs as multiple documents (KubeAuditPolicyConfig,
KubeAPIServerConfig), and such a config refuses ``cluster.apiServer``. ``spec.targets.talos:
{machineConfig: documents}`` patches those documents instead; KubeAPIServerConfig has no extra
volumes, so that form takes no webhook kubeconfig and no log outside /var/log/audit/kube.
"""
from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from kubeadm_audit import config, versions, volumes, webhook, yamlio
from kubeadm_audit.config import AuditConfig
from kubeadm_audit.errors import InputError
from kubeadm_audit.findings import Finding, FindingKind, Severity
from kubeadm_audit.inputs import POLICY_FILE as BUNDLE_POLICY
from kubeadm_audit.inputs import WEBHOOK_FILE as BUNDLE_WEBHOOK
from kubeadm_audit.pipeline.parts import BundleFile, Parts, Rendered
from kubeadm_audit.typing_lite import NamedTuple

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

#: What render reports (docs/findings.md lists them).
READABLE_CREDENTIALS = FindingKind("KT401", Severity.WARNING,
                                   "the webhook kubeconfig's credentials are readable by every user of the node")
LOG_ON_NODE = FindingKind("KT402", Severity.INFO,
                          "the audit log is in Talos's log directory on the node, not at its configured path")
WEBHOOK_ON_NODE = FindingKind("KT403", Severity.INFO,
                              "the webhook kubeconfig is kept below /var on the node, not at its configured path")
POLICY_PATH_IGNORED = FindingKind("KT404", Severity.INFO,
                                  "Talos writes the policy to its own path: spec.paths.policyFile does not apply")
FINDINGS = (READABLE_CREDENTIALS, LOG_ON_NODE, WEBHOOK_ON_NODE, POLICY_PATH_IGNORED)

DEFAULT_PATHS: Mapping[str, str] = {
    "policyFile": POLICY_FILE,
    "webhookConfigFile": f"{FILES_DIRECTORY}/audit-webhook.yaml",
    "log": f"{LOG_DIRECTORY}/kube-apiserver.log",
}


#: The machine config forms the patch can be written for: ``cluster.apiServer`` of the v1alpha1
#: document (every Talos release; deprecated in 1.14), or the multi-document form of Talos 1.14.
MACHINE_CONFIGS = ("v1alpha1", "documents")
FIELDS = ("machineConfig",)
#: The apiVersion of Talos's multi-document config documents.
DOCUMENTS_API = "v1alpha1"


class Options(NamedTuple):
    machine_config: str = MACHINE_CONFIGS[0]


def parse_options(raw: Mapping[str, Any], fields: config.OptionFields, version: versions.KubeVersion) -> Options:
    """``spec.targets.talos`` read strictly."""
    block = fields.mapping(raw, FIELDS)
    form = fields.string(block.get("machineConfig"), "machineConfig", choices=MACHINE_CONFIGS)
    return Options(form or MACHINE_CONFIGS[0])


def options_document(options: Options, pinned: bool) -> dict[str, Any]:
    """``options`` for audit-config.yaml."""
    return {"machineConfig": options.machine_config}


def render(cfg: AuditConfig, parts: Parts) -> Rendered:
    """talos-patch.yaml: the policy inline, the flags, and the webhook kubeconfig as a machine file.

    Nothing is copied by hand (/system/config is not even writable): the bundle's policy and
    webhook kubeconfig are copies of what the patch carries, so install.list names neither."""
    args: dict[str, str] = {name: value for name, value in parts.args if name != "audit-policy-file"}
    findings: list[Finding] = []
    if cfg.paths.policy_file != POLICY_FILE:
        findings.append(POLICY_PATH_IGNORED(
            f"Talos writes the inline policy to {POLICY_FILE} and points --audit-policy-file at it: "
            f"{cfg.paths.policy_file} is not used on Talos", path="spec.paths.policyFile", source=cfg.source or ""))
    if isinstance(cfg.options, Options) and cfg.options.machine_config == "documents":
        return Rendered([_documents(cfg, parts, args)], {BUNDLE_POLICY: _policy_copy("KubeAuditPolicyConfig")},
                        tuple(findings))
    extra_volumes: list[dict[str, Any]] = []
    notes: list[str] = []
    delivered = {BUNDLE_POLICY: _policy_copy("cluster.apiServer.auditPolicy")}
    if cfg.log is None:
        args["audit-log-path"] = ""          # Talos logs by default; no log backend asked for
    elif cfg.log.path != "-" and posixpath.dirname(cfg.log.path) != LOG_DIRECTORY:
        log_dir = _mount_path(cfg, posixpath.dirname(cfg.log.path), "spec.log.path")
        extra_volumes.append({"hostPath": LOG_DIRECTORY, "mountPath": log_dir})
        notes.append(f"the audit log is {LOG_DIRECTORY}/{posixpath.basename(cfg.log.path)} on the node")
        findings.append(LOG_ON_NODE(f"kube-apiserver can write only in {LOG_DIRECTORY}, which is mounted at {log_dir}: "
                                    f"{notes[-1]}", path="spec.log.path", source=cfg.source or ""))
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
            findings.append(WEBHOOK_ON_NODE(
                f"machine.files creates files only below {FILES_ROOT}, outside the directories other components "
                f"share: the webhook kubeconfig is {node_path} on the node, mounted at {directory} in kube-apiserver",
                path="spec.paths.webhookConfigFile", source=cfg.source or ""))
        extra_volumes.append({"hostPath": posixpath.dirname(node_path), "mountPath": directory, "readonly": True})
        machine["files"] = [{"content": yamlio.dump(parts.kubeconfig), "permissions": READABLE,
                             "path": node_path, "op": "create"}]
        notes.append(f"machine.files writes the webhook kubeconfig (its credentials) to {node_path} with mode "
                     "0644: kube-apiserver runs as uid 65534")
        delivered[BUNDLE_WEBHOOK] = (f"A copy of the webhook kubeconfig {PATCH_FILE} writes to {node_path} "
                                     "(machine.files): nothing to copy.")
        secrets = [found.rpartition(".")[2] for found in webhook.inline_secrets(parts.kubeconfig)]
        if secrets:
            findings.append(READABLE_CREDENTIALS(
                f"machine.files writes the webhook kubeconfig with its {', '.join(secrets)} to {node_path} with "
                "mode 0644, readable by every user of the node: kube-apiserver runs as uid 65534 and Talos "
                "writes machine files as root", path="spec.webhook", source=cfg.source or ""))
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
    return Rendered([BundleFile(PATCH_FILE, header + yamlio.dump(document), 0o600 if machine else 0o644)],
                    delivered, tuple(findings))


def _policy_copy(field: str) -> str:
    """The header sentence of the bundle's policy: a copy of what the patch carries."""
    return (f"A copy of the policy {PATCH_FILE} carries inline ({field}); Talos writes it to {POLICY_FILE} "
            "itself: nothing to copy.")


def _mount_path(cfg: AuditConfig, directory: str, field: str) -> str:
    """``directory`` as a mount path in kube-apiserver, refused where Talos mounts its own."""
    for own in TALOS_MOUNTS:
        if volumes.is_within(directory, own) or volumes.is_within(own, directory):
            raise InputError(f"{directory} would overlap {own}, which Talos mounts into kube-apiserver itself",
                             source=cfg.source, field=field)
    return directory


def _documents(cfg: AuditConfig, parts: Parts, args: dict[str, str]) -> BundleFile:
    """The patch for Talos 1.14's multi-document machine config: no extra volumes there."""
    field = "spec.targets.talos.machineConfig"
    if cfg.webhook is not None:
        raise InputError("Talos's KubeAPIServerConfig mounts no extra volume, so kube-apiserver could not read "
                         "a webhook kubeconfig: use machineConfig: v1alpha1 (cluster.apiServer)",
                         source=cfg.source, field=field)
    if cfg.log is None:
        args["audit-log-path"] = ""
    elif cfg.log.path != "-" and posixpath.dirname(cfg.log.path) != LOG_DIRECTORY:
        raise InputError(f"with machineConfig: documents kube-apiserver can write its log only in {LOG_DIRECTORY} "
                         f"(no extra volumes): use {DEFAULT_PATHS['log']}", source=cfg.source, field="spec.log.path")
    documents = [{"apiVersion": DOCUMENTS_API, "kind": "KubeAuditPolicyConfig", "configuration": parts.policy},
                 {"apiVersion": DOCUMENTS_API, "kind": "KubeAPIServerConfig", "extraArgs": args}]
    header = (f"# Generated by kubeadm-audit (preset {cfg.preset.name}) for Talos Linux 1.14+: a strategic "
              "merge patch\n# for control-plane machine configs written as documents\n"
              "# (KubeAuditPolicyConfig, KubeAPIServerConfig):\n"
              f"#   talosctl patch machineconfig --nodes CONTROL-PLANE-NODES --patch @{PATCH_FILE}\n")
    return BundleFile(PATCH_FILE, header + yamlio.dump_all(documents), 0o644)
