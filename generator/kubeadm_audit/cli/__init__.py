"""Command-line entry point.

``main`` is the only place that turns errors into exit codes: 0 success, 1 a
check found problems, 2 usage or input errors. Commands are imported lazily so
``--help`` and the plugin path stay fast; ``krm`` skips click altogether.

One module per command group, each thin: options in, the domain's functions, output out.
May import anything in the package; nothing outside cli imports it.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from kubeadm_audit.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:                 # click is imported only when a command needs it
    import click

#: command name -> (module, attribute). A command whose module is absent is not listed.
COMMANDS = {
    "generate": ("kubeadm_audit.cli.generate", "generate"),
    "policy": ("kubeadm_audit.cli.policy", "policy"),
    "flags": ("kubeadm_audit.cli.flags", "flags"),
    "kubeadm-config": ("kubeadm_audit.cli.kubeadm_config", "kubeadm_config"),
    "manifest": ("kubeadm_audit.cli.manifest", "manifest"),
    "plugin": ("kubeadm_audit.cli.plugin", "plugin"),
    "krm": ("kubeadm_audit.cli.krm", "krm"),
    "webhook": ("kubeadm_audit.cli.webhook", "webhook"),
}

PROG = "kubeadm-audit"


def _build_group() -> click.Group:
    import click

    from kubeadm_audit import __version__
    from kubeadm_audit.cli.lazy import LazyGroup

    @click.group(cls=LazyGroup, commands=COMMANDS,
                 context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
    @click.version_option(__version__, prog_name=PROG)
    def cli() -> None:
        """Generate, inject and check kube-apiserver audit configuration for kubeadm.

        \b
        Quick start:
          kubeadm-audit generate --preset recommended --out audit/
          kubeadm-audit policy lint audit/audit-policy.yaml
          kubeadm-audit manifest check /etc/kubernetes/manifests/kube-apiserver.yaml

        Exit codes: 0 success, 1 the check found problems, 2 usage or input error.

        \b
        Shell completion (bash, zsh, fish):
          eval "$(_KUBEADM_AUDIT_COMPLETE=bash_source kubeadm-audit)"
        """

    return cli


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["krm"]:
        from kubeadm_audit import krm

        if argv is None:          # the process's own entry (console script, python -m): end it
            krm.run(args[1:])     # without the interpreter's teardown, as the installed plugin does
        return krm.main(args[1:])

    import click

    from kubeadm_audit.errors import KubeadmAuditError

    cli = _build_group()
    try:
        result = cli.main(args, prog_name=PROG, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 2
    except click.ClickException as exc:
        ctx: click.Context | None = getattr(exc, "ctx", None)     # usage errors carry the command
        where = f"{ctx.command_path}: " if ctx else f"{PROG}: "
        hint = f" (see '{ctx.command_path} --help')" if ctx else ""
        from kubeadm_audit.cli.output import one_line

        click.echo(one_line(f"{where}error: {exc.format_message()}{hint}"), err=True)
        return 2
    except KubeadmAuditError as exc:
        from kubeadm_audit.cli.output import one_line

        click.echo(f"{PROG}: error: {one_line(str(exc))}", err=True)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    return result if isinstance(result, int) else 0
