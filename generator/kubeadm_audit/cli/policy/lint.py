"""``kubeadm-audit policy lint``: the registered checks' findings, as text, JSON or SARIF."""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kubeadm_audit import yamlio
from kubeadm_audit.cli.output import emit_json, style, terminal_safe
from kubeadm_audit.cli.policy import common
from kubeadm_audit.findings import Severity, at_or_above
from kubeadm_audit.policy import document
from kubeadm_audit.policy.lint import REGISTRY, lint_policy, sarif, select

if TYPE_CHECKING:
    from kubeadm_audit.findings import Finding


def _check_ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """Ids as given, upper-cased; an unknown one is a usage error (exit 2) naming it."""
    ids = tuple(v.strip().upper() for v in value)
    for given, check_id in zip(value, ids):
        if check_id not in REGISTRY:
            raise click.BadParameter(f"unknown check id {given!r} (policy lint --list-checks lists them)",
                                     ctx=ctx, param=param)
    return ids


@click.command()
@click.argument("files", nargs=-1, metavar="FILE...", type=click.Path())
@common.VERSION_OPTION
@click.option("--disable", "disable", multiple=True, metavar="ID", callback=_check_ids,
              help="Do not run check ID (repeatable).")
@click.option("--enable", "enable", multiple=True, metavar="ID", callback=_check_ids,
              help="Run check ID, also one that is off by default (repeatable; --disable wins).")
@click.option("--fail-on", "fail_on", type=click.Choice(common.SEVERITIES), default="error", show_default=True,
              help="Exit 1 when a finding is at least this severe.")
@click.option("--list-checks", is_flag=True, help="List the checks (id, severity, default, summary) and exit.")
@click.option("-o", "--output", "output", type=click.Choice(["text", "json", "sarif"]), default="text",
              show_default=True, help="Output format (sarif: SARIF 2.1.0, for code-scanning UIs).")
def lint(files: tuple[str, ...], kubernetes_version: str | None, disable: tuple[str, ...],
         enable: tuple[str, ...], fail_on: str, list_checks: bool, output: str) -> int:
    """Findings with stable ids (KA0nn), severity, line and a fix hint. Exit 1 on any error
    (or, with --fail-on, on any finding at least that severe).

    \b
    Examples:
      kubeadm-audit policy lint audit-policy.yaml
      kubeadm-audit policy lint --kubernetes-version v1.25.0 old-policy.yaml -o json
      kubeadm-audit policy lint --disable KA011 --enable KA036 --fail-on warning audit-policy.yaml
      kubeadm-audit policy lint -o sarif audit-policy.yaml > lint.sarif
      kubeadm-audit policy lint --list-checks
    """
    if list_checks:
        if output != "text":    # json (and sarif, whose rules are the same list): the registry
            emit_json([{"id": c.id, "severity": c.severity.value, "enabled": c.enabled,
                        "summary": c.summary, "description": c.description} for c in REGISTRY.values()])
            return 0
        for check in REGISTRY.values():
            state = "" if check.enabled else "  (off by default)"
            click.echo(f"{check.id}  {check.severity.value:<7}  {check.summary}{state}")
        return 0
    if not files:
        raise click.UsageError("give at least one policy FILE")
    version = common.kubernetes_version(kubernetes_version)
    ids = select(enable, disable)
    results = [(path, _lint_file(path, version.minor, ids)) for path in files]
    if output == "sarif":
        emit_json(sarif.document(results, ids))
    elif output == "json":
        emit_json([{"file": path, "kubernetesVersion": str(version),
                    "findings": [f.to_json() for f in findings]} for path, findings in results])
    else:
        for path, findings in results:
            click.echo(_lint_text(path, findings))
    threshold = Severity.parse(fail_on)
    return 1 if any(at_or_above(findings, threshold) for _, findings in results) else 0


def _lint_file(path: str, minor: int, ids: frozenset[str]) -> list[Finding]:
    """The findings of one file, placed on their lines (the parsed file is freed on return)."""
    data, read, locate = document.read_located(yamlio.read_text(path), source=path)
    return document.place(lint_policy(data, minor, ids, read), locate, path)


def _lint_text(path: str, findings: list[Finding]) -> str:
    """One write: a hostile policy can have tens of thousands of findings."""
    severities = {s: common.severity(s) for s in common.SEVERITIES}
    shown = terminal_safe(path)
    lines = []
    for finding in findings:
        field = f" {terminal_safe(finding.path)}:" if finding.path else ""
        lines.append(f"{common.where(shown, finding)}:{field} {severities[finding.severity]} "
                     f"{finding.id}: {terminal_safe(finding.message)}\n")
        if finding.hint:
            lines.append(f"    fix: {terminal_safe(finding.hint)}\n")
    counts = {s: sum(f.severity == s for f in findings) for s in common.SEVERITIES}
    summary = ", ".join(f"{n} {s}{'s' * (n != 1 and s != 'info')}" for s, n in counts.items())
    lines.append(f"{shown}: {summary}" if findings else f"{shown}: {style('clean', fg='green')}")
    return "".join(lines)
