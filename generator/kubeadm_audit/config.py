"""The AuditConfig model (kubeadm-audit.dev/v1alpha1), read strictly.

Resolution is one deep merge of plain data -- built-in defaults, the target's default
node paths, the preset's ``spec``, the user's AuditConfig ``spec``, then command-line
options -- followed by a single strict parse, so every value is checked the same way
whatever its origin, and errors name the field (or the option it came from).

The model describes audit itself. What only one distribution needs lives under
``spec.targets.<name>`` and is read by that target (``TargetHooks``, handed in by the
caller: this module imports no target).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping

from kubeadm_audit import presets as presets_mod
from kubeadm_audit import versions
from kubeadm_audit.errors import InputError
from kubeadm_audit.gotypes import FLOAT32_MAX, INT64_MAX, INT64_MIN, parse_go_duration
from kubeadm_audit.presets import deep_merge
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple
from kubeadm_audit.volumes import is_within, normalise_node_path
from kubeadm_audit.webhook import redact_url
from kubeadm_audit.yamlio import PlainStr, kind_of

if TYPE_CHECKING:
    from typing import Any, Callable

API_VERSION = "kubeadm-audit.dev/v1alpha1"
KIND = "AuditConfig"

#: The target a configuration is rendered for when none is named (``spec.target``, --target).
DEFAULT_TARGET = "kubeadm"

#: Built-in defaults, below every preset. ``None`` means "kube-apiserver's own default".
DEFAULT_SPEC: Mapping[str, Any] = {
    "preset": "recommended",
    "paths": {
        "policyFile": "/etc/kubernetes/audit/audit-policy.yaml",
        "webhookConfigFile": "/etc/kubernetes/audit/audit-webhook.yaml",
    },
    "log": {"path": "/var/log/kubernetes/audit/audit.log"},   # presets add rotation (presets/base.yaml)
}

#: v1alpha1 spellings of kubeadm target options (spec path -> option under spec.targets.kubeadm).
#: Read wherever they appear; written back in this spelling too, so a bundle's audit-config.yaml
#: stays what earlier releases wrote and read.
LEGACY_TARGET_FIELDS: Mapping[str, tuple[str, str]] = {
    "kubeadmApi": ("kubeadm", "api"),
    "kubeadmRoute": ("kubeadm", "route"),
    "paths.patchesDirectory": ("kubeadm", "patchesDirectory"),
}

DEFAULT_KUBECONFIG_NAMES = {"cluster": "audit-webhook", "context": "audit-webhook",
                            "user": "kube-apiserver"}



class Throttle(NamedTuple):
    enable: bool | None = None
    qps: float | None = None
    burst: int | None = None


class Batch(NamedTuple):
    max_size: int | None = None
    max_wait: str | None = None
    buffer_size: int | None = None
    throttle: Throttle = Throttle()


class Truncate(NamedTuple):
    enabled: bool | None = None
    max_event_size: int | None = None
    max_batch_size: int | None = None


class KubeconfigNames(NamedTuple):
    cluster: str
    context: str
    user: str


class Webhook(NamedTuple):
    server: str
    certificate_authority: str | None
    client_certificate: str | None
    client_key: str | None
    insecure_skip_tls_verify: bool
    tls_server_name: str | None
    mode: str | None
    batch: Batch
    truncate: Truncate
    initial_backoff: str | None
    version: str | None
    kubeconfig_names: KubeconfigNames
    token: str | None = None        # bearer token, embedded in the kubeconfig (a secret)
    token_file: str | None = None   # node path of a bearer token file kube-apiserver reads


class Log(NamedTuple):
    path: str
    max_age: int | None
    max_backup: int | None
    max_size: int | None
    compress: bool | None
    format: str | None


class Paths(NamedTuple):
    policy_file: str
    webhook_config_file: str


class PolicySource(NamedTuple):
    file: str | None
    rules: tuple[Any, ...]


class TargetHooks(NamedTuple):
    """What resolution takes from a target (see ``targets``): built by ``targets.hooks``."""

    name: str
    default_paths: Mapping[str, str] = {}
    parse_options: Callable[[Mapping[str, Any], OptionFields, versions.KubeVersion], Any] | None = None
    options_document: Callable[[Any, bool], dict[str, Any]] | None = None
    node_files: Callable[[Any], list[tuple[str, str]]] | None = None
    known_targets: tuple[str, ...] = ()   # every target name spec.targets may hold


class AuditConfig(NamedTuple):
    kubernetes_version: versions.KubeVersion
    preset: presets_mod.Preset
    recipe_only: bool
    policy: PolicySource
    webhook: Webhook | None
    log: Log | None
    paths: Paths
    source: str | None = None   # the AuditConfig file, for error messages
    version_pinned: bool = False   # kubernetesVersion given: written into kubeadm's config
    bundle: str | None = None   # read from a bundle: its files hold the policy and TLS material
    target: str = DEFAULT_TARGET   # the distribution it is rendered for
    options: Any = None            # that target's options, as its parse_options read them
    targets: Mapping[str, Any] = {}   # spec.targets as given (every target's, for round trips)
    hooks: TargetHooks | None = None   # the target's hooks it was resolved with
    target_files: tuple[tuple[str, str], ...] = ()   # (field, node path) the target adds


# --- strict field parsing ----------------------------------------------------------------

class _Reader:
    """Reads a nested mapping strictly, reporting paths (or the option that set them)."""

    def __init__(self, source: str | None, origins: Mapping[str, str]) -> None:
        self.source = source
        self.origins = origins
        self.aliases: dict[str, str] = {}   # field path -> the (older) spelling the user wrote

    def shown(self, path: str) -> str:
        """``path`` as the user gave it: the option, or the field's spelling in their file."""
        return self.origins.get(path) or self.aliases.get(path, path)

    def fail(self, path: str, message: str) -> InputError:
        option = self.origins.get(path)
        if option:
            return InputError(message, field=option)
        return InputError(message, source=self.source, field=self.aliases.get(path, path))

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {kind_of(value)}")
        for key in value:
            if key not in allowed:
                hint = _close_match(str(key), allowed)
                raise self.fail(f"{path}.{key}" if path else str(key),
                                "unknown field" + (f" (did you mean {hint!r}?)" if hint else
                                                   f" (known: {', '.join(allowed)})"))
        return value

    def string(self, value: Any, path: str, *, required: bool = False,
               choices: tuple[str, ...] = (), check: Callable[[str], str | None] | None = None) -> str | None:
        if value is None:
            if required:
                raise self.fail(path, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(path, f"expected a string, got {kind_of(value)}")
        text = str(value)
        if choices and text not in choices:
            raise self.fail(path, f"must be one of {', '.join(choices)} (got {text!r})")
        problem = check(text) if check else None
        if problem:
            raise self.fail(path, problem)
        return text

    def required(self, value: Any, path: str, check: Callable[[str], str | None] | None = None) -> str:
        """A string that must be given."""
        text = self.string(value, path, required=True, check=check)
        assert text is not None  # required=True raised otherwise
        return text

    def integer(self, value: Any, path: str, minimum: int | None = None) -> int | None:
        """An integer kube-apiserver's flag parsing takes (Go int/int64: at most 2^63-1)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {kind_of(value)} {_short(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"must be at least {minimum} (got {_short(value)})")
        if not INT64_MIN <= value <= INT64_MAX:
            raise self.fail(path, f"out of range: kube-apiserver takes a 64-bit integer (got {_short(value)})")
        return int(value)

    def number(self, value: Any, path: str) -> float | None:
        """An int or float; an unquoted YAML number like ``1e3`` (kept as PlainStr) too."""
        if value is None:
            return None
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
        elif isinstance(value, PlainStr):
            try:  # noqa: SIM105  (contextlib is not on the KRM start-up path)
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise self.fail(path, f"expected a number, got {kind_of(value)} {_short(value)}")
        if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
            raise self.fail(path, f"out of range: kube-apiserver reads it as a 32-bit float "
                                  f"(at most {FLOAT32_MAX:.7g}; got {_short(value)})")
        return number

    def boolean(self, value: Any, path: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        raise self.fail(path, f"expected true or false, got {value!r}")


class OptionFields:
    """A target's view of ``spec.targets.<name>``: the strict readers, with paths relative to it,
    so its errors name the field (or option, or older spelling) like every other."""

    def __init__(self, reader: _Reader, prefix: str) -> None:
        self._reader = reader
        self.prefix = prefix

    @classmethod
    def for_source(cls, source: str | None, prefix: str) -> OptionFields:
        """Fields read outside a resolution (errors name ``source`` and the field)."""
        return cls(_Reader(source, {}), prefix)

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}"

    def fail(self, key: str, message: str) -> InputError:
        return self._reader.fail(self.path(key), message)

    def mapping(self, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
        return self._reader.mapping(value, self.prefix, allowed)

    def string(self, value: Any, key: str, *, required: bool = False,
               choices: tuple[str, ...] = ()) -> str | None:
        return self._reader.string(value, self.path(key), required=required, choices=choices)

    def integer(self, value: Any, key: str, minimum: int | None = None) -> int | None:
        return self._reader.integer(value, self.path(key), minimum)

    def boolean(self, value: Any, key: str) -> bool | None:
        return self._reader.boolean(value, self.path(key))

    def node_path(self, value: Any, key: str, *, required: bool = False) -> str | None:
        """An absolute, normalised node path."""
        return _node_path(self._reader.string(value, self.path(key), required=required, check=_check_node_path))


def _short(value: Any) -> str:
    """repr(value), shortened: a number with thousands of digits is not worth printing whole."""
    text = (repr(value) if not isinstance(value, int) or abs(value) < 10 ** 40
            else f"a {len(str(abs(value)))}-digit number")
    return text if len(text) <= 80 else text[:77] + "..."


def _close_match(word: str, choices: tuple[str, ...]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def _check_duration(text: str) -> str | None:
    try:
        parse_go_duration(text)
    except ValueError as exc:
        return f"{exc} (expected a Go duration like 30s, 1m30s or 500ms)"
    return None


def _check_node_path(text: str) -> str | None:
    return normalise_node_path(text)[1]


def _check_node_file(text: str) -> str | None:
    """A file's node path: a trailing '/' names a directory, which kube-apiserver cannot open as one."""
    if text.endswith(("/", "/.")):
        return f"names a directory (got {text!r}): give the file's path in it"
    return _check_node_path(text)


def _node_path(text: str | None) -> str | None:
    """The normalised form of a path ``_check_node_path`` accepted."""
    return None if text is None else _normalised(text)


def _normalised(text: str) -> str:
    """The normalised form of a path ``_check_node_path`` accepted."""
    path, problem = normalise_node_path(text)
    if path is None:
        raise ValueError(problem)   # never: callers check the path first
    return path


#: A host name as a dialer resolves it: DNS labels (underscores occur in the wild).
#: (A pattern, compiled on first use through re's cache: the KRM start-up path never needs it.)
_HOST_NAME = (r"(?=.{1,253}\Z)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)"
              r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?\Z")


def _check_server(text: str) -> str | None:
    """What kube-apiserver's webhook client (Go's net/url, then a dial) would refuse.

    Go's url.Parse refuses control characters and spaces in the host, but accepts a
    host like ``<zensor_server_ip>`` (the vendor document's placeholder) and a port
    above 65535, which fail only when events are sent: refused here up front. The host
    and port are read here, not by urllib.parse, whose checks of bracketed hosts and
    ports differ between Python 3.9 and 3.11 (3.9 takes ``[not-v6]`` and ``:+80``).
    """
    import ipaddress

    shown = redact_url(text)
    if any(ord(ch) < 0x21 or ord(ch) == 0x7f for ch in text):
        return f"contains whitespace or a control character (got {shown!r})"
    if "<" in text or ">" in text or "{" in text or "}" in text:
        return (f"{shown} holds a placeholder: replace it with the receiver's address "
                "(e.g. https://10.0.0.5:8080)")
    url = re.match(_URL, text)
    if url is None or url["scheme"].lower() not in ("http", "https"):
        return f"not an http(s) URL with a host (got {shown!r}); e.g. https://10.0.0.5:8080"
    host_port = url["authority"].rpartition("@")[2]
    bracketed = re.match(_BRACKETED, host_port)
    if bracketed:
        host, port = bracketed["host"], bracketed["port"]
        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            return f"not a valid URL ({host!r} in brackets is not an IPv6 address): {shown}"
    elif "[" in host_port or "]" in host_port:
        return f"not a valid URL (brackets only enclose a whole IPv6 address, then :port): {shown}"
    else:
        host, _, port = host_port.rpartition(":") if ":" in host_port else (host_port, "", "")
    if port and not (port.isascii() and port.isdigit()):
        return f"not a valid URL (port {port[:16]!r} is not a number): {shown}"
    if port and (len(port.lstrip("0")) > 5 or int(port) > 65535):
        return f"not a valid URL (port out of range 0-65535): {shown}"
    if port and int(port) == 0:
        return "port 0 is not a valid port"
    if not host:
        return f"not an http(s) URL with a host (got {shown!r}); e.g. https://10.0.0.5:8080"
    if not bracketed and not re.match(_HOST_NAME, host):
        return f"{host!r} is neither an IP address nor a host name: {shown}"
    if "%" in text and not re.match(_PERCENT_OK, text):
        return f"malformed %-escape in {shown}"
    return None


#: scheme://authority, the authority ending where the path, query or fragment starts (RFC 3986).
_URL = r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)"
#: An IPv6 literal host, then an optional port.
_BRACKETED = r"\[(?P<host>[^\[\]]*)\](?::(?P<port>[^:]*))?\Z"
_PERCENT_OK = r"([^%]|%[0-9A-Fa-f]{2})*\Z"
#: (These three, like _HOST_NAME, are compiled on first use.)


# --- the merge ------------------------------------------------------------------------------

def read_document(document: Any, source: str) -> dict[str, Any]:
    """Check the AuditConfig envelope and return its ``spec`` (plain data)."""
    reader = _Reader(source, {})
    if not isinstance(document, dict):
        raise InputError(f"expected an {KIND} document, got {kind_of(document)}", source=source)
    reader.mapping(document, "", ("apiVersion", "kind", "metadata", "spec"))
    if document.get("apiVersion") != API_VERSION:
        raise InputError(f"apiVersion must be {API_VERSION} (got {document.get('apiVersion')!r})",
                         source=source, field="apiVersion")
    if document.get("kind") != KIND:
        raise InputError(f"kind must be {KIND} (got {document.get('kind')!r})",
                         source=source, field="kind")
    if document.get("metadata") is not None and not isinstance(document["metadata"], dict):
        raise InputError(f"expected a mapping, got {kind_of(document['metadata'])}", source=source, field="metadata")
    spec = document.get("spec")
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise InputError(f"expected a mapping, got {kind_of(spec)}", source=source, field="spec")
    return spec


def resolve(user_spec: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
            origins: Mapping[str, str] | None = None, source: str | None = None,
            target_version: str | None = None, target: TargetHooks | None = None) -> AuditConfig:
    """Merge defaults, the target's paths, preset, the user's spec and options, then parse strictly.

    ``origins`` maps a spec field path (``webhook.server``) to the command-line option
    that set it, so an error names the option the user typed. ``target_version`` is the
    version found on the cluster's own objects (an image tag, a kubeadm config): the
    target of version-dependent rules when no ``kubernetesVersion`` is given, never pinned.
    ``target`` is the distribution's hooks (``targets.hooks``): its default node paths and
    the reader of its options; without it ``spec.targets`` is only passed through.
    """
    origins = dict(origins or {})
    reader = _Reader(source, {f"spec.{k}": v for k, v in origins.items()})
    user_spec = _unalias(dict(user_spec or {}), reader)
    overrides = _unalias(dict(overrides or {}), reader)
    head = deep_merge(user_spec, overrides)
    reader.mapping(head, "spec", _SPEC_FIELDS)
    preset_name = reader.string(head.get("preset", DEFAULT_SPEC["preset"]), "spec.preset")
    try:
        preset = presets_mod.get(preset_name)
    except InputError as exc:
        raise reader.fail("spec.preset", exc.message) from None
    recipe_only = bool(reader.boolean(head.get("recipeOnly"), "spec.recipeOnly"))
    if recipe_only and preset.recipe_only is None:
        raise reader.fail("spec.recipeOnly", f"preset {preset.name!r} has no recipe-only form "
                                             "(only zeron reproduces a vendor recipe)")
    preset_spec = preset.recipe_only if recipe_only else preset.spec
    below = deep_merge(dict(DEFAULT_SPEC), _default_paths_layer(target))
    merged = deep_merge(deep_merge(below, dict(preset_spec or {})), head)
    _check_webhook_settings(head, merged, reader)
    return _parse_spec(merged, reader, preset, recipe_only, target_version, target)


def _default_paths_layer(target: TargetHooks | None) -> dict[str, Any]:
    """The target's DEFAULT_PATHS as a spec layer (under the preset and the user)."""
    found = dict(target.default_paths) if target else {}
    layer: dict[str, Any] = {}
    paths = {key: found[key] for key in ("policyFile", "webhookConfigFile") if key in found}
    if paths:
        layer["paths"] = paths
    if "log" in found:
        layer["log"] = {"path": found["log"]}
    return layer


def _unalias(spec: dict[str, Any], r: _Reader) -> dict[str, Any]:
    """Move v1alpha1 spellings (``kubeadmRoute``, ...) to ``spec.targets``; errors keep the spelling."""
    for old, (name, key) in LEGACY_TARGET_FIELDS.items():
        section, _, leaf = old.rpartition(".")
        holder = spec.get(section) if section else spec
        if not isinstance(holder, dict) or leaf not in holder:
            continue
        value = holder[leaf]
        if section:
            spec[section] = {k: v for k, v in holder.items() if k != leaf}
        else:
            spec = {k: v for k, v in spec.items() if k != leaf}
        new = f"spec.targets.{name}.{key}"
        targets = spec.get("targets") or {}
        block = targets.get(name) if isinstance(targets, dict) else None
        if not isinstance(targets, dict) or not isinstance(block, (dict, type(None))):
            raise r.fail("spec.targets" if not isinstance(targets, dict) else f"spec.targets.{name}",
                         f"expected a mapping, got {kind_of(targets if not isinstance(targets, dict) else block)}")
        if block and key in block:
            raise r.fail(f"spec.{old}", f"also given as {new}: give one of them")
        spec["targets"] = {**targets, name: {**(block or {}), key: value}}
        if f"spec.{old}" in r.origins:
            r.origins = {**r.origins, new: r.origins[f"spec.{old}"]}
        else:
            r.aliases[new] = f"spec.{old}"
    return spec


def _check_webhook_settings(head: Mapping[str, Any], merged: Mapping[str, Any], r: _Reader) -> None:
    """Webhook settings the user gave without a webhook server would be silently ignored: refuse,
    naming each (as the option or the AuditConfig field it came from)."""
    given = head.get("webhook")
    hook = merged.get("webhook")
    if not isinstance(given, dict) or (isinstance(hook, dict) and hook.get("server") is not None):
        return
    names = [leaf for key, value in given.items() if key != "server"
             for leaf in _leaves(value, f"spec.webhook.{key}")]
    if not names:
        return
    shown = list(dict.fromkeys(r.origins.get(name, name) for name in names))
    raise InputError(f"{', '.join(shown)}: webhook setting{'s' if len(shown) > 1 else ''} without a webhook "
                     "server, which kube-apiserver would never use: add --webhook-server "
                     "(spec.webhook.server) or drop them",
                     source=None if all(name in r.origins for name in names) else r.source)


def _leaves(value: Any, path: str) -> list[str]:
    if isinstance(value, dict) and value:
        return [leaf for key, inner in value.items() for leaf in _leaves(inner, f"{path}.{key}")]
    return [path]


_SPEC_FIELDS = ("kubernetesVersion", "kubeadmApi", "preset", "recipeOnly", "target", "targets",
                "policy", "webhook", "log", "paths", "kubeadmRoute")


def _parse_spec(spec: dict[str, Any], r: _Reader, preset: presets_mod.Preset, recipe_only: bool,
                target_version: str | None = None, target: TargetHooks | None = None) -> AuditConfig:
    version_text = r.string(spec.get("kubernetesVersion"), "spec.kubernetesVersion")
    try:
        if version_text is not None:
            version = versions.parse(version_text)
        elif target_version is not None:
            version = versions.target_for(target_version)
        else:
            version = versions.DEFAULT_TARGET
    except InputError as exc:
        if version_text is None:
            raise
        raise r.fail("spec.kubernetesVersion", exc.message) from None
    paths_raw = r.mapping(spec.get("paths"), "spec.paths", ("policyFile", "webhookConfigFile"))
    paths = Paths(*(_normalised(r.required(paths_raw.get(key), f"spec.paths.{key}", check=_check_node_file))
                    for key in ("policyFile", "webhookConfigFile")))
    policy_raw = r.mapping(spec.get("policy"), "spec.policy", ("file", "rules"))
    rules = policy_raw.get("rules") or []
    if not isinstance(rules, list):
        raise r.fail("spec.policy.rules", f"expected a list of audit.k8s.io/v1 rules, got {kind_of(rules)}")
    policy = PolicySource(file=r.string(policy_raw.get("file"), "spec.policy.file"), rules=tuple(rules))
    webhook = _parse_webhook(spec.get("webhook"), r)
    if webhook is None and preset.requires_webhook:
        raise r.fail("spec.webhook.server",
                     f"the {preset.name} preset sends events to a webhook receiver: give --webhook-server "
                     f"(e.g. {preset.webhook_hint})")
    if webhook and webhook.insecure_skip_tls_verify is False and webhook.certificate_authority is None \
            and webhook.server.startswith("https://"):
        if recipe_only:
            webhook = webhook._replace(insecure_skip_tls_verify=True)
        else:
            raise r.fail("spec.webhook.certificateAuthority",
                         f"the webhook server {_redacted(webhook.server)} uses https but no CA is given: pass "
                         "--ca-file with the receiver's CA certificate (PEM) so kube-apiserver verifies it, "
                         "or --insecure-skip-tls-verify to send audit events without verifying who receives them")
    log = _parse_log(spec.get("log"), r)
    if webhook is None and log is None:
        raise r.fail("spec.log",
                     "no audit backend: without a log (--no-log / log: null) and without a webhook server "
                     "kube-apiserver would audit nothing; keep the log or add --webhook-server")
    name = r.string(spec.get("target"), "spec.target") or DEFAULT_TARGET
    if target is not None:
        name = target.name
    targets = _target_blocks(spec.get("targets"), r, target.known_targets if target else ())
    options = None
    if target is not None and target.parse_options is not None:
        options = target.parse_options(targets.get(name) or {}, OptionFields(r, f"spec.targets.{name}"), version)
    elif target is not None and targets.get(name):
        field = next(iter(targets[name]))
        raise r.fail(f"spec.targets.{name}.{field}", f"unknown field: the {name} target takes no options")
    target_files = tuple(target.node_files(options)) if target is not None and target.node_files else ()
    cfg = AuditConfig(kubernetes_version=version, preset=preset,
                      recipe_only=recipe_only, policy=policy, webhook=webhook, log=log,
                      paths=paths, source=r.source, version_pinned=version_text is not None,
                      target=name, options=options, targets=targets, hooks=target,
                      target_files=target_files)
    _check_distinct(node_files(cfg), r)
    return cfg


def _target_blocks(raw: Any, r: _Reader, known: tuple[str, ...]) -> dict[str, Any]:
    """``spec.targets``: a mapping of target name to that target's options (a mapping)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise r.fail("spec.targets", f"expected a mapping, got {kind_of(raw)}")
    if known:
        r.mapping(raw, "spec.targets", known)
    for name, block in raw.items():
        if block is not None and not isinstance(block, dict):
            raise r.fail(f"spec.targets.{name}", f"expected a mapping, got {kind_of(block)}")
    return dict(raw)


def node_files(cfg: AuditConfig) -> list[tuple[str, str]]:
    """(spec field, node path) of every file the bundle puts on, or reads from, a control-plane node."""
    files = [("spec.paths.policyFile", cfg.paths.policy_file)]
    if cfg.webhook:
        files.append(("spec.paths.webhookConfigFile", cfg.paths.webhook_config_file))
        if cfg.webhook.token_file:
            files.append(("spec.webhook.tokenFile", cfg.webhook.token_file))
    if cfg.log and cfg.log.path != "-":
        files.append(("spec.log.path", cfg.log.path))
    files.extend(cfg.target_files)
    return files


def _check_distinct(files: list[tuple[str, str]], r: _Reader) -> None:
    """Every node file on a path of its own, and none inside another (a path is a file or a directory)."""
    for index, (field, path) in enumerate(files):
        for first, earlier in files[:index]:
            if path == earlier:
                problem = f"{path} is also {{other}}: every file of the bundle needs a node path of its own"
            elif path.startswith(earlier + "/") or earlier.startswith(path + "/"):
                problem = f"{path} and {earlier} ({{other}}) cannot both exist: one would be a directory of the other"
            else:
                continue
            # name the field the user set (an option wins), the other as what it collides with
            named, other = (first, field) if first in r.origins and field not in r.origins else (field, first)
            raise r.fail(named, problem.format(other=r.shown(other)))


def _redacted(url: str) -> str:
    return redact_url(url)


def check_against(cfg: AuditConfig, path: str, what: str) -> None:
    """Refuse a node file that would land on the static Pod manifest ``path`` being edited, or
    beside it: the kubelet starts every file in the manifest's directory as a Pod."""
    import posixpath

    target = posixpath.normpath(path)
    directory = posixpath.dirname(target)
    for field, node_path in node_files(cfg):
        if node_path == target:
            raise InputError(f"{node_path} is the {what}: the audit file would overwrite it",
                             source=cfg.source, field=field)
        if is_within(node_path, directory):
            raise InputError(f"{node_path} is inside {directory}, the directory of the {what}: the kubelet "
                             "would try to run it as a static Pod", source=cfg.source, field=field)


_WEBHOOK_FIELDS = ("server", "certificateAuthority", "clientCertificate", "clientKey",
                   "insecureSkipTLSVerify", "tlsServerName", "mode", "batch", "truncate",
                   "initialBackoff", "version", "kubeconfigNames", "token", "tokenFile")


def _parse_webhook(raw: Any, r: _Reader) -> Webhook | None:
    if raw is None:
        return None
    w = r.mapping(raw, "spec.webhook", _WEBHOOK_FIELDS)
    if w.get("server") is None:
        return None  # presets set batching defaults; without a server there is no webhook backend
    batch = r.mapping(w.get("batch"), "spec.webhook.batch", ("maxSize", "maxWait", "bufferSize", "throttle"))
    throttle = r.mapping(batch.get("throttle"), "spec.webhook.batch.throttle", ("enable", "qps", "burst"))
    truncate = r.mapping(w.get("truncate"), "spec.webhook.truncate",
                         ("enabled", "maxEventSize", "maxBatchSize"))
    names = r.mapping(w.get("kubeconfigNames"), "spec.webhook.kubeconfigNames", ("cluster", "context", "user"))
    cert = r.string(w.get("clientCertificate"), "spec.webhook.clientCertificate")
    key = r.string(w.get("clientKey"), "spec.webhook.clientKey")
    if (cert is None) != (key is None):
        missing = "clientKey" if key is None else "clientCertificate"
        raise r.fail(f"spec.webhook.{missing}", "client certificate and key must be given together")
    insecure = bool(r.boolean(w.get("insecureSkipTLSVerify"), "spec.webhook.insecureSkipTLSVerify"))
    ca = r.string(w.get("certificateAuthority"), "spec.webhook.certificateAuthority")
    if insecure and ca:
        raise r.fail("spec.webhook.insecureSkipTLSVerify",
                     "insecure-skip-tls-verify and a CA exclude each other: drop one")
    token, token_file = _parse_webhook_token(w, r)
    return Webhook(
        token=token,
        token_file=token_file,
        server=r.required(w["server"], "spec.webhook.server", check=_check_server),
        certificate_authority=ca,
        client_certificate=cert,
        client_key=key,
        insecure_skip_tls_verify=insecure,
        tls_server_name=r.string(w.get("tlsServerName"), "spec.webhook.tlsServerName"),
        mode=r.string(w.get("mode"), "spec.webhook.mode", choices=versions.AUDIT_MODES),
        batch=Batch(
            max_size=r.integer(batch.get("maxSize"), "spec.webhook.batch.maxSize", minimum=1),
            max_wait=r.string(batch.get("maxWait"), "spec.webhook.batch.maxWait", check=_check_duration),
            buffer_size=r.integer(batch.get("bufferSize"), "spec.webhook.batch.bufferSize", minimum=1),
            throttle=Throttle(
                enable=r.boolean(throttle.get("enable"), "spec.webhook.batch.throttle.enable"),
                qps=r.number(throttle.get("qps"), "spec.webhook.batch.throttle.qps"),
                burst=r.integer(throttle.get("burst"), "spec.webhook.batch.throttle.burst"),
            ),
        ),
        truncate=Truncate(
            enabled=r.boolean(truncate.get("enabled"), "spec.webhook.truncate.enabled"),
            max_event_size=r.integer(truncate.get("maxEventSize"), "spec.webhook.truncate.maxEventSize"),
            max_batch_size=r.integer(truncate.get("maxBatchSize"), "spec.webhook.truncate.maxBatchSize"),
        ),
        initial_backoff=r.string(w.get("initialBackoff"), "spec.webhook.initialBackoff", check=_check_duration),
        version=r.string(w.get("version"), "spec.webhook.version"),
        kubeconfig_names=KubeconfigNames(*(
            r.required(names.get(key, default), f"spec.webhook.kubeconfigNames.{key}")
            for key, default in DEFAULT_KUBECONFIG_NAMES.items())),
    )


def _parse_webhook_token(w: dict[str, Any], r: _Reader) -> tuple[str | None, str | None]:
    """Bearer-token authentication: a token embedded in the kubeconfig, or a token file on the
    nodes that kube-apiserver reads (and re-reads, so it can be rotated). Only one of them:
    client-go would silently prefer the file."""
    token = r.string(w.get("token"), "spec.webhook.token",
                     check=lambda t: "must not be empty or contain whitespace"
                     if not t or any(ch.isspace() for ch in t) else None)
    token_file = r.string(w.get("tokenFile"), "spec.webhook.tokenFile", check=_check_node_file)
    if token is not None and token_file is not None:
        raise r.fail("spec.webhook.tokenFile", "token and tokenFile exclude each other: give one")
    return token, None if token_file is None else _node_path(token_file)


def _parse_log(raw: Any, r: _Reader) -> Log | None:
    if raw is None:
        return None
    log = r.mapping(raw, "spec.log", ("path", "maxAge", "maxBackup", "maxSize", "compress", "format"))
    path = r.required(log.get("path"), "spec.log.path", check=lambda p: None if p == "-" else _check_node_file(p))
    path = path if path == "-" else _normalised(path)
    return Log(
        path=path,
        max_age=r.integer(log.get("maxAge"), "spec.log.maxAge", minimum=0),
        max_backup=r.integer(log.get("maxBackup"), "spec.log.maxBackup", minimum=0),
        max_size=r.integer(log.get("maxSize"), "spec.log.maxSize", minimum=0),
        compress=r.boolean(log.get("compress"), "spec.log.compress"),
        format=r.string(log.get("format"), "spec.log.format", choices=versions.LOG_FORMATS),
    )


# --- the resolved AuditConfig, written back --------------------------------------------------

def to_document(cfg: AuditConfig, base_dir: str) -> dict[str, Any]:
    """``cfg`` as an AuditConfig document that resolves to ``cfg`` again, from ``base_dir``.

    File references (policy, CA, client certificate and key) are written relative to
    ``base_dir``, the directory the document goes into, so nothing they hold is copied.
    ``kubernetesVersion`` appears only when it was pinned. The target's options come from
    its ``options_document`` (options of other targets as they were given), the kubeadm
    ones in their v1alpha1 spelling (``LEGACY_TARGET_FIELDS``). A value left to
    kube-apiserver's default that the preset sets is written as null.
    """
    import os

    def ref(path: str | None) -> str | None:
        return None if path is None else os.path.relpath(path, base_dir)

    targets = {name: block for name, block in cfg.targets.items() if name != cfg.target}
    if cfg.hooks is not None and cfg.hooks.options_document is not None:
        targets[cfg.target] = cfg.hooks.options_document(cfg.options, cfg.version_pinned)
    elif cfg.target in cfg.targets:
        targets[cfg.target] = cfg.targets[cfg.target]
    legacy = _legacy_fields(targets)
    spec: dict[str, Any] = {}
    if cfg.target != DEFAULT_TARGET:
        spec["target"] = cfg.target
    if cfg.version_pinned:
        spec["kubernetesVersion"] = str(cfg.kubernetes_version)
    spec.update(legacy.pop("kubeadmApi", {}))
    spec["preset"] = cfg.preset.name
    if cfg.recipe_only:
        spec["recipeOnly"] = True
    spec.update(legacy.pop("kubeadmRoute", {}))
    policy = {"file": ref(cfg.policy.file), "rules": list(cfg.policy.rules) or None}
    spec["policy"] = policy
    hook = cfg.webhook
    if hook is not None:
        throttle = hook.batch.throttle
        spec["webhook"] = {
            "server": hook.server,
            "certificateAuthority": ref(hook.certificate_authority),
            "clientCertificate": ref(hook.client_certificate),
            "clientKey": ref(hook.client_key),
            "insecureSkipTLSVerify": hook.insecure_skip_tls_verify,
            "tlsServerName": hook.tls_server_name,
            "mode": hook.mode,
            "batch": {"maxSize": hook.batch.max_size, "maxWait": hook.batch.max_wait,
                      "bufferSize": hook.batch.buffer_size,
                      "throttle": {"enable": throttle.enable, "qps": _plain_number(throttle.qps),
                                   "burst": throttle.burst}},
            "truncate": {"enabled": hook.truncate.enabled, "maxEventSize": hook.truncate.max_event_size,
                         "maxBatchSize": hook.truncate.max_batch_size},
            "initialBackoff": hook.initial_backoff,
            "version": hook.version,
            "kubeconfigNames": dict(hook.kubeconfig_names._asdict()),
            "token": hook.token,
            "tokenFile": hook.token_file,
        }
    spec["log"] = None if cfg.log is None else {
        "path": cfg.log.path, "maxAge": cfg.log.max_age, "maxBackup": cfg.log.max_backup,
        "maxSize": cfg.log.max_size, "compress": cfg.log.compress, "format": cfg.log.format}
    spec["paths"] = {"policyFile": cfg.paths.policy_file, "webhookConfigFile": cfg.paths.webhook_config_file,
                     **{key.rpartition(".")[2]: value
                        for key, value in legacy.pop("paths.patchesDirectory", {}).items()}}
    if targets:
        spec["targets"] = targets
    layer = deep_merge(dict(DEFAULT_SPEC), dict((cfg.preset.recipe_only if cfg.recipe_only else cfg.preset.spec) or {}))
    spec = _prune(spec, layer)
    if cfg.log is None:
        spec["log"] = None
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": "audit"}, "spec": spec}


def _legacy_fields(targets: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Take the options that have a v1alpha1 spelling out of ``targets`` (edited in place):
    {spelling: {spelling: value}}, so the caller places each where it always stood."""
    found: dict[str, dict[str, Any]] = {}
    for old, (name, key) in LEGACY_TARGET_FIELDS.items():
        block = targets.get(name)
        if isinstance(block, dict) and block.get(key) is not None:
            found[old] = {old: block[key]}
            targets[name] = {k: v for k, v in block.items() if k != key}
    for name in [name for name, block in targets.items() if block == {}]:
        del targets[name]
    return found


def _plain_number(value: float | None) -> Any:
    return int(value) if value is not None and float(value).is_integer() else value


def _prune(value: Any, layer: Any) -> Any:
    """Drop None leaves the layer below does not set (they are None there too); keep the others."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, inner in value.items():
        below = layer.get(key) if isinstance(layer, dict) else None
        if inner is None and below is None:
            continue
        pruned = _prune(inner, below)
        if pruned == {} and not below:
            continue
        out[key] = pruned
    return out
