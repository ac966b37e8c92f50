"""``kubeadm-audit kubeadm-config merge``: the audit flags and volumes into an existing config."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kubeadm_audit import versions, yamlio
from kubeadm_audit.cli.options import BUNDLE_SHAPE, config_options, resolve_for
from kubeadm_audit.cli.output import report, warn
from kubeadm_audit.errors import ConflictError, ForceableConflict, InputError
from kubeadm_audit.pipeline import parts as pipeline_parts
from kubeadm_audit.targets.kubeadm import merge as merge_mod
from kubeadm_audit.targets.kubeadm.options import of as kubeadm_options

if TYPE_CHECKING:
    from kubeadm_audit.changes import Change


@click.group("kubeadm-config")
def kubeadm_config() -> None:
    """Merge the audit configuration into kubeadm configuration you already have."""


@kubeadm_config.command()
@config_options(omit=BUNDLE_SHAPE,
                version_help="Target Kubernetes version [default: FILE's kubernetesVersion, else the newest known].")
@click.argument("file", metavar="FILE", type=click.Path())
@click.option("--in-place", is_flag=True, help="Rewrite FILE instead of printing the result.")
@click.option("--force", is_flag=True, help="Replace audit flags and volumes someone else set to other values.")
@click.option("--remove", is_flag=True,
              help="Take out what kubeadm-audit added (its ownership record says what), nothing else.")
def merge(file: str, in_place: bool, force: bool, remove: bool, **params: Any) -> int:
    """Add the audit flags and volumes to FILE's ClusterConfiguration.

    FILE is a kubeadm config (any documents: Init/Cluster/Join/Upgrade configuration,
    KubeletConfiguration, ...) or the kubeadm-config ConfigMap as kubectl prints it
    ('-' reads standard input). Comments, order, quoting and everything else are kept;
    a second run changes nothing. The file's kubeadm API (v1beta3 map, v1beta4 list)
    decides the extraArgs shape; its kubernetesVersion is the validation target unless
    --kubernetes-version is given.

    \b
    Examples:
      kubeadm-audit kubeadm-config merge kubeadm.yaml --preset recommended --in-place
      kubectl -n kube-system get cm kubeadm-config -o yaml > cm.yaml
      kubeadm-audit kubeadm-config merge cm.yaml --config audit.yaml --in-place
      kubectl replace -f cm.yaml

    What it sets it records (the annotation kubeadm-audit.dev/managed on the ConfigMap,
    or a '# kubeadm-audit.dev/managed: ...' comment line at the top of the
    ClusterConfiguration document), so a later merge with another configuration
    updates or removes its own values, and --remove takes out exactly those: merging
    and then removing gives the file back as it was.

    Exit 1 (nothing written) when an audit flag or volume someone else set in FILE has
    another value (--force replaces it) or the merged flags would stop kube-apiserver.
    """
    if in_place and file == "-":
        raise click.UsageError("--in-place needs a file, not standard input")
    if not in_place:
        text = yamlio.read_text(file)
        result, changes = _merged(file, text, force, remove, params)
        click.echo(result, nl=False)
        for change in changes:
            click.echo(f"merged: {change}", err=True)
        return 0
    # Read, merge and replace under the file's lock: two runs never lose each other's edit.
    with yamlio.locked(file) as data:
        result, changes = _merged(file, yamlio.decode(data, file), force, remove, params)
        if changes:
            yamlio.commit([yamlio.FileChange(file, result)], expected={file: data})
    click.echo(f"{file}: " + ("no change" if not changes else f"{len(changes)} change(s)"))
    for change in changes:
        click.echo(f"  {change}")
    return 0


def _merged(file: str, text: str, force: bool, remove: bool, params: dict[str, Any]) -> tuple[str, list[Change]]:
    """(FILE's text with the audit configuration merged in -- or, with ``remove``, what
    kubeadm-audit added taken out -- and the changes made); warns on the way."""

    target = merge_mod.load_target(text, file)
    if remove:
        changes = merge_mod.merge_target(target, (), (), None)
        report(target.notes)
        return (merge_mod.render(target) if changes else text), changes
    cfg = resolve_for(params, target.kubernetes_version, f"{file}: kubernetesVersion")
    try:
        versions.kubeadm_api(cfg.kubernetes_version, target.api)
    except InputError as exc:
        warn(f"{file}: {exc.message}")
    parts = pipeline_parts.read(cfg)
    try:
        changes = merge_mod.merge_target(target, parts.args, parts.mounts, cfg.kubernetes_version, force,
                                         kubeadm_options(cfg).patches_directory)
    except ForceableConflict as exc:
        raise ConflictError(f"{exc.message} (--force replaces them with the audit configuration's values)",
                            source=exc.source, field=exc.field) from None
    report([*parts.warnings, *target.notes])       # once each: merge checks the same flags again
    return (merge_mod.render(target) if changes else text), changes
