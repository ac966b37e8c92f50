"""The function config: an AuditConfig document, or kpt's ``-- key=value`` ConfigMap.

The AuditConfig ``spec`` is the audit configuration, checked as strictly as
``--config``. How the function behaves in a pipeline is not audit configuration,
so it is set with annotations on the AuditConfig (a ConfigMap uses plain keys):

==================================  ==================  =============================================
annotation                          ConfigMap key       meaning
==================================  ==================  =============================================
``kubeadm-audit.dev/mode``          ``mode``            ``inject`` (default) or ``generate``
``kubeadm-audit.dev/force``         ``force``           ``"true"``: replace conflicting audit flags,
                                                        volumes and files instead of failing
==================================  ==================  =============================================

In generate mode the Secret takes the function config's ``metadata.name`` and
``metadata.namespace`` (ConfigMap keys ``name`` and ``namespace``).

ConfigMap keys are spec field paths (``preset``, ``webhook.server``,
``log.maxAge``; a leading ``spec.`` is allowed). Values are read as YAML 1.2
scalars -- ``30`` is a number, ``true``/``false`` booleans, ``null`` removes a
section (``log=null``) -- and a value starting with ``[`` or ``{`` as YAML
(``policy.rules=[...]``); everything else (``0600``, ``v1.31.0``, URLs) is a string.
"""
from __future__ import annotations

import posixpath
from typing import Any, Mapping, NamedTuple, Optional

from kubeadm_audit import config as config_mod
from kubeadm_audit.errors import InputError
from kubeadm_audit.transform import MODES, Settings

ANNOTATION_PREFIX = "kubeadm-audit.dev/"
MODE_ANNOTATION = ANNOTATION_PREFIX + "mode"
FORCE_ANNOTATION = ANNOTATION_PREFIX + "force"
#: ConfigMap keys that are settings, not spec fields.
SETTING_KEYS = ("mode", "force", "name", "namespace")
PACKAGE_PATH = "internal.config.kubernetes.io/package-path"
CONFIG_PATHS = ("internal.config.kubernetes.io/path", "config.kubernetes.io/path")


class FunctionConfig(NamedTuple):
    spec: dict
    settings: Settings
    source: str
    base_dir: Optional[str]      # where relative file paths point; None: the caller decides


def read(document: Any, source: str) -> FunctionConfig:
    """Read an AuditConfig or a ConfigMap function config; InputError names the field."""
    if not isinstance(document, Mapping):
        raise InputError("no function config: give an AuditConfig (kubeadm-audit.dev/v1alpha1) "
                         "with --fn-config, a Kptfile configPath, or kpt's -- key=value form", source=source)
    meta = document.get("metadata") if isinstance(document.get("metadata"), Mapping) else {}
    base = _package_dir(meta)
    if document.get("kind") == "ConfigMap" and document.get("apiVersion") == "v1":
        return _from_configmap(document, meta, source, base)
    spec = config_mod.read_document(document, source)
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    unknown = [key for key in annotations if str(key).startswith(ANNOTATION_PREFIX)
               and key not in (MODE_ANNOTATION, FORCE_ANNOTATION)]
    if unknown:
        raise InputError(f"unknown annotation (known: {MODE_ANNOTATION}, {FORCE_ANNOTATION})",
                         source=source, field=f"metadata.annotations.{unknown[0]}")
    settings = _settings(annotations.get(MODE_ANNOTATION), annotations.get(FORCE_ANNOTATION),
                         meta.get("name"), meta.get("namespace"), source,
                         f"metadata.annotations.{MODE_ANNOTATION}", f"metadata.annotations.{FORCE_ANNOTATION}")
    return FunctionConfig(dict(spec), settings, source, base)


def _package_dir(meta: Mapping) -> Optional[str]:
    """kpt fn render: the config's directory, from the annotations kpt adds."""
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    package = annotations.get(PACKAGE_PATH)
    if not package:
        return None
    path = next((annotations[key] for key in CONFIG_PATHS if annotations.get(key)), "")
    return posixpath.normpath(posixpath.join(str(package), posixpath.dirname(str(path))))


def _settings(mode: Any, force: Any, name: Any, namespace: Any, source: str,
              mode_field: str, force_field: str) -> Settings:
    mode_text = "inject" if mode in (None, "") else str(mode)
    if mode_text not in MODES:
        raise InputError(f"must be one of {', '.join(MODES)} (got {mode_text!r})", source=source, field=mode_field)
    if force in (None, "", False, "false"):
        forced = False
    elif force in (True, "true"):
        forced = True
    else:
        raise InputError(f"must be \"true\" or \"false\" (got {force!r})", source=source, field=force_field)
    settings = Settings(mode=mode_text, force=forced, name=str(name or "kubeadm-audit"),
                        namespace=str(namespace) if namespace else None)
    if mode_text == "generate":
        _check_secret_names(settings, source, mode_field)
    return settings


def _check_secret_names(settings: Settings, source: str, mode_field: str) -> None:
    """Generate mode names a Secret after the function config: the API server would refuse a
    name that is not a DNS-1123 subdomain, or a namespace that is not a DNS-1123 label."""
    from kubeadm_audit.pod import is_dns1123_label, is_dns1123_subdomain

    where = "data." if mode_field.startswith("data.") else "metadata."
    if not is_dns1123_subdomain(settings.name):
        raise InputError(f"{settings.name!r} names the generated Secret but is not a DNS-1123 subdomain "
                         "(lower-case letters, digits, '-' and '.', at most 253)", source=source,
                         field=f"{where}name")
    if settings.namespace is not None and not is_dns1123_label(settings.namespace):
        raise InputError(f"{settings.namespace!r} is not a valid namespace (a DNS-1123 label: lower-case "
                         "letters, digits and '-', at most 63)", source=source, field=f"{where}namespace")


def _from_configmap(document: Mapping, meta: Mapping, source: str, base: Optional[str]) -> FunctionConfig:
    data = document.get("data") or {}
    if not isinstance(data, Mapping):
        raise InputError("expected a mapping", source=source, field="data")
    spec: dict = {}
    for key, raw in data.items():
        key = str(key)
        if key in SETTING_KEYS:
            continue
        path = key[len("spec."):] if key.startswith("spec.") else key
        parts = path.split(".")
        if not all(parts):
            raise InputError("not a spec field path like webhook.server", source=source, field=f"data.{key}")
        node = spec
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InputError(f"{part} is set both as a value and as a section", source=source,
                                 field=f"data.{key}")
            node = child
        node[parts[-1]] = _value(raw, source, f"data.{key}")
    settings = _settings(data.get("mode"), data.get("force"), data.get("name"), data.get("namespace"),
                         source, "data.mode", "data.force")
    return FunctionConfig(spec, settings, f"{source} (ConfigMap data; keys are spec fields)", base)


def _value(raw: Any, source: str, field: str) -> Any:
    """A ConfigMap value as the spec field would hold it: YAML 1.2 scalars, flow collections, else text."""
    if not isinstance(raw, str):
        return raw
    from kubeadm_audit import yamlio

    collection = raw.lstrip().startswith(("[", "{"))
    try:
        value = yamlio.load(raw, source=f"{source}: {field}")
    except InputError as exc:
        if collection:
            raise InputError(exc.message, source=source, field=field) from None
        return raw
    if collection or (not isinstance(value, str) and (value is None or isinstance(value, (bool, int, float)))):
        return value
    return raw
