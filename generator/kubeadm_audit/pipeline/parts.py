"""Parts: the pure pieces every target and injector shares, built once per configuration."""
from __future__ import annotations

from types import MappingProxyType

from kubeadm_audit import flags, inputs, volumes, webhook
from kubeadm_audit.config import AuditConfig
from kubeadm_audit.errors import InputError
from kubeadm_audit.findings import Finding
from kubeadm_audit.pipeline.compose import compose
from kubeadm_audit.policy.validation import validate_policy
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


class BundleFile(NamedTuple):
    """One file of a bundle."""

    path: str                         # relative to the bundle directory
    content: str
    mode: int
    install_to: str | None = None  # absolute path on a control-plane node, when a person copies it there


class Rendered(NamedTuple):
    """What a target's ``render`` returns: its own files, how the common files reach the node,
    and what it found worth a second look."""

    files: list[BundleFile]                    # the target's own documents
    #: Common bundle files (audit-policy.yaml, audit-webhook.yaml) the target's documents carry to
    #: the node themselves -> the header sentence saying how. Left out of install.list: nobody
    #: copies them. A common file not named here is copied by hand to its node path.
    delivered: Mapping[str, str] = MappingProxyType({})
    findings: tuple[Finding, ...] = ()


class Parts(NamedTuple):
    """What a target renders: the policy, kube-apiserver's audit flags and mounts, the kubeconfig."""

    policy: dict[str, Any]                                   # the audit.k8s.io/v1 Policy
    args: tuple[tuple[str, str], ...]              # (flag without dashes, value), kube-apiserver order
    mounts: tuple[volumes.HostPathMount, ...]
    kubeconfig: dict[str, Any] | None                     # the webhook kubeconfig, when there is a webhook
    warnings: tuple[Finding, ...]                 # accepted, but worth a second look


def build(cfg: AuditConfig, tls: webhook.TLSMaterial, custom_policy: Any = None) -> Parts:
    """Policy, flags, mounts and kubeconfig for ``cfg``, each checked as kube-apiserver would."""
    warnings: list[Finding] = []
    policy = compose(cfg, custom_policy)
    for finding in validate_policy(policy, cfg.kubernetes_version.minor):
        source, path = _policy_origin(cfg, finding.path)
        if finding.severity == "error":
            raise InputError(f"invalid audit policy: {finding.message}", source=source, field=path or None)
        warnings.append(finding.replace(source=source, path=path))
    args = flags.build(cfg)
    for problem in flags.validate(dict(args), cfg.kubernetes_version,
                                  flags.parse_command(flags.to_command(args))):
        if problem.severity == "error":
            raise InputError(f"kube-apiserver would refuse {problem}", field=problem.path.removeprefix("--"))
        warnings.append(problem)
    files = [cfg.paths.policy_file] + ([cfg.paths.webhook_config_file] if cfg.webhook else [])
    if cfg.webhook and cfg.webhook.token_file:
        files.append(cfg.webhook.token_file)     # kube-apiserver reads it inside its container
    mounts = volumes.plan(files, cfg.log.path if cfg.log else None, cfg.preset.volume_names)
    for unmounted in volumes.uncovered(args, mounts):
        raise InputError(unmounted, field="extraVolumes")
    if cfg.webhook:
        warnings.extend(finding.at(source=cfg.source or "") for finding in webhook.warnings(cfg.webhook))
    kubeconfig = webhook.build_kubeconfig(cfg.webhook, tls) if cfg.webhook else None
    return Parts(policy, tuple((str(n), str(v)) for n, v in args), tuple(mounts), kubeconfig, tuple(warnings))


def read(cfg: AuditConfig) -> Parts:
    """``build`` on the files ``cfg`` names (CA, client credentials, custom policy), read here."""
    return build(cfg, inputs.read_tls(cfg), inputs.read_policy(cfg))


def _policy_origin(cfg: AuditConfig, path: str) -> tuple[str, str]:
    """Name where a policy finding comes from: inline rules, the custom file, or the preset."""
    inline = len(cfg.policy.rules)
    if path.startswith("rules[") and inline:
        index = int(path[6:path.index("]")])
        if index < inline:
            return cfg.source or "--config", f"spec.policy.{path}"
        path = f"rules[{index - inline}]{path[path.index(']') + 1:]}"
    return cfg.policy.file or f"preset {cfg.preset.name}", path
