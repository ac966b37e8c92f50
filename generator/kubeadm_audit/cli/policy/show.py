"""``kubeadm-audit policy show``: a policy's rules one per line, or (--matrix) the level per
resource and verb."""
from __future__ import annotations

import click

from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, style, terminal_safe
from kubeadm_audit.cli.policy import common
from kubeadm_audit.policy import matrix as matrix_mod
from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.model import Decision, Policy, Rule

_SHORT_LEVEL = {"None": "-", "Metadata": "Meta", "Request": "Req", "RequestResponse": "ReqResp"}
_LEVEL_COLOUR = {"Metadata": "cyan", "Request": "yellow", "RequestResponse": "red"}


@click.command()
@click.argument("file", metavar="FILE", type=click.Path())
@click.option("--matrix", is_flag=True, help="A resources x verbs table of levels.")
@click.option("--user", "user", default="jane", show_default=True,
              help="Evaluate as this user ('' is a user with an empty name).")
@click.option("--group", "groups", multiple=True, metavar="GROUP",
              help="The user's groups (repeatable) [default: system:authenticated].")
@click.option("--unauthenticated", is_flag=True, help="Evaluate requests that carry no user.")
@click.option("--namespace", default="default", show_default=True,
              help="Namespace of the namespaced resources.")
@click.option("--rules", "show_rules", is_flag=True, help="Show the matching rule in each cell.")
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
def show(file: str, matrix: bool, user: str, groups: tuple[str, ...], unauthenticated: bool,
         namespace: str, show_rules: bool, output: str) -> int:
    """Show a policy: its rules one per line, or (--matrix) the level per resource and verb.

    \b
    Examples:
      kubeadm-audit policy show audit-policy.yaml
      kubeadm-audit policy show audit-policy.yaml --matrix
      kubeadm-audit policy show audit-policy.yaml --matrix --user system:kube-proxy
      kubeadm-audit policy show audit-policy.yaml --matrix --user kubelet --group system:nodes --rules
    """
    policy_model = common.load(file)
    if not matrix:
        return _show_rules(policy_model, output)
    who = None if unauthenticated else user
    group_list = () if unauthenticated else (tuple(groups) or ("system:authenticated",))
    table = matrix_mod.build(Checker(policy_model), who, group_list, namespace)
    if output == "json":
        emit_json({"user": who, "groups": list(group_list), "namespace": namespace,
                   "rows": [{"resource": label,
                             "verbs": {verb: d.to_json() for verb, d in cells.items()}}
                            for label, cells in table.rows]})
        return 0
    identity = "no user (unauthenticated)" if who is None else \
        f"user {who!r}, groups {', '.join(group_list)}"
    click.echo(terminal_safe(f"{file}: levels for {identity}; namespaced resources in "
                             f"{namespace!r}"))
    texts = [(label, {verb: _cell(decision, show_rules) for verb, decision in cells.items()})
             for label, cells in table.rows]
    label_width = max(len(label) for label, _ in texts)
    widths = {verb: max([len(verb)] + [len(cells.get(verb, "")) for _, cells in texts])
              for verb in table.verbs}
    header = " " * label_width + "  " + " ".join(v.ljust(widths[v]) for v in table.verbs)
    click.echo(style(header.rstrip(), bold=True))
    for (label, cells), (_, decisions) in zip(texts, table.rows):
        parts = [style(cells.get(verb, "").ljust(widths[verb]),
                       fg=_LEVEL_COLOUR.get(decisions[verb].level) if verb in decisions else None)
                 for verb in table.verbs]
        click.echo((label.ljust(label_width) + "  " + " ".join(parts)).rstrip())
    click.echo("Levels: - None (not logged), Meta Metadata, Req Request, ReqResp RequestResponse"
               + ("; #N = rules[N]" if show_rules else ""))
    return 0


def _cell(decision: Decision, show_rules: bool) -> str:
    text: str = _SHORT_LEVEL.get(decision.level, decision.level)
    if show_rules and decision.rule_index is not None:
        text += f"#{decision.rule_index}"
    return text


def _show_rules(policy_model: Policy, output: str) -> int:
    described = [(index, rule.level, _describe_rule(rule))
                 for index, rule in enumerate(policy_model.rules)]
    if output == "json":
        emit_json({"omitStages": list(policy_model.omit_stages),
                   "omitManagedFields": policy_model.omit_managed_fields,
                   "rules": [{"rule": i, "level": level, "matches": text}
                             for i, level, text in described]})
        return 0
    click.echo(terminal_safe(f"omitStages: {', '.join(policy_model.omit_stages) or '(none)'}; "
                             f"omitManagedFields: {str(policy_model.omit_managed_fields).lower()}"))
    for index, level, text in described:
        click.echo(f"rules[{index}] {style(terminal_safe(level).ljust(15), fg=_LEVEL_COLOUR.get(level))}"
                   f" {terminal_safe(text)}")
    return 0


def _describe_rule(rule: Rule) -> str:
    parts = []
    for label, values in (("users", rule.users), ("groups", rule.user_groups),
                          ("verbs", rule.verbs), ("namespaces", rule.namespaces)):
        if values:
            parts.append(f"{label} {','.join(v or repr(v) for v in values)}")
    if rule.resources:
        entries = []
        for entry in rule.resources:
            group = entry.group or "core"
            what = ",".join(entry.resources) if entry.resources else "*"
            names = f" named {','.join(entry.resource_names)}" if entry.resource_names else ""
            entries.append(f"{group}:{what}{names}")
        parts.append("resources " + " ".join(entries))
    elif rule.non_resource_urls and not rule.namespaces:
        parts.append("paths " + ",".join(rule.non_resource_urls))
    text = "; ".join(parts) if parts else "every request"
    if rule.omit_stages:
        text += f" (also omits {','.join(rule.omit_stages)})"
    return text
