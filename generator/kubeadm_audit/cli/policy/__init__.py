"""``kubeadm-audit policy``: validate, lint, explain, simulate and show audit policies.

One module per subcommand, named as it is, each thin: parse options, read files through yamlio,
call the pure functions in :mod:`kubeadm_audit.policy`, format, return 0 or 1 (bad input raises
InputError: exit 2). ``common`` holds what several of them share. The group imports a
subcommand's module only when click looks that subcommand up, so no command pays for another's
imports. May import anything in the package; a subcommand module imports ``common``, never
another subcommand.
"""
from __future__ import annotations

import click

from kubeadm_audit.cli.lazy import LazyGroup

#: The subcommands: each is the function of its own name in the module of its own name.
SUBCOMMANDS = ("explain", "lint", "show", "simulate", "validate")


@click.group(cls=LazyGroup, commands={name: (f"{__name__}.{name}", name) for name in SUBCOMMANDS})
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
