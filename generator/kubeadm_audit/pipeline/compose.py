"""The audit policy a bundle ships: a preset's, or the user's, with inline rules first."""
from __future__ import annotations

from kubeadm_audit import presets, versions, yamlio
from kubeadm_audit.config import AuditConfig
from kubeadm_audit.errors import InputError
from kubeadm_audit.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def compose(cfg: AuditConfig, custom: Any = None) -> dict[str, Any]:
    """``custom`` (a loaded policy file) replaces the preset's; ``spec.policy.rules`` are prepended.

    A preset's policy is trimmed to what the target kube-apiserver understands.
    """
    if cfg.policy.file:
        import copy  # a user's file may share nodes (aliases): deepcopy keeps them shared

        base = copy.deepcopy(custom)
    else:
        base = yamlio.plain_copy(cfg.preset.policy)
    if not isinstance(base, dict):
        raise InputError("expected an audit.k8s.io/v1 Policy document", source=cfg.policy.file)
    if not cfg.policy.file and cfg.kubernetes_version.minor < versions.OMIT_MANAGED_FIELDS_FROM:
        base.pop("omitManagedFields", None)
    if cfg.policy.rules:
        existing = base.get("rules")
        import copy

        base["rules"] = list(copy.deepcopy(cfg.policy.rules)) + (existing if isinstance(existing, list) else [])
    return base


def policy_text(cfg: AuditConfig, policy: dict[str, Any]) -> str:
    """``policy`` (what ``compose`` gave for ``cfg``) as the policy file's YAML.

    A preset's policy taken as it stands is the text ``make presets`` rendered ahead of
    time (the same ``yamlio.dump``; a test keeps them equal): dumping some six hundred
    nodes is the largest single cost of a one-resource KRM call (issue 10).
    """
    if not cfg.policy.file and not cfg.policy.rules and policy == cfg.preset.policy:
        text = presets.policy_text(cfg.preset.name)
        if text is not None:
            return text
    return yamlio.dump(policy)
