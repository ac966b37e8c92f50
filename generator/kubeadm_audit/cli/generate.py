"""``kubeadm-audit generate``: write the audit bundle."""
from __future__ import annotations

import click

from kubeadm_audit.cli.options import config_options, resolve
from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, warn


@click.command()
@config_options
@click.option("--out", "out", required=True, metavar="DIR", type=click.Path(), help="Directory to write the bundle into.")
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
def generate(out: str, output: str, **params) -> int:
    """Write the audit policy, webhook kubeconfig, kubeadm config and patches into DIR.

    \b
    Examples:
      kubeadm-audit generate --preset recommended --out audit/
      kubeadm-audit generate --preset zeron --webhook-server https://10.0.0.5:8080 \\
          --ca-file ca.pem --out audit/
      kubeadm-audit generate --config audit-config.yaml --kubernetes-version v1.30.4 --out audit/

    Nothing is written unless every check passed.
    """
    import os

    from kubeadm_audit import bundle, inputs, yamlio

    cfg = resolve(params)
    result = bundle.build(cfg, inputs.read_tls(cfg), inputs.read_policy(cfg), out_dir=os.path.abspath(out))
    yamlio.write_tree(out, [(f.path, f.content, f.mode) for f in result.files])
    for message in result.warnings:
        warn(message)
    if output == "json":
        emit_json({"out": out, "files": [f.path for f in result.files],
                   "kubeadmApi": cfg.kubeadm_api,
                   "kubernetesVersion": str(cfg.kubernetes_version) if cfg.version_pinned else None,
                   "target": f"{cfg.kubernetes_version.major}.{cfg.kubernetes_version.minor}",
                   "flags": [f"--{n}={v}" for n, v in result.args], "warnings": list(result.warnings)})
    else:
        for f in result.files:
            click.echo(f"wrote {out.rstrip('/')}/{f.path}")
    return 0
