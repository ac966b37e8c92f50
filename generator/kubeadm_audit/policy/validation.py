"""Would kube-apiserver load this audit policy? Its rules, exactly.

kube-apiserver decodes the file strictly; on a strict-only problem (unknown
fields) it decodes again leniently, drops those fields and starts anyway. Any
other decode problem (a value of the wrong type, an unsupported apiVersion or
kind), a ``ValidatePolicy`` error or a policy without rules stops it. So:

* ``error`` -- kube-apiserver refuses to start with this policy;
* ``warning`` -- it starts, but silently drops the field (and we say what that does).

Field paths carry list indexes everywhere (upstream reports
``rules[i].resources.group`` without the index; ours is more precise, the verdict
is the same). Documents come from :mod:`kubeadm_audit.yamlio`, which already refuses
duplicate keys (kube-apiserver would warn and keep the last one).
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from kubeadm_audit import versions
from kubeadm_audit.errors import InputError
from kubeadm_audit.findings import Finding, Severity
from kubeadm_audit.policy.model import API_VERSION, LEVELS, STAGES, YAML11_FALSE, YAML11_TRUE, Policy
from kubeadm_audit.typing_lite import TYPE_CHECKING
from kubeadm_audit.versions import AUDIT_GROUP_WILDCARD_FROM, AUDIT_V1BETA1_REMOVED_IN
from kubeadm_audit.yamlio import kind_of

if TYPE_CHECKING:
    from typing import Any

ERROR = Severity.ERROR      # kube-apiserver refuses the policy
WARNING = Severity.WARNING  # it starts, but drops or ignores what the finding names

#: The ids of what validation finds (the lint registry describes them; ids never change meaning).
REFUSED = "KA001"              # kube-apiserver refuses the policy
REMOVED_API_VERSION = "KA002"  # a removed policy apiVersion
DROPPED = "KA003"              # a field kube-apiserver silently drops

#: The steps of LoadPolicyFromBytes, in order; a refusal at one step hides the later ones.
DECODE = "decode"      # the (strict, then lenient) decoder: types, apiVersion/kind, unknown fields
VALIDATE = "validate"  # validation.ValidatePolicy
LOAD = "load"          # the loader's own check: at least one rule


def finding(path: str, message: str, severity: Severity, stage: str = VALIDATE,
            finding_id: str = "") -> Finding:
    """A validation finding: an error is KA001 (refused), a warning KA003 (dropped)."""
    return Finding(finding_id or (REFUSED if severity == ERROR else DROPPED), severity, message,
                   path=path, stage=stage)


#: Policy API versions that existed and were removed, with why/when.
REMOVED_API_VERSIONS = dict.fromkeys(
    versions.AUDIT_REMOVED_API_VERSIONS,
    f"deprecated in Kubernetes 1.{versions.AUDIT_V1BETA1_DEPRECATED_IN} and removed in "
    f"1.{versions.AUDIT_V1BETA1_REMOVED_IN}")

# Field schemas: name -> kind of value. "strings" = list of strings.
POLICY_FIELDS = {"apiVersion": "string", "kind": "string", "metadata": "objectMeta",
                  "rules": "rules", "omitStages": "strings", "omitManagedFields": "bool"}
RULE_FIELDS = {"level": "string", "users": "strings", "userGroups": "strings",
                "verbs": "strings", "resources": "groupResources", "namespaces": "strings",
                "nonResourceURLs": "strings", "omitStages": "strings",
                "omitManagedFields": "bool"}
GROUP_RESOURCES_FIELDS = {"group": "string", "resources": "strings", "resourceNames": "strings"}
#: metav1.ObjectMeta, which the decoder checks like the rest ("any": not checked here).
OBJECT_META_FIELDS = {"name": "string", "generateName": "string", "namespace": "string", "selfLink": "string",
                      "uid": "string", "resourceVersion": "string", "generation": "int",
                      "creationTimestamp": "any", "deletionTimestamp": "any",
                      "deletionGracePeriodSeconds": "int", "labels": "stringMap", "annotations": "stringMap",
                      "ownerReferences": "any", "finalizers": "strings", "managedFields": "any"}

#: What dropping a rule-level field does to the rule (for fields misplaced elsewhere).
_DROPPED_RULE_FIELD = {
    "verbs": "this rule matches every verb",
    "users": "this rule matches every user",
    "userGroups": "this rule matches every user group",
    "namespaces": "this rule matches every namespace",
    "nonResourceURLs": "the URLs are not matched",
    "level": "the level has no effect here",
    "omitStages": "no stage is omitted by it",
    "omitManagedFields": "it has no effect",
    "resources": "it has no effect",
}
_DROPPED_RESOURCE_FIELD = {
    "group": "the group is not used (the rule keeps its own resources' groups)",
    "resourceNames": "this rule matches objects of any name",
}

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*\Z")
# Plain scalars that kube-apiserver's YAML 1.1 reader keeps as strings even though
# our reader marks them ambiguous: timestamps and sexagesimal-looking values.
_STRINGY_PLAIN = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|.*:|=\Z"   # these two: compiled on first use
_YAML11_INT = r"[-+]?(?:0|[1-9][0-9_]*|0[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)\Z"
_YAML11_BOOLS = YAML11_TRUE | YAML11_FALSE


def validate_policy(data: object, kubernetes_minor: int | None = None) -> list[Finding]:
    """All problems kube-apiserver would have with this decoded YAML/JSON document.

    ``kubernetes_minor`` (1.x) selects version-dependent rules; None means the newest.
    """
    findings: list[Finding] = []
    if data is None:
        return [finding("", "empty policy: kube-apiserver refuses a policy with 0 rules", ERROR, DECODE)]
    if not isinstance(data, dict):
        return [finding("", f"a policy must be a mapping (audit.k8s.io/v1 Policy), "
                            f"not {kind_of(data)}", ERROR, DECODE)]
    _check_header(data, findings, kubernetes_minor)
    check_fields(data, "", POLICY_FIELDS, findings, "policy")
    stages = data.get("omitStages")
    _check_stages(stages, "omitStages", findings)
    rules = data.get("rules")
    if isinstance(rules, list):
        for index, rule in enumerate(rules):
            _check_rule(rule, f"rules[{index}]", findings, kubernetes_minor)
    if not rules:
        findings.append(finding("rules", "a policy needs at least one rule: kube-apiserver "
                                         "refuses to load a policy with 0 rules", ERROR, LOAD))
    return findings


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == ERROR]


def is_loadable(findings: Iterable[Finding]) -> bool:
    """True when kube-apiserver would start with the policy (warnings allowed)."""
    return not errors(findings)


def load_policy(data: object, source: str, read: Iterable[Finding] = ()) -> Policy:
    """The decoded Policy, or InputError naming the first reason kube-apiserver refuses it
    (``read``: what reading the file found, see :mod:`kubeadm_audit.policy.document`)."""
    problems = errors(list(read) + validate_policy(data))
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more; run 'kubeadm-audit policy validate')" \
            if len(problems) > 1 else ""
        raise InputError(f"kube-apiserver would refuse this policy: {first.message}{more}",
                         source=source, field=first.path or None)
    return Policy.from_data(data)


# --- document header ------------------------------------------------------------------

def _check_header(data: dict[str, Any], findings: list[Finding], minor: int | None) -> None:
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if api_version is None or api_version == "":
        findings.append(finding("apiVersion", f"missing: kube-apiserver cannot decode a policy "
                                              f"without apiVersion (use {API_VERSION})", ERROR, DECODE))
    elif isinstance(api_version, str) and api_version != API_VERSION:
        removed = REMOVED_API_VERSIONS.get(api_version)
        severity: Severity = ERROR
        if removed:
            message = (f"{api_version} was {removed}; change it to {API_VERSION} "
                       f"(the Policy fields are the same)")
            if minor is not None and minor < AUDIT_V1BETA1_REMOVED_IN:
                severity = WARNING   # still served by this kube-apiserver, but not after an upgrade
        else:
            message = f"unsupported {api_version!r}: kube-apiserver accepts only {API_VERSION}"
        findings.append(finding("apiVersion", message, severity, DECODE,
                                REMOVED_API_VERSION if removed else ""))
    if kind not in (None, "", "Policy") and isinstance(kind, str):
        findings.append(finding("kind", f"{kind!r} is not a policy: kind must be Policy "
                                        f"(or omitted when apiVersion is given)", ERROR, DECODE))


# --- rules --------------------------------------------------------------------------------

def _check_rule(rule: Any, path: str, findings: list[Finding], minor: int | None) -> None:
    if rule is None:
        rule = {}
    elif not isinstance(rule, dict):
        return  # already reported by the type check of "rules"
    check_fields(rule, path, RULE_FIELDS, findings, "rule")
    level = rule.get("level")
    if level is None or level == "":
        findings.append(finding(f"{path}.level", "required: kube-apiserver refuses a rule "
                                                 "without a level" + _case_hint(rule, "level"),
                                ERROR))
    elif isinstance(level, str) and level not in LEVELS:
        findings.append(finding(f"{path}.level", f"unsupported value {level!r}: must be one of "
                                                 f"{', '.join(LEVELS)}" + _hint(level, LEVELS),
                                ERROR))
    urls = _string_list(rule.get("nonResourceURLs"))
    for index, url in enumerate(urls):
        where = f"{path}.nonResourceURLs[{index}]"
        if url == "*":
            continue
        if not url.startswith("/"):
            findings.append(finding(where, f"{url!r}: a non-resource URL must begin with '/' "
                                           f"(or be '*')", ERROR))
        if url and "*" in url[:-1]:
            findings.append(finding(where, f"{url!r}: a non-resource URL wildcard may only be "
                                           f"the last character", ERROR))
    resources = rule.get("resources")
    if isinstance(resources, list):
        for index, entry in enumerate(resources):
            _check_group_resources(entry, f"{path}.resources[{index}]", findings, minor)
    _check_stages(rule.get("omitStages"), f"{path}.omitStages", findings)
    if urls and (_non_empty(resources) or _non_empty(rule.get("namespaces"))):
        findings.append(finding(f"{path}.nonResourceURLs", "a rule cannot apply to both "
                                                           "resources/namespaces and non-resource "
                                                           "URLs", ERROR))


def _check_group_resources(entry: Any, path: str, findings: list[Finding], minor: int | None) -> None:
    if entry is None:
        return
    if not isinstance(entry, dict):
        return  # reported by the type check
    check_fields(entry, path, GROUP_RESOURCES_FIELDS, findings, "resources")
    group = entry.get("group")
    if isinstance(group, str) and group not in ("", "*") and (
            len(group) > 253 or not _DNS1123_SUBDOMAIN.match(group)):
        hint = " (a group has no version: drop the '/...')" if "/" in group else ""
        findings.append(finding(f"{path}.group", f"{group!r} is not a valid API group: "
                                                 f"lower-case DNS subdomain, '' for core or '*'"
                                                 f"{hint}", ERROR))
    if group == "*" and minor is not None and minor < AUDIT_GROUP_WILDCARD_FROM:
        findings.append(finding(f"{path}.group", f"'*' (every API group) needs Kubernetes "
                                                 f"1.{AUDIT_GROUP_WILDCARD_FROM}: kube-apiserver 1.{minor} "
                                                 "refuses it as an invalid API group name; list the groups",
                                ERROR))
    if _string_list(entry.get("resourceNames")) and not _string_list(entry.get("resources")):
        findings.append(finding(f"{path}.resourceNames", "resourceNames requires resources "
                                                         "in the same entry", ERROR))


def _check_stages(stages: Any, path: str, findings: list[Finding]) -> None:
    for index, stage in enumerate(_string_list(stages)):
        if stage not in STAGES:
            findings.append(finding(f"{path}[{index}]", f"unsupported stage {stage!r}: must be one "
                                                        f"of {', '.join(STAGES)}"
                                    + _hint(stage, STAGES), ERROR))


# --- decoding: types and unknown fields ----------------------------------------------------

def check_fields(mapping: dict[Any, Any], path: str, schema: dict[str, str], findings: list[Finding],
                  where_kind: str) -> None:
    prefix = f"{path}." if path else ""
    for key, value in mapping.items():
        name = str(key)
        where = f"{prefix}{name}"
        kind = schema.get(name)
        if kind is None:
            consequence = _misplaced(where_kind, name) or _hint(name, schema).strip(" ()")
            findings.append(finding(where, f"unknown field, kube-apiserver drops it"
                                           f"{': ' + consequence if consequence else ''}",
                                    WARNING, DECODE))
            continue
        check_type(value, kind, where, findings)


def check_type(value: Any, kind: str, path: str, findings: list[Finding]) -> None:
    if value is None:
        return  # JSON null decodes to the zero value
    if kind == "string":
        problem = _not_string(value)
        if problem:
            findings.append(finding(path, f"must be a string, {problem}", ERROR, DECODE))
    elif kind == "bool":
        if not (isinstance(value, bool) or (isinstance(value, str) and value in _YAML11_BOOLS
                                            and type(value) is not str)):
            findings.append(finding(path, f"must be true or false, not {kind_of(value)} "
                                          f"{_short(value)}", ERROR, DECODE))
    elif kind == "any":
        return
    elif kind == "int":
        if isinstance(value, bool) or not (isinstance(value, int) or (re.match(_YAML11_INT, str(value))
                                           and isinstance(value, str) and type(value) is not str)):
            findings.append(finding(path, f"must be an integer, not {kind_of(value)} {_short(value)}",
                                    ERROR, DECODE))
    elif kind in ("mapping", "objectMeta", "stringMap"):
        if not isinstance(value, dict):
            findings.append(finding(path, f"must be a mapping, not {kind_of(value)}", ERROR, DECODE))
        elif kind == "objectMeta":
            check_fields(value, path, OBJECT_META_FIELDS, findings, "metadata")
        elif kind == "stringMap":
            for key, item in value.items():
                check_type(item, "string", f"{path}.{key}", findings)
    elif not isinstance(value, list):
        hint = f" (write [{_short(value)}])" if kind == "strings" and isinstance(value, str) else ""
        findings.append(finding(path, f"must be a list, not {kind_of(value)}{hint}: "
                                      f"kube-apiserver cannot decode it", ERROR, DECODE))
    else:
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            if kind == "strings":
                check_type(item, "string", where, findings)
            elif item is not None and not isinstance(item, dict):
                findings.append(finding(where, f"must be a mapping, not {kind_of(item)} "
                                               f"{_short(item)}", ERROR, DECODE))


def _not_string(value: Any) -> str:
    """Why kube-apiserver's decoder would not read value as a string ('' if it would)."""
    if isinstance(value, str):
        if type(value) is str or re.match(_STRINGY_PLAIN, value):
            return ""
        return f"but {value} is not one for kube-apiserver's YAML reader: quote it ('{value}')"
    return f"not {kind_of(value)} {_short(value)}"


def _misplaced(where: str, name: str) -> str | None:
    """What a field known elsewhere in the policy means when it is dropped here."""
    if where == "policy" and name in RULE_FIELDS:
        return f"'{name}' belongs on a rule (in rules[]), not on the policy"
    if where == "rule" and name in GROUP_RESOURCES_FIELDS:
        return (f"'{name}' belongs inside a resources[] entry; as written "
                f"{_DROPPED_RESOURCE_FIELD[name]}")
    if where == "rule" and name in ("apiVersion", "kind", "rules"):
        return f"'{name}' belongs at the top of the policy"
    if where == "resources" and name in RULE_FIELDS:
        return (f"'{name}' belongs on the rule, not inside resources[]; as written "
                f"{_DROPPED_RULE_FIELD[name]}")
    return None


# --- small helpers ---------------------------------------------------------------------------

def _hint(value: str, choices: Iterable[str]) -> str:
    if len(value) > 100:    # no name is that long; difflib on megabytes costs gigabytes
        return ""
    choices = list(choices)
    for choice in choices:
        if choice.lower() == value.lower():
            return f" (did you mean '{choice}'? names are case-sensitive)"
    import difflib

    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _case_hint(mapping: dict[Any, Any], name: str) -> str:
    for key in mapping:
        if str(key) != name and str(key).lower() == name.lower():
            return f" ('{key}' is not '{name}': field names are case-sensitive)"
    return ""


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return ["" if item is None else item for item in value if item is None or isinstance(item, str)]


def _non_empty(value: Any) -> bool:
    return isinstance(value, list) and bool(value)


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value).lower() \
        if isinstance(value, bool) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
