"""``kubeadm-audit webhook test``: does the receiver take events the way kube-apiserver sends them?"""
from __future__ import annotations

import os

import click

from kubeadm_audit import __version__, inputs, webhook_probe, yamlio
from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, style, terminal_safe
from kubeadm_audit.errors import InputError


@click.group()
def webhook() -> None:
    """Check the audit webhook backend against its receiver."""


@webhook.command("test")
@click.argument("file", metavar="FILE", type=click.Path())
@click.option("--events", "count", type=click.IntRange(min=1, max=1000), default=1, show_default=True,
              help="Events in the sample EventList (kube-apiserver sends up to --audit-webhook-batch-max-size).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS", help="Give up after this long (kube-apiserver's webhook client waits 30 s).")
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
def test(file: str, count: int, timeout: float, output: str) -> int:
    """POST a sample audit.k8s.io/v1 EventList to the receiver FILE names.

    FILE is the webhook kubeconfig exactly as kube-apiserver gets it
    (--audit-webhook-config-file): the current context's cluster server URL, its CA
    (certificate-authority-data or -file), insecure-skip-tls-verify and tls-server-name,
    the user's client certificate and key, bearer token or tokenFile. Relative paths are
    relative to FILE. The request is the one kube-apiserver makes: POST to the server
    URL's path, Content-Type application/json, no proxy. The events carry the annotation
    kubeadm-audit.dev/webhook-test=true.

    Prints the status and latency, or what went wrong in plain words (unknown authority,
    wrong server name, expired certificate, client certificate required, connection
    refused). Exit 0 when the receiver answers 2xx, 1 otherwise, 2 for a bad FILE.

    \b
    Examples:
      kubeadm-audit webhook test /etc/kubernetes/audit/audit-webhook.yaml
      kubeadm-audit webhook test audit/audit-webhook.yaml --events 400 -o json
    """
    kubeconfig = yamlio.load(yamlio.read_text(file), source=file)
    base_dir = os.path.dirname(os.path.abspath(file)) if file != "-" else os.getcwd()
    target = webhook_probe.endpoint(kubeconfig, file, base_dir,
                                    lambda path, field: inputs.read_bytes(path, field, source=file))
    body = webhook_probe.encode(webhook_probe.sample_event_list(webhook_probe.now(), count,
                                                                f"kubeadm-audit/{__version__} webhook test"))
    try:
        outcome = webhook_probe.send(target, body, timeout, f"kubeadm-audit/{__version__}")
    except InputError as exc:
        raise InputError(exc.message, source=file, field=exc.field) from None
    except webhook_probe.DeliveryError as exc:
        if output == "json":
            emit_json({"url": target.url, "delivered": False, "status": None,
                       "latencyMs": round(exc.latency * 1000, 1), "problem": exc.message})
        else:
            click.echo(f"POST {terminal_safe(target.url)}: {style('not delivered', fg='red', bold=True)}: "
                       f"{terminal_safe(exc.message)}")
        return 1
    accepted = 200 <= outcome.status < 300
    if output == "json":
        emit_json({"url": target.url, "delivered": accepted, "status": outcome.status,
                   "latencyMs": round(outcome.latency * 1000, 1), "events": count, "bytes": len(body),
                   "auth": target.auth_kind})
        return 0 if accepted else 1
    what = f"{count} event{'s' * (count != 1)}, {len(body)} bytes"
    if target.auth_kind:
        what += f", {target.auth_kind}"
    verdict = style("accepted", fg="green") if accepted else style("refused", fg="red", bold=True)
    click.echo(f"POST {terminal_safe(target.url)} ({what}): {outcome.status} {terminal_safe(outcome.reason)} "
               f"in {outcome.latency * 1000:.0f} ms: {verdict}")
    if not accepted:
        hint = {401: "the receiver wants credentials the kubeconfig's user does not give (token or client "
                     "certificate)",
                403: "the receiver knows the credentials but does not allow them",
                404: "nothing at this path: check the server URL's path",
                405: "the receiver does not take POST at this path: check the server URL's path",
                413: "the batch is too large for the receiver: lower --audit-webhook-batch-max-size or enable "
                     "truncation",
                415: "the receiver does not take application/json"}.get(outcome.status)
        if outcome.status >= 500:
            hint = ("the receiver failed: kube-apiserver retries with backoff, then drops the batch "
                    "(batch mode) or fails the request (blocking-strict)")
        if hint:
            click.echo(f"  {hint}")
        answer = " ".join(outcome.body.split())
        if target.authorization:   # a receiver echoing the request must not print the credential
            answer = answer.replace(target.authorization.split(" ", 1)[1], "<redacted>")
        if answer:
            click.echo(f"  response: {terminal_safe(answer[:300])}")
    return 0 if accepted else 1
