"""``kubeadm-audit policy validate``: would kube-apiserver load these policies?"""
from __future__ import annotations

from typing import Any

import click

from kubeadm_audit import yamlio
from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, style, terminal_safe
from kubeadm_audit.cli.policy import common
from kubeadm_audit.policy import document
from kubeadm_audit.policy.validation import is_loadable, validate_policy


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...", type=click.Path())
@common.VERSION_OPTION
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
def validate(files: tuple[str, ...], kubernetes_version: str | None, output: str) -> int:
    """Would kube-apiserver load these policies? Exit 1 if it would refuse one.

    Errors are what makes kube-apiserver refuse to start; warnings are fields it
    silently drops (and what that does to the rule).

    \b
    Examples:
      kubeadm-audit policy validate /etc/kubernetes/audit/audit-policy.yaml
      kubeadm-audit policy validate old.yaml new.yaml -o json
      kubeadm-audit policy validate --kubernetes-version v1.30.4 audit-policy.yaml
    """
    minor = common.kubernetes_version(kubernetes_version).minor
    results = []
    for path in files:
        text = yamlio.read_text(path)
        data, read, locate = document.read_located(text, source=path)
        results.append((path, document.place(document.dedupe(read + validate_policy(data, minor)),
                                             locate, path)))
    failed = False
    report: list[dict[str, Any]] = []
    for path, findings in results:
        loadable = is_loadable(findings)
        failed = failed or not loadable
        if output == "json":
            report.append({"file": path, "loadable": loadable,
                           "findings": [f.to_json() for f in findings]})
            continue
        shown = terminal_safe(path)
        for finding in findings:
            click.echo(f"{common.where(shown, finding)}: {common.severity(finding.severity)}: "
                       f"{terminal_safe(str(finding))}")
        errors = sum(f.severity == "error" for f in findings)
        warnings = len(findings) - errors
        if loadable:
            tail = f" ({warnings} warning{'s' * (warnings != 1)})" if warnings else ""
            click.echo(f"{shown}: {style('valid', fg='green')}{tail}")
        else:
            click.echo(f"{shown}: {style('invalid', fg='red', bold=True)}: kube-apiserver would "
                       f"refuse to start ({errors} error{'s' * (errors != 1)})")
    if output == "json":
        emit_json(report)
    return 1 if failed else 0
