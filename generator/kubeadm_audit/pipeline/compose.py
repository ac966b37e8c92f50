"""The audit policy a bundle ships: a preset's, or the user's, with inline rules first."""
from __future__ import annotations

import copy
from typing import Any

from kubeadm_audit import versions
from kubeadm_audit.config import AuditConfig
from kubeadm_audit.errors import InputError


def compose(cfg: AuditConfig, custom: Any = None) -> dict[str, Any]:
    """``custom`` (a loaded policy file) replaces the preset's; ``spec.policy.rules`` are prepended.

    A preset's policy is trimmed to what the target kube-apiserver understands.
    """
    base = copy.deepcopy(custom if cfg.policy.file else dict(cfg.preset.policy))
    if not isinstance(base, dict):
        raise InputError("expected an audit.k8s.io/v1 Policy document", source=cfg.policy.file)
    if not cfg.policy.file and cfg.kubernetes_version.minor < versions.OMIT_MANAGED_FIELDS_FROM:
        base.pop("omitManagedFields", None)
    if cfg.policy.rules:
        existing = base.get("rules")
        base["rules"] = list(copy.deepcopy(cfg.policy.rules)) + (existing if isinstance(existing, list) else [])
    return base
