"""``kubeadm-audit flags validate``: would kube-apiserver start with these audit flags?"""
from __future__ import annotations

import click

from kubeadm_audit import flags as flags_mod
from kubeadm_audit import versions
from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, style
from kubeadm_audit.errors import shorten
from kubeadm_audit.findings import Severity, at_or_above


@click.group()
def flags() -> None:
    """Check kube-apiserver --audit-* flags."""


@flags.command(context_settings={"ignore_unknown_options": True})
@click.option("--kubernetes-version", metavar="vX.Y.Z", help="Version whose defaults apply.")
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def validate(args: tuple[str, ...], kubernetes_version: str | None, output: str) -> int:
    """Exit 1 when kube-apiserver would refuse to start with ARGS.

    ARGS are kube-apiserver arguments (--audit-log-maxage=30; kubeadm's
    audit-log-maxage=30 form is accepted too). Other flags are ignored; no ARGS is
    valid (kube-apiserver starts with no audit backend). Warnings (accepted, but not
    what people expect) do not change the exit code.

    \b
    Examples:
      kubeadm-audit flags validate -- --audit-log-path=/var/log/audit.log --audit-log-maxage=-1
      kubeadm-audit flags validate -- --audit-webhook-config-file=/etc/k/w.yaml \\
          --audit-webhook-batch-max-size=1
    """
    version = versions.parse(kubernetes_version, "--kubernetes-version") if kubernetes_version else None
    occurrences = flags_mod.read_command(args)
    values = flags_mod.effective(occurrences)
    problems = flags_mod.validate(values, version, occurrences)
    failed = at_or_above(problems, Severity.ERROR)
    if output == "json":
        emit_json({"valid": not failed, "problems": [
            {"flag": p.path.removeprefix("--"), "severity": p.severity.value, "message": p.message} for p in problems]})
    else:
        for p in problems:
            label = style(f"{p.severity}:", fg="red" if p.severity is Severity.ERROR else "yellow",
                          bold=True)
            click.echo(f"{label} {shorten(str(p))}")
        if not problems:
            click.echo("ok: kube-apiserver accepts these audit flags")
        if not failed and not flags_mod.backend_enabled(values):
            click.echo("note: no audit backend (--audit-log-path, --audit-webhook-config-file): "
                       "kube-apiserver starts and audits nothing")
    return 1 if failed else 0
