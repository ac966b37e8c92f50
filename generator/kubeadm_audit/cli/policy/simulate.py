"""``kubeadm-audit policy simulate``: replay audit logs against a policy (events, bytes, rates,
whether the webhook batching keeps up; with --compare, what changes between two policies)."""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import click

from kubeadm_audit import flags, versions, yamlio
from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, style, terminal_safe_data, warn
from kubeadm_audit.cli.policy import common
from kubeadm_audit.errors import InputError
from kubeadm_audit.inputs import POLICY_FILE
from kubeadm_audit.policy import simulate as sim_mod
from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.targets.kubeadm import PATCHES_DIR, patches


@click.command()
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

    files = [(policy_file, Checker(common.load(policy_file)))]
    if compare_file:
        files.append((compare_file, Checker(common.load(compare_file))))
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
        plain = [p for p in logs if p != "-" and not p.endswith(".gz")]
        self.total = sum(os.path.getsize(p) for p in plain if os.path.isfile(p)) \
            if len(plain) == len(logs) else 0
        self.done = 0
        self.started = time.monotonic()
        self.shown = False

    @staticmethod
    def wanted() -> bool:
        return sys.stderr.isatty()

    def wrap(self, batches: Iterable[_Batch]) -> Iterator[_Batch]:
        for batch in batches:
            self.done += sum(len(line) for line in batch[2] if line is not None)
            yield batch

    def update(self, count: int) -> None:
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


