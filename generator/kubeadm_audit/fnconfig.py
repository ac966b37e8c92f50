"""The function config: an AuditConfig document, or kpt's ``-- key=value`` ConfigMap.

The AuditConfig ``spec`` is the audit configuration, checked as strictly as
``--config``. How the function behaves in a pipeline is not audit configuration,
so it is set with annotations on the AuditConfig (a ConfigMap uses plain keys):

==================================  ==================  =============================================
annotation                          ConfigMap key       meaning
==================================  ==================  =============================================
``kubeadm-audit.dev/mode``          ``mode``            ``inject`` (default), ``generate``, or
                                                        ``remove``: take out what kubeadm-audit set
                                                        (its ownership records say what)
``kubeadm-audit.dev/force``         ``force``           ``"true"``: replace conflicting audit flags,
                                                        volumes and files instead of failing
``kubeadm-audit.dev/allow-external- ``allow-external-   ``"true"``: read files named by the spec
files``                             files``             (``webhook.clientKey``, ...) from outside the
                                                        function config's directory
==================================  ==================  =============================================

A function runs on whatever package it is given, and what it reads it may embed in
its output (a client key goes into a Secret). So the files the spec names must lie
inside the function config's directory (after resolving symlinks; absolute paths and
``..`` that leave it are refused) unless the AuditConfig opts in explicitly.

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
from collections.abc import Mapping

from kubeadm_audit import config as config_mod
from kubeadm_audit import yamlio
from kubeadm_audit.errors import InputError
from kubeadm_audit.transform import FORCE_ANNOTATION, MODES, Settings
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any

ANNOTATION_PREFIX = "kubeadm-audit.dev/"
MODE_ANNOTATION = ANNOTATION_PREFIX + "mode"
EXTERNAL_FILES_ANNOTATION = ANNOTATION_PREFIX + "allow-external-files"
ANNOTATIONS = (MODE_ANNOTATION, FORCE_ANNOTATION, EXTERNAL_FILES_ANNOTATION)
#: ConfigMap keys that are settings, not spec fields.
SETTING_KEYS = ("mode", "force", "name", "namespace", "allow-external-files")
PACKAGE_PATH = "internal.config.kubernetes.io/package-path"
CONFIG_PATHS = ("internal.config.kubernetes.io/path", "config.kubernetes.io/path")


class FunctionConfig(NamedTuple):
    spec: dict[str, Any]
    settings: Settings
    source: str
    base_dir: str | None      # where relative file paths point; None: the caller decides


def read(document: Any, source: str) -> FunctionConfig:
    """Read an AuditConfig or a ConfigMap function config; InputError names the field."""
    if not isinstance(document, Mapping):
        raise InputError("no function config: give an AuditConfig (kubeadm-audit.dev/v1alpha1) "
                         "with --fn-config, a Kptfile configPath, or kpt's -- key=value form", source=source)
    meta = yamlio.mapping_in(document, "metadata")
    base = _package_dir(meta)
    if document.get("kind") == "ConfigMap" and document.get("apiVersion") == "v1":
        return _from_configmap(document, meta, source, base)
    spec = config_mod.read_document(document, source)
    annotations = yamlio.mapping_in(meta, "annotations")
    unknown = [key for key in annotations if str(key).startswith(ANNOTATION_PREFIX) and key not in ANNOTATIONS]
    if unknown:
        raise InputError(f"unknown annotation (known: {', '.join(ANNOTATIONS)})",
                         source=source, field=f"metadata.annotations.{unknown[0]}")
    settings = _settings(annotations.get(MODE_ANNOTATION), annotations.get(FORCE_ANNOTATION),
                         annotations.get(EXTERNAL_FILES_ANNOTATION), meta.get("name"), meta.get("namespace"),
                         source, *(f"metadata.annotations.{key}" for key in ANNOTATIONS))
    return FunctionConfig(dict(spec), settings, source, base)


def _package_dir(meta: Mapping[str, Any]) -> str | None:
    """kpt fn render: the config's directory, from the annotations kpt adds."""
    annotations = yamlio.mapping_in(meta, "annotations")
    package = annotations.get(PACKAGE_PATH)
    if not package:
        return None
    path = next((annotations[key] for key in CONFIG_PATHS if annotations.get(key)), "")
    return posixpath.normpath(posixpath.join(str(package), posixpath.dirname(str(path))))


def _settings(mode: Any, force: Any, external: Any, name: Any, namespace: Any, source: str,
              mode_field: str, force_field: str, external_field: str) -> Settings:
    mode_text = "inject" if mode in (None, "") else str(mode)
    if mode_text not in MODES:
        raise InputError(f"must be one of {', '.join(MODES)} (got {mode_text!r})", source=source, field=mode_field)
    settings = Settings(mode=mode_text, force=_flag(force, source, force_field),
                        allow_external_files=_flag(external, source, external_field),
                        name=str(name or "kubeadm-audit"), namespace=str(namespace) if namespace else None)
    if mode_text == "generate":
        _check_secret_names(settings, source, mode_field)
    return settings


def _flag(value: Any, source: str, field: str) -> bool:
    if value in (None, "", False, "false"):
        return False
    if value in (True, "true"):
        return True
    raise InputError(f"must be \"true\" or \"false\" (got {value!r})", source=source, field=field)


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


def _from_configmap(document: Mapping[str, Any], meta: Mapping[str, Any], source: str,
                    base: str | None) -> FunctionConfig:
    data = document.get("data") or {}
    if not isinstance(data, Mapping):
        raise InputError("expected a mapping", source=source, field="data")
    spec: dict[str, Any] = {}
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
    settings = _settings(data.get("mode"), data.get("force"), data.get("allow-external-files"), data.get("name"),
                         data.get("namespace"), source, "data.mode", "data.force", "data.allow-external-files")
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


def file_references(spec: Mapping[str, Any], base: str, allow_external: bool, source: str) -> dict[str, Any]:
    """``spec`` with its file paths made absolute against ``base``, each checked to stay inside it.

    ``base`` is the function config's directory. A path that leaves it -- absolute,
    through ``..``, or through a symlink -- is refused (InputError naming the field)
    unless ``allow_external``: the function would otherwise read, and embed in its
    output, whatever file the package points at (``webhook.clientKey: ../host-secrets/...``).
    """
    import os

    from kubeadm_audit import inputs, volumes

    resolved = inputs.absolutize(spec, base)
    if allow_external:
        return resolved
    root = os.path.realpath(base)
    for section, key in inputs.FILE_FIELDS:
        given = (spec.get(section) or {}).get(key) if isinstance(spec.get(section), Mapping) else None
        if not isinstance(given, str) or not given:
            continue
        real = os.path.realpath(resolved[section][key])
        if not volumes.is_within(real, root):
            how = "an absolute path" if os.path.isabs(given) else (
                "through a symlink" if volumes.is_within(os.path.normpath(resolved[section][key]), root)
                else "through '..'")
            raise InputError(f"{given!r} is outside the function config's directory {root} ({how}): a function "
                             "reads files only from its own package, since what it reads may end up in its output; "
                             "move the file next to the function config, or opt in with the annotation "
                             f"{EXTERNAL_FILES_ANNOTATION}: \"true\"", source=source, field=f"spec.{section}.{key}")
    return resolved
