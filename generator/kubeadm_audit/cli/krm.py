"""``kubeadm-audit krm``, listed for --help. Real calls bypass click (``cli.main`` fast path)."""
from __future__ import annotations

import click


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def krm(args: tuple[str, ...]) -> int:
    """KRM function (kpt, kustomize --enable-exec) and legacy Kustomize exec plugin.

    A ResourceList on stdin gives a ResourceList on stdout; otherwise the first
    argument is the config file and stdin a YAML stream (kubectl kustomize
    --enable-alpha-plugins). See 'kubeadm-audit krm --help'.
    """
    from kubeadm_audit.krm import main

    return main(list(args))
