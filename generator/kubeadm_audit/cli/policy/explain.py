"""``kubeadm-audit policy explain``: which level, stages and rule a request gets, and why."""
from __future__ import annotations

import json

import click

from kubeadm_audit import yamlio
from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, style, terminal_safe
from kubeadm_audit.cli.policy import common
from kubeadm_audit.errors import InputError
from kubeadm_audit.policy.checker import Checker, Explanation
from kubeadm_audit.policy.model import Request


@click.command()
@click.option("--policy", "policy_file", required=True, metavar="FILE", type=click.Path(), help="The audit policy.")
@click.option("--request", "request_json", metavar="JSON", help="One request as a JSON object.")
@click.option("--requests", "requests_file", metavar="FILE|-", type=click.Path(),
              help="Requests as JSON lines (one object per line; '-' is stdin; .gz ok).")
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
def explain(policy_file: str, request_json: str | None, requests_file: str | None,
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
    if (request_json is None) == (requests_file is None):
        raise click.UsageError("give exactly one of --request JSON or --requests FILE")
    checker = Checker(common.load(policy_file))
    if request_json is not None:
        requests = [_parse_request(request_json, "--request", None)]
    else:
        assert requests_file is not None     # exactly one of the two is given (checked above)
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


def _parse_request(text: str, source: str, line: int | None) -> Request:
    where = f"line {line}" if line else None
    try:
        return Request.from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid request JSON: {exc.msg} (column {exc.colno})",
                         source=source, field=where) from None
    except ValueError as exc:
        raise InputError(f"invalid request: {exc}", source=source, field=where) from None
    except RecursionError:
        raise InputError("invalid request JSON: nested too deeply", source=source, field=where) from None


def _print_explanation(item: Explanation, checker: Checker) -> None:
    decision = item.decision
    click.echo(style(terminal_safe(item.request.describe()), bold=True))
    for step in item.steps:
        mark = style("match", fg="green") if step.matched else "skip "
        click.echo(f"  {mark} rules[{step.index}] ({terminal_safe(step.level)}): "
                   f"{terminal_safe(step.reason)}")
    if decision.rule_index is None:
        click.echo(f"  no rule matched ({len(checker.policy.rules)} tried): level None, "
                   f"no event is written")
        return
    stages = ", ".join(decision.omit_stages) or "none"
    rule = checker.policy.rules[decision.rule_index]
    omf_from = "rule" if rule.omit_managed_fields is not None else "policy"
    click.echo(f"  => level {style(terminal_safe(decision.level), bold=True)} from "
               f"rules[{decision.rule_index}]"
               f"; omitStages: {stages}; omitManagedFields: "
               f"{str(decision.omit_managed_fields).lower()} ({omf_from})")
