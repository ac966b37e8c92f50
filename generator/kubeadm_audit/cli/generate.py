"""``kubeadm-audit generate``: write the audit bundle for one distribution (--target)."""
from __future__ import annotations

import os
from typing import Any

import click

from kubeadm_audit import targets, yamlio
from kubeadm_audit.cli.options import config_options, resolve
from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, report
from kubeadm_audit.pipeline import bundle, parts


@click.command()
@config_options
@click.option("--target", "target", type=click.Choice(targets.NAMES), default=None,
              help=f"The distribution to render for [default: {targets.DEFAULT}].")
@click.option("--out", "out", required=True, metavar="DIR", type=click.Path(),
              help="Directory to write the bundle into.")
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
def generate(out: str, output: str, target: str | None, **params: Any) -> int:
    """Write the audit policy, webhook kubeconfig and the target's configuration into DIR.

    For kubeadm (the default target): kubeadm-config.yaml and kubeadm-patches/.

    \b
    Examples:
      kubeadm-audit generate --preset recommended --out audit/
      kubeadm-audit generate --preset zeron --webhook-server https://10.0.0.5:8080 \\
          --ca-file ca.pem --out audit/
      kubeadm-audit generate --config audit-config.yaml --kubernetes-version v1.30.4 --out audit/
      kubeadm-audit generate --target kind --out audit/

    Nothing is written unless every check passed. What works but deserves a second look is
    reported on stderr as findings (ids in docs/findings.md), and under "findings" with -o json
    ("warnings" keeps their one-line text for scripts written against earlier releases).
    """
    cfg = resolve({**params, "target": target})
    module = targets.load(cfg.target)
    result = bundle.build(cfg, parts.read(cfg), module.render, out_dir=os.path.abspath(out))
    yamlio.write_tree(out, [(f.path, f.content, f.mode) for f in result.files])
    report(result.findings)
    if output == "json":
        unique = list(dict.fromkeys(result.findings))
        summary = {"out": out, "files": [f.path for f in result.files], "distribution": cfg.target,
                   "kubernetesVersion": str(cfg.kubernetes_version) if cfg.version_pinned else None,
                   "target": f"{cfg.kubernetes_version.major}.{cfg.kubernetes_version.minor}",
                   "flags": [f"--{n}={v}" for n, v in result.parts.args],
                   "findings": [finding.to_json() for finding in unique],
                   # the one-line form earlier releases printed, kept for scripts that read it
                   "warnings": [str(finding) for finding in unique]}
        summary.update(getattr(module, "summary", lambda _cfg: {})(cfg))
        emit_json(summary)
    else:
        for f in result.files:
            click.echo(f"wrote {out.rstrip('/')}/{f.path}")
    return 0
