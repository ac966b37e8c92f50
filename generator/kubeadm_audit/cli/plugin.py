"""``kubeadm-audit plugin install``: put the legacy Kustomize exec plugin where kustomize finds it."""
from __future__ import annotations

import compileall
import contextlib
import os
import sys

import click

from kubeadm_audit import kustomize_plugin, yamlio
from kubeadm_audit.errors import InputError


@click.group()
def plugin() -> None:
    """The Kustomize plugin (for kubectl kustomize --enable-alpha-plugins).

    \b
    Examples:
      kubeadm-audit plugin install
      kubeadm-audit plugin install --plugin-home ./plugins
      KUSTOMIZE_PLUGIN_HOME=$PWD/plugins kubectl kustomize --enable-alpha-plugins overlay/
    """


@plugin.command()
@click.option("--plugin-home", "home", metavar="DIR", type=click.Path(),
              help="Plugin home to install into. Default: kustomize's own lookup order "
                   "($KUSTOMIZE_PLUGIN_HOME, $XDG_CONFIG_HOME/kustomize/plugin, "
                   "$HOME/.config/kustomize/plugin, $HOME/kustomize/plugin).")
def install(home: str) -> int:
    """Install the AuditConfig plugin as <home>/kubeadm-audit.dev/v1alpha1/auditconfig/AuditConfig.

    The plugin runs this installation's Python and package. kubectl kustomize finds the
    first plugin home that exists, so set KUSTOMIZE_PLUGIN_HOME to the same DIR when
    you install somewhere else.

    \b
    Examples:
      kubeadm-audit plugin install
      kubeadm-audit plugin install --plugin-home ./plugins
      KUSTOMIZE_PLUGIN_HOME=$PWD/plugins kubectl kustomize --enable-alpha-plugins overlays/prod
    """
    why = "--plugin-home"
    if not home:
        chosen, why = kustomize_plugin.install_home(os.environ)
        if chosen is None:
            raise InputError(f"cannot choose a plugin home: {why}; pass --plugin-home DIR")
        home = chosen
    target = kustomize_plugin.plugin_path(os.path.abspath(home))
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create: {exc.strerror or exc}", source=os.path.dirname(target)) from None
    search_path = kustomize_plugin.search_path(sys.path, bool(getattr(sys.flags, "safe_path", False)),
                                               os.environ.get("PYTHONPATH"))
    text = kustomize_plugin.script(sys.executable, kustomize_plugin.package_root(), search_path)
    yamlio.replace_file(target, text, 0o755)
    _precompile(kustomize_plugin.package_root())
    click.echo(f"installed {target}")
    click.echo(f"plugin home: {os.path.abspath(home)} ({why})")
    found = next((path for path, _ in kustomize_plugin.candidate_homes(os.environ) if os.path.isdir(path)), None)
    if found is None or os.path.abspath(found) != os.path.abspath(home):
        click.echo(f"note: kustomize finds this plugin home only with KUSTOMIZE_PLUGIN_HOME={os.path.abspath(home)}"
                   + (f" (it would look in {found} first)" if found else ""), err=True)
    return 0


def _precompile(package_root: str) -> None:
    """Write the package's bytecode now: kustomize starts the plugin once per build, and an
    installation that is read-only for the user (or PYTHONDONTWRITEBYTECODE) would otherwise
    compile every module on every call."""

    with contextlib.suppress(OSError):
        compileall.compile_dir(os.path.join(package_root, "kubeadm_audit"), quiet=2)
