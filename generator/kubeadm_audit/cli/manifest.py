"""``kubeadm-audit manifest apply|check``: the kube-apiserver static Pod on a control-plane node."""
from __future__ import annotations

import difflib
import os
import stat
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from kubeadm_audit import flags, volumes, yamlio
from kubeadm_audit.cli.options import BUNDLE_SHAPE, check_not_onto, config_options, resolve_for
from kubeadm_audit.cli.output import OUTPUT_OPTION, emit_json, report, warn
from kubeadm_audit.errors import ConflictError, ForceableConflict, InputError
from kubeadm_audit.pipeline import bundle, parts
from kubeadm_audit.targets import kubeadm
from kubeadm_audit.targets.kubeadm import manifest as manifest_mod

if TYPE_CHECKING:
    from kubeadm_audit.config import AuditConfig
    from kubeadm_audit.pipeline.bundle import Bundle
    from kubeadm_audit.targets.kubeadm.manifest import Manifest

#: The manifest is edited directly: no kubeadm API, route or patches directory is involved.
_OPTIONS: dict[str, Any] = dict(omit=(*BUNDLE_SHAPE, "patches_directory"),
                version_help="Target Kubernetes version [default: the version of FILE's kube-apiserver image, "
                             "else the newest known].")

#: Outside /etc/kubernetes/manifests: the kubelet runs every file there not starting with '.'.
DEFAULT_BACKUP_DIR = "/etc/kubernetes/kubeadm-audit/backups"


def _backup_dir(backup_dir: str, manifest_path: str) -> str:
    resolved = os.path.realpath(backup_dir)
    manifests = os.path.realpath(os.path.dirname(os.path.abspath(manifest_path)))
    if volumes.is_within(resolved, manifests):
        raise InputError(f"{backup_dir} is inside {manifests}: the kubelet would start the backup as a "
                         "second kube-apiserver Pod; choose a directory outside it", field="--backup-dir")
    return resolved


def _backup(directory: str, path: str, data: bytes) -> yamlio.FileChange:
    """The previous manifest, kept with its mode in a private directory outside the manifests directory."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return yamlio.FileChange(os.path.join(directory, f"{os.path.basename(path)}.{stamp}"), data,
                             yamlio.file_mode(path), dir_mode=0o700, field="--backup-dir")


def _node_mode(path: str) -> int | None:
    """The permission bits of an installed node file (None: absent)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _exposed_secret(path: str) -> str | None:
    """One line when the kubeconfig at ``path`` holds a key or token and is readable by group or others."""
    mode = _node_mode(path)
    return manifest_mod.exposed_secret(path, mode, yamlio.read_bytes(path) if mode is not None and mode & 0o077
                                       else None)


def _node_files(cfg: AuditConfig, built: Bundle) -> list[tuple[str, bytes, int]]:
    """(node path, generated content, mode) of the files kube-apiserver reads."""
    return manifest_mod.node_files(cfg.paths.policy_file, cfg.paths.webhook_config_file, built.files)


def _load(file: str, text: str, params: dict[str, Any],
          round_trip: bool = True) -> tuple[Manifest, AuditConfig, Bundle]:
    """The manifest, the AuditConfig (targeting the manifest's image version) and the bundle."""
    if len(text) > manifest_mod.MAX_MANIFEST_BYTES:
        raise InputError(f"larger than {manifest_mod.MAX_MANIFEST_BYTES >> 20} MiB: not a "
                         f"{manifest_mod.WHAT}", source=file)
    parsed = manifest_mod.load(text, file, round_trip)
    cfg = resolve_for(params, parsed.image_version, f"{file}: image")
    check_not_onto(cfg, params, file, "static Pod manifest")
    built = bundle.build(cfg, parts.read(cfg), kubeadm.render)
    return parsed, cfg, built


def _webhook_files(cfg: AuditConfig, parsed: Manifest) -> list[str]:
    """Node paths of the webhook kubeconfig: the configured one and the one the manifest's flag reads."""
    found = [cfg.paths.webhook_config_file] if cfg.webhook else []
    value = flags.effective(flags.parse_command(parsed.container["command"])).get("audit-webhook-config-file")
    if not isinstance(value, str) or not value:
        return found
    for mount in manifest_mod.pod_mounts(parsed.pod):
        if value == mount.mount_path or value.startswith(mount.mount_path.rstrip("/") + "/"):
            found.append(mount.host_path + value[len(mount.mount_path):])
    return list(dict.fromkeys(found))


@click.group()
def manifest() -> None:
    """Apply the audit configuration to, or check, the kube-apiserver static Pod manifest."""


@manifest.command()
@config_options(**_OPTIONS)
@click.argument("file", metavar="FILE", type=click.Path())
@click.option("--dry-run", is_flag=True, help="Print a unified diff; write nothing.")
@click.option("--backup-dir", default=DEFAULT_BACKUP_DIR, show_default=True, metavar="DIR", type=click.Path(),
              help="Where the previous manifest is kept (never inside the manifests directory).")
@click.option("--write-files", is_flag=True,
              help="Also install the policy and webhook kubeconfig at their node paths.")
@click.option("--hash-annotation", is_flag=True,
              help="Annotate the Pod (kubeadm-audit.dev/config-hash) with a hash of those files, "
                   "so changing them restarts kube-apiserver.")
@click.option("--force", is_flag=True, help="Replace audit flags and mounts someone else set to other values.")
@click.option("--remove", is_flag=True,
              help="Take out the flags, volumes and mounts kubeadm-audit added (its record says which), "
                   "nothing else.")
def apply(file: str, dry_run: bool, backup_dir: str, write_files: bool, hash_annotation: bool, force: bool,
          remove: bool, **params: Any) -> int:
    """Add or replace the audit flags, volumes and mounts in FILE (the recipe's step 3).

    Everything else in the manifest is kept; a second run changes nothing. The old file
    goes to --backup-dir, the new one replaces it atomically with the same mode.

    The policy and webhook kubeconfig must be on the node: install the bundle first
    ('make install'), or pass --write-files. Without them kube-apiserver would not
    start, so apply refuses (exit 1).

    \b
    Examples:
      kubeadm-audit manifest apply /etc/kubernetes/manifests/kube-apiserver.yaml --dry-run
      kubeadm-audit manifest apply /etc/kubernetes/manifests/kube-apiserver.yaml \\
          --config audit.yaml --write-files --hash-annotation

    What it sets it records in the Pod's kubeadm-audit.dev/managed annotation: a later
    apply with another configuration updates or removes its own values, and --remove
    takes out exactly those. A flag or mount someone else set to another value is a
    conflict (exit 1) unless --force.

    kubeadm upgrade rebuilds this manifest: also merge into the kubeadm-config ConfigMap.
    """
    backups = _backup_dir(backup_dir, file)
    # Under the manifest's lock, and all or nothing: the backup, the node files and the manifest.
    with yamlio.locked(file) as data:
        text = yamlio.decode(data, file)
        if remove:
            parsed, cfg, built = manifest_mod.load(text, file), None, None
        else:
            parsed, cfg, built = _load(file, text, params)
        node = [manifest_mod.NodeFile(path, content, mode, yamlio.read_bytes(path), _node_mode(path))
                for path, content, mode in (_node_files(cfg, built) if cfg and built else [])]
        try:
            plan = manifest_mod.plan_apply(parsed, text, node, built.parts.args if built else (),
                                           built.parts.mounts if built else (),
                                           cfg.kubernetes_version if cfg else None, remove=remove,
                                           write_files=write_files, hash_annotation=hash_annotation,
                                           force=force, dry_run=dry_run)
        except ForceableConflict as exc:
            raise ConflictError(f"{exc.message} (--force replaces them with the audit configuration's values)",
                                source=exc.source, field=exc.field) from None
        report([*plan.warnings, *(built.parts.warnings if built else ()), *plan.notes])
        changes, to_write, new_text = plan.changes, plan.writes, plan.text
        installed = {n.path: n.installed for n in node}
        if dry_run:
            click.echo("".join(difflib.unified_diff(text.splitlines(True), new_text.splitlines(True),
                                                    fromfile=file, tofile=f"{file} (audit)")), nl=False)
            for path, _content, mode in to_write:
                click.echo(f"would write {path} ({mode:04o})")
            if not changes and not to_write:
                click.echo(f"{file}: no change")
            return 0
        if not changes and not to_write:
            click.echo(f"{file}: no change")
            return 0
        backup = _backup(backups, file, data) if changes else None
        writes = ([backup] if backup else []) + [yamlio.FileChange(p, c, m) for p, c, m in to_write]
        if changes:
            writes.append(yamlio.FileChange(file, new_text))
        yamlio.commit(writes, expected={file: data, **{p: installed[p] for p, _c, _m in to_write}})
    for path, _content, file_perm in to_write:
        click.echo(f"wrote {path} ({file_perm:04o})")
    if to_write and not changes:
        warn("kube-apiserver reads these files only when it starts: pass --hash-annotation so the "
             "manifest changes and the kubelet restarts it")
    if changes:
        click.echo(f"{file}: {len(changes)} change(s); previous version kept at "
                   f"{backup.path if backup else '(none)'}")
        for change in changes:
            click.echo(f"  {change}")
        warn(manifest_mod.UPGRADE_NOTE)
    return 0


@manifest.command()
@config_options(**_OPTIONS)
@click.argument("file", metavar="FILE", type=click.Path())
@click.option("-o", "--output", "output", **OUTPUT_OPTION)
def check(file: str, output: str, **params: Any) -> int:
    """Exit 1 when FILE lacks the configured audit flags or mounts, or they would not work.

    The usual case after 'kubeadm upgrade': the manifest was rebuilt from a
    ClusterConfiguration without the audit settings. Checks the flags as
    kube-apiserver parses them, the mounts as the kubelet validates them, and (with
    the hash annotation) whether the audit files changed since kube-apiserver started.

    \b
    Examples:
      kubeadm-audit manifest check /etc/kubernetes/manifests/kube-apiserver.yaml
      kubeadm-audit manifest check /etc/kubernetes/manifests/kube-apiserver.yaml \\
          --config audit.yaml -o json
    """
    # A check only reads: refused unread when absurdly large, parsed without the round trip.
    text = yamlio.read_text(file, manifest_mod.MAX_MANIFEST_BYTES, manifest_mod.WHAT)
    parsed, cfg, built = _load(file, text, params, round_trip=False)
    report = manifest_mod.check(parsed.pod, built.parts.args, built.parts.mounts, cfg.kubernetes_version)
    for path in _webhook_files(cfg, parsed):
        exposed = _exposed_secret(path)
        if exposed:
            report.insecure.append(exposed)
    recorded = ((parsed.pod.get("metadata") or {}).get("annotations") or {}).get(manifest_mod.HASH_ANNOTATION)
    if recorded:
        node_files = _node_files(cfg, built)
        contents = [yamlio.read_bytes(path) for path, _c, _m in node_files]
        present = [c for c in contents if c is not None]
        if len(present) == len(contents) and manifest_mod.config_hash(present) != recorded:
            report.drift.append("the audit files changed since the manifest was applied: run "
                                "'kubeadm-audit manifest apply --hash-annotation' to restart kube-apiserver")
    if output == "json":
        emit_json({"file": file, "kubernetesVersion": str(cfg.kubernetes_version), **report.as_dict()})
    else:
        for message in report.warnings:
            warn(message)
        if report.ok:
            click.echo(f"{file}: ok: {len(built.parts.args)} audit flags and {len(built.parts.mounts)} mounts in place")
        else:
            click.echo(f"{file}: {len(report.drift)} drifted, {len(report.invalid)} invalid"
                       + (f", {len(report.insecure)} insecure" if report.insecure else ""))
            for line in report.drift:
                click.echo(f"  drift: {line}")
            for line in report.invalid:
                click.echo(f"  invalid: {line}")
            for line in report.insecure:
                click.echo(f"  insecure: {line}")
    return 0 if report.ok else 1
