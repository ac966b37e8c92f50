"""What the policy subcommands share: reading a policy as kube-apiserver would (warning about
what it silently drops), the --kubernetes-version option, and how a finding is placed and
coloured on a line."""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kubeadm_audit import versions, yamlio
from kubeadm_audit.cli.output import style, warn
from kubeadm_audit.policy import document
from kubeadm_audit.policy.validation import WARNING, load_policy, validate_policy

if TYPE_CHECKING:
    from kubeadm_audit.findings import Finding
    from kubeadm_audit.policy.model import Policy

#: Finding severities, the most severe first.
SEVERITIES = ("error", "warning", "info")

VERSION_OPTION = click.option(
    "--kubernetes-version", "kubernetes_version", metavar="vX.Y.Z",
    help=f"The kube-apiserver version to check against [default: 1.{versions.NEWEST_MINOR}, the newest known].")


def load(path: str) -> Policy:
    """The decoded Policy; warns about silently dropped fields; exit 2 if refused."""
    data, read = document.read(yamlio.read_text(path), source=path)
    policy = load_policy(data, path, read)
    for finding in document.dedupe(read + validate_policy(data)):
        if finding.severity == WARNING:
            warn(f"{path}: {finding}")
    return policy


def kubernetes_version(given: str | None) -> versions.KubeVersion:
    """The --kubernetes-version given, else the newest known."""
    return versions.parse(given or versions.DEFAULT_KUBERNETES_VERSION, field="--kubernetes-version")


def severity(name: str) -> str:
    """A severity, coloured on a terminal."""
    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    return style(str(name), fg=colours.get(name), bold=name == "error")


def where(shown: str, finding: Finding) -> str:
    """``file:line:column`` (the parts known), the form editors and CI annotations jump to
    (``shown``: the file name, made terminal-safe once)."""
    place = shown
    if finding.line is not None:
        place += f":{finding.line}" + (f":{finding.column}" if finding.column is not None else "")
    return place
