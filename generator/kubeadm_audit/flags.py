"""kube-apiserver's ``--audit-*`` flags: the table, building them, validating them.

Validation follows kube-apiserver (k8s.io/apiserver pkg/server/options/audit.go):
pflag parses each value by type (the last occurrence wins), then each enabled
backend's options are checked. A backend is enabled by a non-empty path
(``--audit-log-path``) or config file (``--audit-webhook-config-file``); the
other backend's flags are not checked at all, exactly as upstream.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from kubeadm_audit import versions
from kubeadm_audit.findings import Finding, Severity
from kubeadm_audit.gotypes import (  # noqa: F401  (parse_go_int, parse_go_duration_ns: used via flags.*)
    parse_go_bool,
    parse_go_duration,
    parse_go_duration_ns,
    parse_go_float32,
    parse_go_int,
)
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any

    from kubeadm_audit.config import AuditConfig

MODES = versions.AUDIT_MODES
FORMATS = versions.LOG_FORMATS
AUDIT_GROUP_VERSION = versions.AUDIT_API_VERSION


class FlagSpec(NamedTuple):
    name: str
    kind: str            # string | int | int64 | float32 | bool | duration
    default: str         # "" for version-dependent defaults (see versions.log_rotation_defaults)
    backend: str         # policy | log | webhook


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _table(rows: Iterable[tuple[str, str, str, str]]) -> dict[str, FlagSpec]:
    return {row[0]: FlagSpec(*row) for row in rows}


#: Every audit flag kube-apiserver registers (NewAuditOptions), with its default.
AUDIT_FLAGS: Mapping[str, FlagSpec] = _table([
    ("audit-policy-file", "string", "", "policy"),
    ("audit-log-path", "string", "", "log"),
    ("audit-log-maxage", "int", "", "log"),
    ("audit-log-maxbackup", "int", "", "log"),
    ("audit-log-maxsize", "int", "", "log"),
    ("audit-log-compress", "bool", "false", "log"),
    ("audit-log-format", "string", "json", "log"),
    ("audit-log-version", "string", AUDIT_GROUP_VERSION, "log"),
    ("audit-log-mode", "string", "blocking", "log"),
    ("audit-log-batch-buffer-size", "int", "10000", "log"),
    ("audit-log-batch-max-size", "int", "1", "log"),
    ("audit-log-batch-max-wait", "duration", "0s", "log"),
    ("audit-log-batch-throttle-enable", "bool", "false", "log"),
    ("audit-log-batch-throttle-qps", "float32", "0", "log"),
    ("audit-log-batch-throttle-burst", "int", "0", "log"),
    ("audit-log-truncate-enabled", "bool", "false", "log"),
    ("audit-log-truncate-max-batch-size", "int64", "10485760", "log"),
    ("audit-log-truncate-max-event-size", "int64", "102400", "log"),
    ("audit-webhook-config-file", "string", "", "webhook"),
    ("audit-webhook-initial-backoff", "duration", "10s", "webhook"),
    ("audit-webhook-batch-initial-backoff", "duration", "10s", "webhook"),
    ("audit-webhook-version", "string", AUDIT_GROUP_VERSION, "webhook"),
    ("audit-webhook-mode", "string", versions.WEBHOOK_MODE_DEFAULT, "webhook"),
    ("audit-webhook-batch-buffer-size", "int", str(versions.WEBHOOK_BATCH_BUFFER_SIZE), "webhook"),
    ("audit-webhook-batch-max-size", "int", str(versions.WEBHOOK_BATCH_MAX_SIZE), "webhook"),
    ("audit-webhook-batch-max-wait", "duration", versions.WEBHOOK_BATCH_MAX_WAIT, "webhook"),
    ("audit-webhook-batch-throttle-enable", "bool", _bool(versions.WEBHOOK_BATCH_THROTTLE_ENABLE), "webhook"),
    ("audit-webhook-batch-throttle-qps", "float32", _num(versions.WEBHOOK_BATCH_THROTTLE_QPS), "webhook"),
    ("audit-webhook-batch-throttle-burst", "int", str(versions.WEBHOOK_BATCH_THROTTLE_BURST), "webhook"),
    ("audit-webhook-truncate-enabled", "bool", "false", "webhook"),
    ("audit-webhook-truncate-max-batch-size", "int64", "10485760", "webhook"),
    ("audit-webhook-truncate-max-event-size", "int64", "102400", "webhook"),
])

#: Audit flags kube-apiserver no longer registers: passing one stops it from starting.
REMOVED_FLAGS = {
    "audit-dynamic-configuration": "dynamic audit was removed in Kubernetes 1.19",
}

#: Flags naming files that must be visible inside the kube-apiserver container.
PATH_FLAGS = ("audit-policy-file", "audit-webhook-config-file", "audit-log-path")

#: CIS 1.2.16-1.2.19 (kube-bench numbering for cis-1.9 .. cis-1.12): flag -> minimum.
CIS_LOG_MINIMUMS = {"audit-log-maxage": 30, "audit-log-maxbackup": 10, "audit-log-maxsize": 100}


#: Ids of what ``validate`` finds: kube-apiserver refuses the flags (KF001), or starts but not
#: the way people expect (KF002: CIS minimums, values kube-bench cannot read, slow batching).
FLAG_REFUSED = "KF001"
FLAG_SURPRISING = "KF002"


def Problem(flag: str, message: str, severity: str = "error") -> Finding:
    """A finding about ``--flag`` (error: kube-apiserver refuses to start; warning: it starts, but ...)."""
    level = Severity.parse(severity)
    return Finding(FLAG_REFUSED if level is Severity.ERROR else FLAG_SURPRISING, level, message,
                   path=f"--{flag}" if flag else "")


# --- building -------------------------------------------------------------------------

def build(cfg: AuditConfig) -> list[tuple[str, str]]:
    """The ``--audit-*`` arguments for ``cfg`` as ordered (name, value) pairs; values are strings."""
    args: list[tuple[str, str]] = [("audit-policy-file", cfg.paths.policy_file)]
    log = cfg.log
    if log is not None:
        args.append(("audit-log-path", log.path))
        for name, value in (("audit-log-maxage", log.max_age), ("audit-log-maxbackup", log.max_backup),
                            ("audit-log-maxsize", log.max_size)):
            if value is not None:
                args.append((name, str(value)))
        if log.compress is not None:
            args.append(("audit-log-compress", _bool(log.compress)))
        if log.format is not None:
            args.append(("audit-log-format", log.format))
    hook = cfg.webhook
    if hook is not None:
        args.append(("audit-webhook-config-file", cfg.paths.webhook_config_file))
        batch, throttle, truncate = hook.batch, hook.batch.throttle, hook.truncate
        optional = (
            ("audit-webhook-mode", hook.mode),
            ("audit-webhook-batch-buffer-size", batch.buffer_size),
            ("audit-webhook-batch-max-size", batch.max_size),
            ("audit-webhook-batch-max-wait", batch.max_wait),
            ("audit-webhook-batch-throttle-enable", None if throttle.enable is None else _bool(throttle.enable)),
            ("audit-webhook-batch-throttle-qps", None if throttle.qps is None else _num(throttle.qps)),
            ("audit-webhook-batch-throttle-burst", throttle.burst),
            ("audit-webhook-truncate-enabled", None if truncate.enabled is None else _bool(truncate.enabled)),
            ("audit-webhook-truncate-max-event-size", truncate.max_event_size),
            ("audit-webhook-truncate-max-batch-size", truncate.max_batch_size),
            ("audit-webhook-initial-backoff", hook.initial_backoff),
            ("audit-webhook-version", hook.version),
        )
        args.extend((name, str(value)) for name, value in optional if value is not None)
    return args


def to_command(args: Sequence[tuple[str, str]]) -> list[str]:
    """``--name=value`` strings (the only form kube-bench can read)."""
    return [f"--{name}={value}" for name, value in args]


# --- parsing a command line ------------------------------------------------------------

class Occurrence(NamedTuple):
    name: str
    value: str | None   # None: a bare flag (a bool set to true)
    position: int          # in the argument list
    separate: bool         # value given as the next argument ("--flag value")


def parse_command(argv: Sequence[str]) -> list[Occurrence]:
    """Find every ``--flag[=value]`` in a command, the way pflag reads it."""
    found: list[Occurrence] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if eq:
                found.append(Occurrence(name, value, i, False))
            else:
                spec = AUDIT_FLAGS.get(name)
                takes_value = spec is not None and spec.kind != "bool"
                if takes_value and i + 1 < len(argv):
                    found.append(Occurrence(name, argv[i + 1], i, True))
                    i += 1
                else:
                    found.append(Occurrence(name, None, i, False))
        i += 1
    return found


def _needs_value(occ: Occurrence) -> bool:
    """A flag that takes a value given bare as the last argument (pflag: "flag needs an argument")."""
    spec = AUDIT_FLAGS.get(occ.name)
    return occ.value is None and spec is not None and spec.kind != "bool"


def effective(occurrences: Iterable[Occurrence]) -> dict[str, str]:
    """name -> value of the last occurrence (pflag's rule for scalar flags); a bare flag is
    "true", one missing its value is left out (it is an error, see :func:`validate`)."""
    values: dict[str, str] = {}
    for occ in occurrences:
        if not _needs_value(occ):
            values[occ.name] = "true" if occ.value is None else occ.value
    return values


def read_command(args: Sequence[str]) -> list[Occurrence]:
    """The flags of a command line; kubeadm's ``name=value`` form (an extraArgs entry)
    reads as ``--name=value``. No arguments at all is valid for kube-apiserver: it starts
    without an audit backend."""
    argv: list[str] = []
    for arg in args:
        previous = argv[-1] if argv else ""
        awaits_value = previous.startswith("--") and "=" not in previous and \
            AUDIT_FLAGS.get(previous[2:], FlagSpec("", "bool", "", "")).kind != "bool"
        argv.append(f"--{arg}" if re.match(_KUBEADM_FORM, arg) and not awaits_value else arg)
    return parse_command(argv)


_KUBEADM_FORM = r"[a-z][a-z0-9-]*="   # compiled on first use (re's cache): not on the KRM start-up path


# --- validation ------------------------------------------------------------------------

def _parse_value(spec: FlagSpec, text: str) -> object:
    if spec.kind == "string":
        return text
    if spec.kind in ("int", "int64"):
        return parse_go_int(text)
    if spec.kind == "float32":
        return parse_go_float32(text)
    if spec.kind == "bool":
        return parse_go_bool(text)
    return parse_go_duration(text)


def parse_value(name: str, text: str) -> object:
    """An audit flag's value as kube-apiserver's flag parsing reads it (ValueError if refused)."""
    return _parse_value(AUDIT_FLAGS[name], text)


def _valid_group_version(text: str, version: versions.KubeVersion) -> str | None:
    if text.count("/") > 1:
        return f"unexpected GroupVersion string: {text}"
    allowed = (AUDIT_GROUP_VERSION,) if version.minor >= versions.AUDIT_V1BETA1_REMOVED_IN \
        else (*versions.AUDIT_REMOVED_API_VERSIONS, AUDIT_GROUP_VERSION)
    if text not in allowed:
        quoted = " ".join(f'"{v}"' for v in allowed)
        return f"invalid group version, allowed versions are [{quoted}]"
    return None


def validate(values: Mapping[str, str], version: versions.KubeVersion | None = None,
             occurrences: Sequence[Occurrence] = ()) -> list[Finding]:
    """Problems kube-apiserver would have with these audit flags (name -> value, no dashes).

    Errors are what stops kube-apiserver from starting; warnings are accepted settings
    that do not do what people expect.
    """
    version = version or versions.parse(versions.DEFAULT_KUBERNETES_VERSION)
    problems: list[Finding] = [Problem(occ.name, f"flag needs an argument: --{occ.name}")
                      for occ in occurrences if occ.name.startswith("audit-") and _needs_value(occ)]
    parsed: dict[str, object] = {}
    for name, text in values.items():
        if not name.startswith("audit-"):
            continue
        if name in REMOVED_FLAGS:
            problems.append(Problem(name, f"unknown flag: {REMOVED_FLAGS[name]}"))
            continue
        spec = AUDIT_FLAGS.get(name)
        if spec is None:
            problems.append(Problem(name, "unknown flag: kube-apiserver has no such audit flag"))
            continue
        try:
            parsed[name] = _parse_value(spec, text)
        except ValueError as exc:
            problems.append(Problem(name, f'invalid argument "{text}": {exc}'))
    # pflag parses every occurrence, so an invalid value stops kube-apiserver even when a
    # later occurrence of the same flag is valid.
    for occ in occurrences:
        spec = AUDIT_FLAGS.get(occ.name)
        if spec is None or occ.value is None or values.get(occ.name) == occ.value:
            continue
        try:
            _parse_value(spec, occ.value)
        except ValueError as exc:
            problem = Problem(occ.name, f'invalid argument "{occ.value}": {exc}')
            if problem not in problems:
                problems.append(problem)
    defaults = {**{n: s.default for n, s in AUDIT_FLAGS.items()}, **versions.log_rotation_defaults(version)}

    def get(name: str) -> Any:    # int, float, bool or str by the flag's kind
        if name in parsed:
            return parsed[name]
        if name in values:          # present but unparsable: already reported
            return None
        return _parse_value(AUDIT_FLAGS[name], defaults[name])

    for backend, enabled_by in (("log", "audit-log-path"), ("webhook", "audit-webhook-config-file")):
        if not get(enabled_by):
            continue
        problems.extend(_validate_backend(backend, get, version))
    if backend_enabled(values) and not values.get("audit-policy-file"):
        problems.append(Problem("audit-policy-file", "not set: kube-apiserver audits nothing without a policy, "
                                "whatever backends are configured", "warning"))
    problems.extend(_usage_warnings(values, parsed, occurrences))
    if values.get("audit-policy-file"):
        problems.extend(cis_warnings(values))
        if values.get("audit-log-path") and version.minor >= versions.LOG_ROTATION_DEFAULTS_CHANGED_IN \
                and parsed.get("audit-log-maxsize") == 0:
            problems.append(Problem("audit-log-maxsize", f"0 turns rotation off from Kubernetes "
                                                         f"1.{versions.LOG_ROTATION_DEFAULTS_CHANGED_IN}: the log "
                                                         "grows until the disk is full", "warning"))
    return problems


_CIS_IDS = {"audit-log-path": "1.2.16", "audit-log-maxage": "1.2.17", "audit-log-maxbackup": "1.2.18",
            "audit-log-maxsize": "1.2.19"}
_KUBE_BENCH_INT = re.compile(r"\s*[-+]?\d+\s*\Z")


def cis_warnings(values: Mapping[str, str]) -> list[Finding]:
    """What kube-bench's CIS 1.2.16-1.2.19 checks (cis-1.9 .. 1.12 numbering) would fail.

    kube-bench reads ``--flag=value`` from the process command line and needs an explicit,
    plain integer at least the minimum; it does not know kube-apiserver's defaults.
    """
    if not values.get("audit-log-path"):
        return [Problem("audit-log-path", "not set: no log backend, so kube-bench fails CIS 1.2.16-1.2.19 "
                                          "(a webhook-only setup); keep the log as the durable copy", "warning")]
    out = []
    for name, minimum in CIS_LOG_MINIMUMS.items():
        text = values.get(name)
        if text is None or not _KUBE_BENCH_INT.match(text) or int(text) < minimum:
            shown = "not set" if text is None else f"{text!r}"
            out.append(Problem(name, f"{shown}: kube-bench fails CIS {_CIS_IDS[name]} (needs an explicit "
                                     f"integer of at least {minimum})", "warning"))
    return out


def backend_enabled(values: Mapping[str, str]) -> bool:
    return bool(values.get("audit-log-path") or values.get("audit-webhook-config-file"))


def _validate_backend(backend: str, get: Callable[[str], Any], kube_version: versions.KubeVersion) -> list[Finding]:
    p = f"audit-{backend}-"
    out: list[Finding] = []
    mode = get(p + "mode")
    if mode is not None and mode not in MODES:
        out.append(Problem(p + "mode", f"invalid audit {backend} mode {mode}, allowed modes are "
                                       f"\"{','.join(MODES)}\""))
    elif mode == "batch":
        for key, what in (("batch-buffer-size", "buffer size"), ("batch-max-size", "max batch size")):
            value = get(p + key)
            if value is not None and value <= 0:
                out.append(Problem(p + key, f"invalid audit batch {backend} {what} {value}, "
                                            "must be a positive number"))
        if get(p + "batch-throttle-enable"):
            for key, what in (("batch-throttle-qps", "throttle QPS"), ("batch-throttle-burst", "throttle burst")):
                value = get(p + key)
                if value is not None and value <= 0:
                    out.append(Problem(p + key, f"invalid audit batch {backend} {what} {value:g}, "
                                                "must be a positive number"))
    event, batch = get(p + "truncate-max-event-size"), get(p + "truncate-max-batch-size")
    if event is not None and event <= 0:
        out.append(Problem(p + "truncate-max-event-size",
                           f"invalid audit truncate {backend} max event size {event}, must be a positive number"))
    if event is not None and batch is not None and batch < event:
        out.append(Problem(p + "truncate-max-batch-size",
                           f"invalid audit truncate {backend} max batch size {batch}, must be greater than "
                           f"or equal to the max event size {event}"))
    group_version = get(p + "version")
    if group_version is not None:
        problem = _valid_group_version(group_version, kube_version)
        if problem:
            out.append(Problem(p + "version", problem))
    if backend == "log":
        for key in ("maxage", "maxbackup", "maxsize"):
            value = get(p + key)
            if value is not None and value < 0:
                out.append(Problem(p + key, f"--{p + key} {value} can't be a negative number"))
        fmt = get(p + "format")
        if fmt is not None and fmt not in FORMATS:
            out.append(Problem(p + "format", f"invalid audit log format {fmt}, allowed formats are "
                                             f"\"{','.join(FORMATS)}\""))
    return out


def _usage_warnings(values: Mapping[str, str], parsed: Mapping[str, object],
                    occurrences: Sequence[Occurrence]) -> list[Finding]:
    out: list[Finding] = []
    seen: dict[str, Occurrence] = {}
    for occ in occurrences:
        if not occ.name.startswith("audit-"):
            continue
        if occ.name in seen:
            out.append(Problem(occ.name, "given more than once: kube-apiserver uses the last value, "
                                         "kube-bench reads the first", "warning"))
        seen[occ.name] = occ
        if occ.separate:
            out.append(Problem(occ.name, "value given as a separate argument: kube-bench only reads "
                                         f"--{occ.name}=VALUE", "warning"))
    if values.get("audit-webhook-config-file"):
        out.extend(throughput_warnings(parsed))
    return out


def throughput_warnings(parsed: Mapping[str, object]) -> list[Finding]:
    """Batch size 1 with throttling: delivery caps near QPS events/s, then events are dropped."""
    def value(name: str) -> object:
        return parsed.get(name, _parse_value(AUDIT_FLAGS[name], AUDIT_FLAGS[name].default))

    if value("audit-webhook-mode") != "batch" or not value("audit-webhook-batch-throttle-enable"):
        return []
    size = value("audit-webhook-batch-max-size")
    if size != 1:
        return []
    qps, burst, buffer = (value("audit-webhook-batch-throttle-qps"), value("audit-webhook-batch-throttle-burst"),
                          value("audit-webhook-batch-buffer-size"))
    return [Problem("audit-webhook-batch-max-size",
                    f"batch max size 1 with throttling on caps delivery near {qps:g} events/s (bursts of "
                    f"{burst}); above that the {buffer}-event buffer fills and events are dropped. Measure "
                    "apiserver_audit_event_total and raise --audit-webhook-batch-throttle-qps/-burst well above "
                    "the event rate, disable throttling, or send larger batches if the receiver accepts "
                    "EventLists", "warning")]
