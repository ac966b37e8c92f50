"""``policy lint``: the mistakes people really make in audit policies, as findings with stable ids.

A registry of checks (:mod:`.registry`), one per id, each registered by the module that
implements it: :mod:`.apiserver` (KA001-KA003, what kube-apiserver does with the file),
:mod:`.bodies` (KA010-KA013), :mod:`.rules` (KA020-KA024), :mod:`.completeness` (KA030-KA036).
Ids never change meaning and are never reused. Severities: ``error`` (the policy is refused,
leaks credentials, or silently means something else than it says), ``warning`` (likely wrong
or costly), ``info`` (worth knowing).

To add a check: write a function ``(Context) -> findings`` in the module of its theme (or a
new module imported below), decorate it with ``@check(id, severity, summary, description,
passing=..., failing=...)``, and run ``make docs``. The registry tests run it on its examples.

May import: findings, errors, versions, yamlio and the rest of :mod:`kubeadm_audit.policy`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from kubeadm_audit.findings import Finding, Severity

# The check modules register themselves on import, in this order (the registry's order).
from kubeadm_audit.policy.lint import apiserver, bodies, completeness, rules  # noqa: F401
from kubeadm_audit.policy.lint.registry import REGISTRY, Check, Context, default_ids, run, select

__all__ = ["CHECKS", "ERROR", "INFO", "REGISTRY", "WARNING", "Check", "LintFinding", "has_errors",
           "lint_policy", "select"]

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

#: The findings lint reports are the project's one Finding type (the old name stays importable).
LintFinding = Finding

#: id -> what it reports (`policy lint --list-checks` prints it).
CHECKS = {check_id: registered.summary for check_id, registered in REGISTRY.items()}


def lint_policy(data: Any, kubernetes_minor: int, checks: Iterable[str] | None = None,
                read: Sequence[Finding] = ()) -> list[Finding]:
    """All findings of the ``checks`` (default: those on by default) for a decoded policy
    document, ordered by where they are. ``read``: what reading the file found
    (:func:`kubeadm_audit.policy.document.read`), reported as KA001/KA003."""
    context = Context(data, kubernetes_minor, read)
    ids = default_ids() if checks is None else frozenset(checks)
    return sorted(run(context, ids), key=lambda f: (_path_key(f.path), f.id))


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


_INDEX = re.compile(r"\[(\d+)\]")


def _path_key(path: str) -> tuple[Any, ...]:
    """``rules[10].level`` after ``rules[9].level``: list indexes compare as numbers."""
    parts: list[Any] = _INDEX.split(path)    # text, index, text, index, ..., text
    parts[1::2] = map(int, parts[1::2])
    return tuple(parts)
