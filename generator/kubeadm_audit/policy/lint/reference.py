"""The check reference (docs/lint-checks.md), generated from the registry.

``make docs`` writes it; a test fails when the committed file differs from :func:`markdown`,
so the reference cannot fall behind the checks.
"""
from __future__ import annotations

from kubeadm_audit.policy.lint.registry import REGISTRY

#: Where the reference lives, relative to the repository root.
PATH = "docs/lint-checks.md"


def markdown() -> str:
    """The whole reference: a table of the checks, then each check with its examples."""
    lines = [
        "# policy lint checks",
        "",
        "<!-- Generated from the check registry (kubeadm_audit/policy/lint): run `make docs`,",
        "     do not edit by hand. -->",
        "",
        "`kubeadm-audit policy lint FILE...` runs the checks below. Ids never change meaning.",
        "`--disable ID` turns a check off, `--enable ID` turns on one that is off by default",
        "(both repeatable; an unknown id is an error, exit 2); `--fail-on error|warning|info`",
        "(default `error`) sets the lowest severity that makes the exit code 1; `-o sarif`",
        "writes SARIF 2.1.0 for code-scanning UIs. The severity below is the usual one: where a",
        "check reports some findings higher or lower, its description says when.",
        "",
        "| id | severity | default | summary |",
        "| --- | --- | --- | --- |",
    ]
    for check in REGISTRY.values():
        lines.append(f"| [{check.id}](#{check.id.lower()}) | {check.severity.value} | "
                     f"{'on' if check.enabled else 'off'} | {check.summary} |")
    for check in REGISTRY.values():
        lines += [
            "",
            f"## {check.id}",
            "",
            f"**{check.summary}** ({check.severity.value}, "
            f"{'on by default' if check.enabled else f'off by default: `--enable {check.id}`'})",
            "",
            check.description,
            "",
            "Reported:",
            "",
            "```yaml",
            check.failing.rstrip("\n"),
            "```",
            "",
            "Passes:",
            "",
            "```yaml",
            check.passing.rstrip("\n"),
            "```",
        ]
    return "\n".join(lines) + "\n"
