"""``kubeadm-audit policy``: validate, lint, explain, simulate and show audit policies.

Thin: parse options, read files through yamlio, call the pure functions in
:mod:`kubeadm_audit.policy`, format, return 0 or 1. Bad input raises InputError (exit 2).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import click

from kubeadm_audit import versions
from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, style, terminal_safe, terminal_safe_data, warn

if TYPE_CHECKING:
    from kubeadm_audit.findings import Finding
    from kubeadm_audit.policy.checker import Checker, Explanation
    from kubeadm_audit.policy.model import Decision, Policy, Request, Rule


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


def _read(path: str) -> tuple[Any, list[Finding]]:
    """(document, findings of the reading: repeated fields and what they hide)."""
    from kubeadm_audit import yamlio
    from kubeadm_audit.policy import document

    return document.read(yamlio.read_text(path), source=path)


def _load_policy(path: str) -> Policy:
    """The decoded Policy; warns about silently dropped fields; exit 2 if refused."""
    from kubeadm_audit.policy.document import dedupe
    from kubeadm_audit.policy.validation import WARNING, load_policy, validate_policy

    data, read = _read(path)
    policy = load_policy(data, path, read)
    for finding in dedupe(read + validate_policy(data)):
        if finding.severity == WARNING:
            warn(f"{path}: {finding}")
    return policy


def _minor(kubernetes_version: str | None) -> int:
    from kubeadm_audit import versions

    return versions.parse(kubernetes_version or versions.DEFAULT_KUBERNETES_VERSION,
                          field="--kubernetes-version").minor


_VERSION_OPTION = click.option(
    "--kubernetes-version", "kubernetes_version", metavar="vX.Y.Z",
    help=f"The kube-apiserver version to check against [default: 1.{versions.NEWEST_MINOR}, the newest known].")


# --- validate ------------------------------------------------------------------------------

@policy.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...", type=click.Path())
@_VERSION_OPTION
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
    from kubeadm_audit import yamlio
    from kubeadm_audit.policy import document
    from kubeadm_audit.policy.validation import is_loadable, validate_policy

    minor = _minor(kubernetes_version)
    results = []
    for path in files:
        text = yamlio.read_text(path)
        data, read, locate = document.read_located(text, source=path)
        results.append((path, document.place(document.dedupe(read + validate_policy(data, minor)),
                                             locate, path)))
    failed = False
    report = []
    for path, findings in results:
        loadable = is_loadable(findings)
        failed = failed or not loadable
        if output == "json":
            report.append({"file": path, "loadable": loadable,
                           "findings": [f.to_json() for f in findings]})
            continue
        shown = terminal_safe(path)
        for finding in findings:
            click.echo(f"{_where(shown, finding)}: {_severity(finding.severity)}: "
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


def _severity(severity: str) -> str:
    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    return style(str(severity), fg=colours.get(severity), bold=severity == "error")


# --- explain -------------------------------------------------------------------------------

@policy.command()
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
    from kubeadm_audit.errors import InputError
    from kubeadm_audit.policy.checker import Checker

    if (request_json is None) == (requests_file is None):
        raise click.UsageError("give exactly one of --request JSON or --requests FILE")
    checker = Checker(_load_policy(policy_file))
    if request_json is not None:
        requests = [_parse_request(request_json, "--request", None)]
    else:
        from kubeadm_audit import yamlio

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


# --- lint ----------------------------------------------------------------------------------

_SEVERITIES = ("error", "warning", "info")


def _check_ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """Ids as given, upper-cased; an unknown one is a usage error (exit 2) naming it."""
    from kubeadm_audit.policy.lint import REGISTRY

    ids = tuple(v.strip().upper() for v in value)
    for given, check_id in zip(value, ids):
        if check_id not in REGISTRY:
            raise click.BadParameter(f"unknown check id {given!r} (policy lint --list-checks lists them)",
                                     ctx=ctx, param=param)
    return ids


@policy.command()
@click.argument("files", nargs=-1, metavar="FILE...", type=click.Path())
@_VERSION_OPTION
@click.option("--disable", "disable", multiple=True, metavar="ID", callback=_check_ids,
              help="Do not run check ID (repeatable).")
@click.option("--enable", "enable", multiple=True, metavar="ID", callback=_check_ids,
              help="Run check ID, also one that is off by default (repeatable; --disable wins).")
@click.option("--fail-on", "fail_on", type=click.Choice(_SEVERITIES), default="error", show_default=True,
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
    from kubeadm_audit.findings import Severity, at_or_above
    from kubeadm_audit.policy.lint import REGISTRY, select

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
    minor = _minor(kubernetes_version)
    ids = select(enable, disable)
    results = [(path, _lint_file(path, minor, ids)) for path in files]
    if output == "sarif":
        from kubeadm_audit.policy.lint import sarif

        emit_json(sarif.document(results, ids))
    elif output == "json":
        version = versions.parse(kubernetes_version or versions.DEFAULT_KUBERNETES_VERSION,
                                 field="--kubernetes-version")
        emit_json([{"file": path, "kubernetesVersion": str(version),
                    "findings": [f.to_json() for f in findings]} for path, findings in results])
    else:
        for path, findings in results:
            click.echo(_lint_text(path, findings))
    threshold = Severity.parse(fail_on)
    return 1 if any(at_or_above(findings, threshold) for _, findings in results) else 0


def _lint_file(path: str, minor: int, ids: frozenset[str]) -> list[Finding]:
    """The findings of one file, placed on their lines (the parsed file is freed on return)."""
    from kubeadm_audit import yamlio
    from kubeadm_audit.policy import document
    from kubeadm_audit.policy.lint import lint_policy

    data, read, locate = document.read_located(yamlio.read_text(path), source=path)
    return document.place(lint_policy(data, minor, ids, read), locate, path)


def _where(shown: str, finding: Finding) -> str:
    """``file:line:column`` (the parts known), the form editors and CI annotations jump to
    (``shown``: the file name, made terminal-safe once)."""
    where = shown
    if finding.line is not None:
        where += f":{finding.line}" + (f":{finding.column}" if finding.column is not None else "")
    return where


def _lint_text(path: str, findings: list[Finding]) -> str:
    """One write: a hostile policy can have tens of thousands of findings."""
    severities = {s: _severity(s) for s in _SEVERITIES}
    shown = terminal_safe(path)
    lines = []
    for finding in findings:
        field = f" {terminal_safe(finding.path)}:" if finding.path else ""
        lines.append(f"{_where(shown, finding)}:{field} {severities[finding.severity]} "
                     f"{finding.id}: {terminal_safe(finding.message)}\n")
        if finding.hint:
            lines.append(f"    fix: {terminal_safe(finding.hint)}\n")
    counts = {s: sum(f.severity == s for f in findings) for s in _SEVERITIES}
    summary = ", ".join(f"{n} {s}{'s' * (n != 1 and s != 'info')}" for s, n in counts.items())
    lines.append(f"{shown}: {summary}" if findings else f"{shown}: {style('clean', fg='green')}")
    return "".join(lines)


# --- simulate ------------------------------------------------------------------------------

@policy.command()
@click.option("--policy", "policy_file", metavar="FILE", type=click.Path(),
              help="The policy to replay the log against [default: the --bundle's policy].")
@click.option("--bundle", "bundle_dir", metavar="DIR", type=click.Path(),
              help="A bundle written by 'generate': its policy, and the webhook batching and throttling "
                   "its kube-apiserver flags set (options given here override them).")
@click.option("--compare", "compare_file", metavar="FILE", type=click.Path(),
              help="A second policy (e.g. the one in use): what changes between the two.")
@click.argument("logs", nargs=-1, required=True, metavar="LOG...", type=click.Path())
@click.option("--top", "top_n", type=click.IntRange(min=1), default=10, show_default=True,
              help="Rows in the per-resource and per-user tables.")
@click.option("--webhook-mode", type=click.Choice(versions.AUDIT_MODES),
              default=versions.WEBHOOK_MODE_DEFAULT, show_default=True, help="--audit-webhook-mode to check.")
@click.option("--webhook-batch-max-size", type=click.IntRange(min=1), default=versions.WEBHOOK_BATCH_MAX_SIZE,
              show_default=True,
              help="--audit-webhook-batch-max-size to check.")
@click.option("--webhook-throttle-qps", type=click.FloatRange(min=0, min_open=True),
              default=versions.WEBHOOK_BATCH_THROTTLE_QPS,
              show_default=True, help="--audit-webhook-batch-throttle-qps to check.")
@click.option("--webhook-throttle-burst", type=click.IntRange(min=1), default=versions.WEBHOOK_BATCH_THROTTLE_BURST,
              show_default=True,
              help="--audit-webhook-batch-throttle-burst to check.")
@click.option("--webhook-throttle-enable", type=click.BOOL, default=versions.WEBHOOK_BATCH_THROTTLE_ENABLE,
              show_default=True, metavar="true|false", help="--audit-webhook-batch-throttle-enable to check.")
@click.option("--webhook-buffer-size", type=click.IntRange(min=1), default=versions.WEBHOOK_BATCH_BUFFER_SIZE,
              show_default=True,
              help="--audit-webhook-batch-buffer-size to check.")
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
@click.pass_context
def simulate(ctx: click.Context, policy_file: str | None, bundle_dir: str | None,
             compare_file: str | None, logs: tuple[str, ...], top_n: int,
             webhook_mode: str, webhook_batch_max_size: int, webhook_throttle_qps: float,
             webhook_throttle_burst: int, webhook_throttle_enable: bool, webhook_buffer_size: int,
             output: str) -> int:
    """Replay audit logs (JSON lines, .gz, '-' for stdin) against a policy.

    Counts each request once (by auditID), predicts the events and bytes the policy
    would write per level, resource and user, the event rate over the log's time span,
    and whether the webhook batching keeps up. With --compare, which requests change
    level between the two policies and the volume difference.

    \b
    Only what the log holds can be replayed: requests the logging policy dropped
    are absent, and bodies it did not log are estimated from the log's mean event
    size per level. Malformed lines are counted and reported, never fatal: lines
    that are not JSON events, nested deeper than 1024, or longer than 16 MiB. A
    damaged or truncated .gz is replayed up to the damage; the rest counts as one
    malformed line and a warning names the file. A log without any event is an
    input error (exit 2). Give rotated files oldest first.

    \b
    Examples:
      kubeadm-audit policy simulate --policy audit-policy.yaml /var/log/kubernetes/audit/audit.log
      kubeadm-audit policy simulate --policy new.yaml --compare old.yaml audit.log audit-*.log.gz
      zcat audit.log.gz | kubeadm-audit policy simulate --policy p.yaml --webhook-batch-max-size 1 -
      kubeadm-audit policy simulate --bundle audit/ /var/log/kubernetes/audit/audit.log
    """
    from kubeadm_audit import yamlio
    from kubeadm_audit.errors import InputError
    from kubeadm_audit.policy import simulate as sim_mod
    from kubeadm_audit.policy.checker import Checker

    given: dict[str, Any] = {"max_size": webhook_batch_max_size, "throttle_qps": webhook_throttle_qps,
             "throttle_burst": webhook_throttle_burst, "throttle_enable": webhook_throttle_enable,
             "buffer_size": webhook_buffer_size, "mode": webhook_mode}
    if bundle_dir:
        policy_file, from_bundle = _bundle_simulation(bundle_dir, policy_file)
        option_of = {"max_size": "webhook_batch_max_size", "throttle_qps": "webhook_throttle_qps",
                     "throttle_burst": "webhook_throttle_burst", "throttle_enable": "webhook_throttle_enable",
                     "buffer_size": "webhook_buffer_size", "mode": "webhook_mode"}
        for field, value in from_bundle.items():
            if ctx.get_parameter_source(option_of[field]) == click.core.ParameterSource.DEFAULT:
                given[field] = value
    elif not policy_file:
        raise click.UsageError("give --policy FILE or --bundle DIR")

    files = [(policy_file, Checker(_load_policy(policy_file)))]
    if compare_file:
        files.append((compare_file, Checker(_load_policy(compare_file))))
    problems: list[tuple[str, str]] = []
    lines = yamlio.read_line_batches(logs, problems)
    progress = _Progress(logs) if _Progress.wanted() else None
    try:
        result = sim_mod.simulate(progress.wrap(lines) if progress else lines,
                                  [c for _, c in files], [n for n, _ in files],
                                  progress=progress.update if progress else None)
    finally:
        if progress:
            progress.close()
    legacy = (" (these are --audit-log-format=legacy lines, which lack objectRef: replay a "
              "log written with --audit-log-format=json)") if result.legacy else ""
    if not result.events:  # one error line, naming a damaged .gz as the reason
        if problems:
            source, problem = problems[0]
            raise InputError(f"{problem}; no audit events to replay", source=source)
        where = f"; first malformed at {', '.join(result.malformed_at)}" if result.malformed else ""
        raise InputError(f"no audit events to replay ({result.lines} lines, {result.malformed} "
                         f"malformed{where}){legacy}", source=", ".join(logs))
    for source, problem in problems:
        warn(f"{source}: {problem}")
    settings = sim_mod.WebhookSettings(**given)
    report = sim_mod.report(result, settings, top_n)
    if output == "json":
        emit_json(report)
    else:  # users, resources, paths and times come from the log
        _print_simulation(terminal_safe_data(report))
    if result.malformed:
        warn(f"{result.malformed} malformed line(s) skipped, first at "
             f"{', '.join(result.malformed_at)}{legacy}")
    return 0


def _bundle_simulation(directory: str, policy_file: str | None) -> tuple[str, dict[str, object]]:
    """The bundle's policy (unless --policy names another) and the WebhookSettings fields its
    kube-apiserver flags set, read from the bundle's kubeadm patch: the exact command-line
    additions, whichever route carries them."""
    import os

    from kubeadm_audit import flags, yamlio
    from kubeadm_audit.errors import InputError
    from kubeadm_audit.inputs import POLICY_FILE
    from kubeadm_audit.policy import simulate as sim_mod
    from kubeadm_audit.targets.kubeadm import PATCHES_DIR, patches

    patch = os.path.join(directory, PATCHES_DIR, patches.PATCH_FILE)
    if not os.path.isfile(patch):
        raise InputError(f"no {PATCHES_DIR}/{patches.PATCH_FILE}: not a bundle written by "
                         "'kubeadm-audit generate'", source=directory, field="--bundle")
    values = flags.effective(flags.parse_command(patches.command_args(yamlio.load_file(patch))))
    try:
        settings = sim_mod.webhook_settings(values)
    except ValueError as exc:
        raise InputError(str(exc), source=patch) from None
    if "audit-webhook-config-file" not in values:
        warn(f"{directory}: the bundle has no webhook backend; the webhook figures assume kube-apiserver's "
             "defaults")
    return policy_file or os.path.join(directory, POLICY_FILE), settings


#: (source, number of its first line, lines) as yamlio.read_line_batches gives them.
_Batch = tuple[str, int, list["bytes | None"]]


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, logs: tuple[str, ...]) -> None:
        import os
        import time

        plain = [p for p in logs if p != "-" and not p.endswith(".gz")]
        self.total = sum(os.path.getsize(p) for p in plain if os.path.isfile(p)) \
            if len(plain) == len(logs) else 0
        self.done = 0
        self.started = time.monotonic()
        self.shown = False

    @staticmethod
    def wanted() -> bool:
        import sys

        return sys.stderr.isatty()

    def wrap(self, batches: Iterable[_Batch]) -> Iterator[_Batch]:
        for batch in batches:
            self.done += sum(len(line) for line in batch[2] if line is not None)
            yield batch

    def update(self, count: int) -> None:
        import sys
        import time

        elapsed = time.monotonic() - self.started
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            bar = "#" * int(fraction * 30)
            text = f"\rreplaying [{bar:<30}] {fraction:4.0%} {count} lines {elapsed:.0f}s"
        else:
            text = f"\rreplaying {count} lines {elapsed:.0f}s"
        sys.stderr.write(text)
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        import sys

        if self.shown:  # clear the line with spaces: no escape sequences needed
            sys.stderr.write("\r" + " " * 72 + "\r")
            sys.stderr.flush()


def _print_simulation(report: dict[str, Any]) -> None:
    info, span = report["input"], report["span"]
    click.echo(f"Replayed {info['events']} events = {info['requests']} requests "
               f"({info['lines']} lines, {info['malformed']} malformed); span {span['start']} .. "
               f"{span['end']} ({_duration(span['seconds'])})")
    if info["evictedInFlight"]:
        click.echo(f"  {info['evictedInFlight']} requests were still in flight when the window "
                   f"filled and were counted early")
    logged = report["logged"]
    click.echo(f"Logged: {logged['events']} events, {_bytes(logged['bytes'])}, "
               f"{logged['eventsPerSecond']:.2f} events/s ("
               + ", ".join(f"{row['level']} {row['events']}" for row in logged["byLevel"]) + ")")
    sections = [("Under", report["policy"])]
    if "compare" in report:
        sections.append(("Compared with", report["compare"]))
    for title, data in sections:
        click.echo("")
        versus = data["events"] - logged["events"]
        click.echo(style(f"{title} {data['file']}:", bold=True) +
                   f" {data['events']} events ({versus:+d} against the log), "
                   f"{_bytes(data['bytes'])} (estimated), "
                   f"{data['eventsPerSecond']:.2f} events/s, busiest minute "
                   f"{data['peakEventsPerSecond']:.2f} events/s")
        _table(["LEVEL", "REQUESTS", "EVENTS", "BYTES"],
               [[r["level"], r["requests"], r["events"], _bytes(r["bytes"])] for r in data["byLevel"]])
        for label, key in (("RESOURCE", "byResource"), ("USER", "byUser")):
            _table([label, "REQUESTS", "EVENTS", "BYTES"],
                   [[r["name"], r["requests"], r["events"], _bytes(r["bytes"])] for r in data[key]])
        verdict = data["webhook"]
        colour = {True: "green", False: "red"}.get(verdict["keepsUp"])
        click.echo(f"  webhook: {style(verdict['message'], fg=colour)}")
    if "compare" in report:
        compare = report["compare"]
        click.echo("")
        click.echo(style(f"Changes from {compare['file']} to {report['policy']['file']}:", bold=True))
        if compare["transitions"]:
            _table(["FROM", "TO", "REQUESTS", "EXAMPLES"],
                   [[t["from"], t["to"], t["requests"], "; ".join(t["examples"])]
                    for t in compare["transitions"]])
        else:
            click.echo("  no request changes level")
        delta = compare["delta"]
        click.echo(f"  events {delta['events']:+d}, bytes {'+' if delta['bytes'] >= 0 else '-'}"
                   f"{_bytes(abs(delta['bytes']))}")


def _table(header: list[str], rows: list[list[Any]]) -> None:
    """Aligned columns: numbers to the right, text to the left, the last column free."""
    if not rows:
        return
    cells = [header] + [[str(c) for c in row] for row in rows]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) for i in range(len(header))]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    for number, row in enumerate(cells):
        text = "  " + "  ".join(c.rjust(w) if numeric[i] else c.ljust(w)
                                for i, (c, w) in enumerate(zip(row, widths)))
        text = (text + "  " + row[-1]).rstrip()
        click.echo(style(text, bold=True) if number == 0 else text)


def _bytes(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# --- show ----------------------------------------------------------------------------------

_SHORT_LEVEL = {"None": "-", "Metadata": "Meta", "Request": "Req", "RequestResponse": "ReqResp"}
_LEVEL_COLOUR = {"Metadata": "cyan", "Request": "yellow", "RequestResponse": "red"}


@policy.command()
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
    from kubeadm_audit.policy import matrix as matrix_mod
    from kubeadm_audit.policy.checker import Checker

    policy_model = _load_policy(file)
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
