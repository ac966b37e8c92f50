"""Command-line options that map onto AuditConfig fields (one table, shared by commands)."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from kubeadm_audit import config, inputs, presets, targets, versions
from kubeadm_audit.cli.output import warn
from kubeadm_audit.errors import InputError
from kubeadm_audit.targets.kubeadm.options import ROUTES as KUBEADM_ROUTES

if TYPE_CHECKING:
    from kubeadm_audit.config import AuditConfig

#: (click parameter name, option declaration(s), spec field path, click kwargs)
CONFIG_OPTIONS: tuple[Any, ...] = (
    ("preset", ("--preset",), "preset",
     dict(type=click.Choice(presets.NAMES), help="Policy and receiver conventions [default: recommended].")),
    ("recipe_only", ("--recipe-only",), "recipeOnly",
     dict(is_flag=True, default=None, help="zeron: emit the vendor recipe and nothing more.")),
    ("kubernetes_version", ("--kubernetes-version",), "kubernetesVersion",
     dict(metavar="vX.Y.Z", help=f"Pin kubernetesVersion (1.{versions.OLDEST_MINOR}-1.{versions.NEWEST_MINOR}) "
                                 f"[default: not pinned; rules target 1.{versions.NEWEST_MINOR}].")),
    ("kubeadm_api", ("--kubeadm-api",), "targets.kubeadm.api",
     dict(type=click.Choice(versions.KUBEADM_APIS), help="kubeadm config API [default: from the version].")),
    ("kubeadm_route", ("--kubeadm-route",), "targets.kubeadm.route",
     dict(type=click.Choice(KUBEADM_ROUTES),
          help="Carry the audit flags in ClusterConfiguration extraArgs, or only in patches.")),
    ("policy_file", ("--policy",), "policy.file",
     dict(metavar="FILE", help="A custom audit policy instead of the preset's.")),
    ("webhook_server", ("--webhook-server",), "webhook.server",
     dict(metavar="URL", help="Send events to this receiver (enables the webhook backend).")),
    ("ca_file", ("--ca-file",), "webhook.certificateAuthority",
     dict(metavar="PEM", help="CA that signed the receiver's certificate (embedded).")),
    ("client_certificate", ("--client-certificate",), "webhook.clientCertificate",
     dict(metavar="PEM", help="Client certificate for mTLS (embedded).")),
    ("client_key", ("--client-key",), "webhook.clientKey",
     dict(metavar="PEM", help="Client key for mTLS (embedded).")),
    ("insecure_skip_tls_verify", ("--insecure-skip-tls-verify",), "webhook.insecureSkipTLSVerify",
     dict(is_flag=True, default=None, help="Do not verify the receiver's certificate (warns).")),
    ("tls_server_name", ("--tls-server-name",), "webhook.tlsServerName",
     dict(metavar="NAME", help="Server name to verify when the URL holds an IP.")),
    ("webhook_token_file", ("--webhook-token-file",), "webhook.tokenFile",
     dict(metavar="PATH", help="Bearer token file on the nodes, for receivers that want a token "
                               "(kubeconfig tokenFile; mounted, re-read on rotation).")),
    ("webhook_mode", ("--webhook-mode",), "webhook.mode",
     dict(type=click.Choice(versions.AUDIT_MODES), help="--audit-webhook-mode.")),
    ("webhook_batch_max_size", ("--webhook-batch-max-size",), "webhook.batch.maxSize",
     dict(type=int, metavar="N", help="--audit-webhook-batch-max-size.")),
    ("webhook_batch_max_wait", ("--webhook-batch-max-wait",), "webhook.batch.maxWait",
     dict(metavar="DURATION", help="--audit-webhook-batch-max-wait (e.g. 30s).")),
    ("webhook_batch_buffer_size", ("--webhook-batch-buffer-size",), "webhook.batch.bufferSize",
     dict(type=int, metavar="N", help="--audit-webhook-batch-buffer-size.")),
    ("webhook_throttle_enable", ("--webhook-throttle/--no-webhook-throttle",), "webhook.batch.throttle.enable",
     dict(default=None, help="--audit-webhook-batch-throttle-enable.")),
    ("webhook_throttle_qps", ("--webhook-throttle-qps",), "webhook.batch.throttle.qps",
     dict(type=float, metavar="QPS", help="--audit-webhook-batch-throttle-qps (batches/s).")),
    ("webhook_throttle_burst", ("--webhook-throttle-burst",), "webhook.batch.throttle.burst",
     dict(type=int, metavar="N", help="--audit-webhook-batch-throttle-burst.")),
    ("webhook_truncate", ("--webhook-truncate/--no-webhook-truncate",), "webhook.truncate.enabled",
     dict(default=None, help="--audit-webhook-truncate-enabled.")),
    ("webhook_truncate_max_event_size", ("--webhook-truncate-max-event-size",), "webhook.truncate.maxEventSize",
     dict(type=int, metavar="BYTES", help="--audit-webhook-truncate-max-event-size.")),
    ("webhook_truncate_max_batch_size", ("--webhook-truncate-max-batch-size",), "webhook.truncate.maxBatchSize",
     dict(type=int, metavar="BYTES", help="--audit-webhook-truncate-max-batch-size.")),
    ("webhook_initial_backoff", ("--webhook-initial-backoff",), "webhook.initialBackoff",
     dict(metavar="DURATION", help="--audit-webhook-initial-backoff.")),
    ("webhook_version", ("--webhook-version",), "webhook.version",
     dict(metavar="GROUP/VERSION", help="--audit-webhook-version.")),
    ("log_path", ("--log-path",), "log.path",
     dict(metavar="PATH", help="--audit-log-path ('-' is stdout).")),
    ("log_maxage", ("--log-maxage",), "log.maxAge", dict(type=int, metavar="DAYS", help="--audit-log-maxage.")),
    ("log_maxbackup", ("--log-maxbackup",), "log.maxBackup",
     dict(type=int, metavar="N", help="--audit-log-maxbackup.")),
    ("log_maxsize", ("--log-maxsize",), "log.maxSize", dict(type=int, metavar="MB", help="--audit-log-maxsize.")),
    ("log_compress", ("--log-compress/--no-log-compress",), "log.compress",
     dict(default=None, help="--audit-log-compress.")),
    ("log_format", ("--log-format",), "log.format",
     dict(type=click.Choice(versions.LOG_FORMATS), help="--audit-log-format.")),
    ("policy_path", ("--policy-path",), "paths.policyFile",
     dict(metavar="PATH", help="Where the policy lives on the nodes.")),
    ("webhook_config_path", ("--webhook-config-path",), "paths.webhookConfigFile",
     dict(metavar="PATH", help="Where the webhook kubeconfig lives on the nodes.")),
    ("patches_directory", ("--patches-dir",), "targets.kubeadm.patchesDirectory",
     dict(metavar="PATH", help="Where the kubeadm patches live on the nodes.")),
)
_FILE_PARAMS = ("policy_file", "ca_file", "client_certificate", "client_key")


#: The options that only shape a kubeadm bundle (API version, where the flags are carried):
#: commands editing a file that already has its own shape leave them out of their --help.
BUNDLE_SHAPE = ("kubeadm_api", "kubeadm_route")


def config_options(func: Callable[..., Any] | None = None, *, omit: tuple[str, ...] = (),
                   version_help: str | None = None) -> Callable[..., Any]:
    """Add --config and every AuditConfig option to a command.

    ``omit`` leaves out options that would do nothing in that command (so --help lists only
    what works there); ``version_help`` says where that command's target version comes from.
    """
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for name, decls, _path, kwargs in reversed(CONFIG_OPTIONS):
            if name in omit:
                continue
            if name == "kubernetes_version" and version_help:
                kwargs = {**kwargs, "help": version_help}
            if name in _FILE_PARAMS:
                kwargs = {**kwargs, "type": click.Path()}
            func = click.option(*decls, name, **kwargs)(func)
        func = click.option("--no-log", "no_log", is_flag=True,
                            help="No log backend (webhook only; fails CIS).")(func)
        func = click.option("--bundle", "bundle", metavar="DIR", type=click.Path(),
                            help="A bundle written by 'generate' (its audit-config.yaml, policy and "
                                 "webhook kubeconfig) instead of --config.")(func)
        func = click.option("--config", "config_file", metavar="FILE", type=click.Path(),
                            help="An AuditConfig document (options override it).")(func)
        return func

    return decorate(func) if func is not None else decorate


def overrides(params: dict[str, Any]) -> tuple[Any, ...]:
    """(override spec, origins) from the parsed options; relative files resolve against the cwd."""
    spec: dict[str, Any] = {}
    origins: dict[str, Any] = {}
    option_of = {name: decls[0].split("/")[0] for name, decls, _p, _k in CONFIG_OPTIONS}
    for name, _decls, path, _kwargs in CONFIG_OPTIONS:
        value = params.get(name)
        if value is None:
            continue
        if name in _FILE_PARAMS:
            value = os.path.abspath(value)
        _set(spec, path.split("."), value)
        origins[path] = option_of[name]
    if params.get("no_log"):
        spec["log"] = None
        origins["log"] = "--no-log"
    return spec, origins


def _set(target: dict[str, Any], keys: list[Any], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


def resolve(params: dict[str, Any], target_version: str | None = None,
            target: str | None = None) -> AuditConfig:
    """The AuditConfig from --config or --bundle, and the options, for the distribution
    ``target`` (else the one --target or the AuditConfig's ``target`` names, else kubeadm)."""

    directory = params.get("bundle")
    if directory:
        option_of = {name: decls[0] for name, decls, _p, _k in CONFIG_OPTIONS}
        clashing = [option_of.get(name, "--config") for name in ("config_file", *_FILE_PARAMS) if params.get(name)]
        if clashing:
            raise InputError(f"the bundle brings its own configuration, policy and certificates: drop "
                             f"{', '.join(clashing)} (or regenerate the bundle)", field="--bundle")
        user_spec = inputs.read_bundle_config(directory)
        source: str | None = os.path.join(directory, inputs.CONFIG_FILE)
    else:
        source = params.get("config_file") or None
        user_spec = inputs.read_config_file(source) if source else {}
    spec, origins = overrides(params)
    name = target or params.get("target") or user_spec.get("target") or config.DEFAULT_TARGET
    try:
        hooks = targets.hooks(name)
    except InputError as exc:   # only an AuditConfig names an unknown one: --target has choices
        raise InputError(exc.message, source=source, field="spec.target") from None
    cfg = config.resolve(user_spec, spec, origins, source=source, target_version=target_version, target=hooks)
    return cfg._replace(bundle=os.path.abspath(directory)) if directory else cfg


def resolve_for(params: dict[str, Any], found_version: str | None, where: str) -> AuditConfig:
    """The AuditConfig, targeting ``found_version`` (read from the user's file) unless
    --kubernetes-version or the AuditConfig names a version."""

    if found_version:
        try:
            versions.parse_found(found_version)
        except InputError as exc:
            warn(f"{where}: {exc.message}; validating for Kubernetes 1.{versions.NEWEST_MINOR}")
            found_version = None
    return resolve(params, found_version, target="kubeadm")


def check_not_onto(cfg: AuditConfig, params: dict[str, Any], file: str, what: str) -> None:
    """Refuse a configuration whose node files would land on ``file`` (the file being edited)."""
    option_of = {f"spec.{path}": decls[0].split("/")[0] for name, decls, path, _k in CONFIG_OPTIONS
                 if params.get(name) is not None}
    try:
        for path in dict.fromkeys((os.path.abspath(file), os.path.realpath(file))):
            config.check_against(cfg, path, f"{what} {file}")
    except InputError as exc:
        if exc.field in option_of:
            raise InputError(exc.message, field=option_of[exc.field]) from None
        raise
