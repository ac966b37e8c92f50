"""``kubeadm-audit policy``: validate, lint, explain, simulate and show audit policies.

Thin: parse options, read files through yamlio, call the pure functions in
:mod:`kubeadm_audit.policy`, format, return 0 or 1. Bad input raises InputError (exit 2).
"""
from __future__ import annotations

from typing import Any, Optional

import click

from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, style, warn


@click.group()
def policy() -> None:
    """Check audit policies the way kube-apiserver reads them.

    \b
    Examples:
      kubeadm-audit policy validate audit-policy.yaml
      kubeadm-audit policy lint audit-policy.yaml
      kubeadm-audit policy explain --policy audit-policy.yaml \\
          --request '{"user":"alice","verb":"get","resource":"secrets","namespace":"default"}'
      kubeadm-audit policy simulate --policy new.yaml --compare old.yaml audit.log
      kubeadm-audit policy show audit-policy.yaml --matrix
    """


def _load(path: str) -> Any:
    from kubeadm_audit import yamlio

    return yamlio.load_file(path)


def _load_policy(path: str):
    """The decoded Policy; warns about silently dropped fields; exit 2 if refused."""
    from kubeadm_audit.policy.validation import WARNING, load_policy, validate_policy

    data = _load(path)
    policy = load_policy(data, path)
    for finding in validate_policy(data):
        if finding.severity == WARNING:
            warn(f"{path}: {finding}")
    return policy


# --- validate ------------------------------------------------------------------------------

@policy.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
def validate(files: tuple, output: str) -> int:
    """Would kube-apiserver load these policies? Exit 1 if it would refuse one.

    Errors are what makes kube-apiserver refuse to start; warnings are fields it
    silently drops (and what that does to the rule).
    """
    from kubeadm_audit.policy.validation import is_loadable, validate_policy

    results = [(path, validate_policy(_load(path))) for path in files]
    failed = False
    report = []
    for path, findings in results:
        loadable = is_loadable(findings)
        failed = failed or not loadable
        if output == "json":
            report.append({"file": path, "loadable": loadable,
                           "findings": [{"path": f.path, "severity": f.severity,
                                         "message": f.message} for f in findings]})
            continue
        for finding in findings:
            click.echo(f"{path}: {_severity(finding.severity)}: {finding}")
        errors = sum(f.severity == "error" for f in findings)
        warnings = len(findings) - errors
        if loadable:
            tail = f" ({warnings} warning{'s' * (warnings != 1)})" if warnings else ""
            click.echo(f"{path}: {style('valid', fg='green')}{tail}")
        else:
            click.echo(f"{path}: {style('invalid', fg='red', bold=True)}: kube-apiserver would "
                       f"refuse to start ({errors} error{'s' * (errors != 1)})")
    if output == "json":
        emit_json(report)
    return 1 if failed else 0


def _severity(severity: str) -> str:
    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    return style(severity, fg=colours.get(severity), bold=severity == "error")


# --- explain -------------------------------------------------------------------------------

@policy.command()
@click.option("--policy", "policy_file", required=True, metavar="FILE", help="The audit policy.")
@click.option("--request", "request_json", metavar="JSON", help="One request as a JSON object.")
@click.option("--requests", "requests_file", metavar="FILE|-",
              help="Requests as JSON lines (one object per line; '-' is stdin; .gz ok).")
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
def explain(policy_file: str, request_json: Optional[str], requests_file: Optional[str],
            output: str) -> int:
    """Which level, stages and rule a request gets, and why.

    \b
    Request keys (all optional; a missing key means absent):
      user (string, or null: unauthenticated)  groups  verb  namespace
      apiGroup ("" = core)  apiVersion  resource  subresource  name  path
      resourceRequest (default: true exactly when "resource" is non-empty)
    Rules are numbered from 0, as in the field paths rules[N].

    \b
    Examples:
      kubeadm-audit policy explain --policy p.yaml \\
          --request '{"user":"bob","groups":["dev"],"verb":"create","resource":"pods",
                      "subresource":"exec","namespace":"default","name":"web-0"}'
      kubeadm-audit policy explain --policy p.yaml --request '{"verb":"get","path":"/healthz"}'
      kubeadm-audit policy explain --policy p.yaml --requests requests.jsonl -o json
    """
    from kubeadm_audit.errors import InputError
    from kubeadm_audit.policy.checker import Checker

    if (request_json is None) == (requests_file is None):
        raise click.UsageError("give exactly one of --request JSON or --requests FILE")
    checker = Checker(_load_policy(policy_file))
    if request_json is not None:
        requests = [_parse_request(request_json, "--request", None)]
    else:
        from kubeadm_audit import yamlio

        requests = [_parse_request(line, source, number)
                    for source, number, line in yamlio.iter_lines([requests_file])
                    if line.strip()]
        if not requests:
            raise InputError("no requests (expected one JSON object per line)", source=requests_file)
    explanations = [checker.explain(request) for request in requests]
    if output == "json":
        for item in explanations:
            emit_json(item.decision.to_json(), compact=requests_file is not None)
        return 0
    for number, item in enumerate(explanations):
        if number:
            click.echo("")
        _print_explanation(item, checker)
    return 0


def _parse_request(text: str, source: str, line: Optional[int]):
    import json

    from kubeadm_audit.errors import InputError
    from kubeadm_audit.policy.model import Request

    where = f"line {line}" if line else None
    try:
        return Request.from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid request JSON: {exc.msg} (column {exc.colno})",
                         source=source, field=where) from None
    except ValueError as exc:
        raise InputError(f"invalid request: {exc}", source=source, field=where) from None


def _print_explanation(item, checker) -> None:
    decision = item.decision
    click.echo(style(item.request.describe(), bold=True))
    for step in item.steps:
        mark = style("match", fg="green") if step.matched else "skip "
        click.echo(f"  {mark} rules[{step.index}] ({step.level}): {step.reason}")
    if decision.rule_index is None:
        click.echo(f"  no rule matched ({len(checker.policy.rules)} tried): level None, "
                   f"no event is written")
        return
    stages = ", ".join(decision.omit_stages) or "none"
    rule = checker.policy.rules[decision.rule_index]
    omf_from = "rule" if rule.omit_managed_fields is not None else "policy"
    click.echo(f"  => level {style(decision.level, bold=True)} from rules[{decision.rule_index}]"
               f"; omitStages: {stages}; omitManagedFields: "
               f"{str(decision.omit_managed_fields).lower()} ({omf_from})")


# --- lint ----------------------------------------------------------------------------------

@policy.command()
@click.argument("files", nargs=-1, metavar="FILE...")
@click.option("--kubernetes-version", "kubernetes_version", metavar="vX.Y.Z",
              help="Version the API group/resource table is checked against "
                   "[default: the project's default version].")
@click.option("--list-checks", is_flag=True, help="List the check ids and exit.")
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
def lint(files: tuple, kubernetes_version: Optional[str], list_checks: bool, output: str) -> int:
    """Findings with stable ids (KA0nn), severity and a fix hint. Exit 1 on any error.

    \b
    Examples:
      kubeadm-audit policy lint audit-policy.yaml
      kubeadm-audit policy lint --kubernetes-version v1.25.0 old-policy.yaml -o json
      kubeadm-audit policy lint --list-checks
    """
    from kubeadm_audit import versions
    from kubeadm_audit.policy.lint import CHECKS, has_errors, lint_policy

    if list_checks:
        for check_id, text in CHECKS.items():
            click.echo(f"{check_id}  {text}")
        return 0
    if not files:
        raise click.UsageError("give at least one policy FILE")
    version = versions.parse(kubernetes_version or versions.DEFAULT_KUBERNETES_VERSION,
                             field="--kubernetes-version")
    results = [(path, lint_policy(_load(path), version.minor)) for path in files]
    if output == "json":
        emit_json([{"file": path, "kubernetesVersion": str(version),
                    "findings": [f.to_json() for f in findings]} for path, findings in results])
    else:
        for path, findings in results:
            for finding in findings:
                where = f"{path}: {finding.path}" if finding.path else path
                click.echo(f"{where}: {_severity(finding.severity)} {finding.id}: {finding.message}")
                if finding.hint:
                    click.echo(f"    fix: {finding.hint}")
            counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
            summary = ", ".join(f"{n} {s}{'s' * (n != 1 and s != 'info')}"
                                for s, n in counts.items())
            click.echo(f"{path}: {summary}" if findings else f"{path}: {style('clean', fg='green')}")
    return 1 if any(has_errors(findings) for _, findings in results) else 0
