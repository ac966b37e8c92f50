"""The mistakes people really make in audit policies, as findings with stable ids.

Ids never change meaning (documented in :data:`CHECKS`). Severities: ``error`` (the
policy is refused, leaks credentials, or silently means something else than it
says), ``warning`` (likely wrong or costly), ``info`` (worth knowing). Proofs
about rule reachability are conservative (:mod:`kubeadm_audit.policy.coverage`).
"""
from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from kubeadm_audit.policy import apigroups, coverage, validation
from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.model import Policy, Request, Rule, level_rank

ERROR, WARNING, INFO = "error", "warning", "info"

#: id -> what it reports (the stable catalogue; `policy lint --list` prints it).
CHECKS = {
    "KA001": "kube-apiserver refuses the policy (validation error)",
    "KA002": "removed policy apiVersion (audit.k8s.io/v1alpha1, v1beta1)",
    "KA003": "field kube-apiserver silently drops (an error when that widens the rule)",
    "KA010": "Secrets may be logged at Request/RequestResponse (credentials in the log)",
    "KA011": "ConfigMaps may be logged at Request/RequestResponse (CIS 3.2.2 asks Metadata)",
    "KA012": "TokenReviews or TokenRequests may be logged at Request/RequestResponse (tokens)",
    "KA013": "events may be logged at Request/RequestResponse (volume)",
    "KA020": "rule can never match: an earlier rule takes every request it would match",
    "KA021": "resource pattern that no request can match",
    "KA022": "resource in the wrong API group",
    "KA023": "resource no longer served in that group at the target Kubernetes version",
    "KA024": "unknown resource in a built-in API group",
    "KA030": "no catch-all rule: unmatched requests are not audited",
    "KA031": "RequestReceived not omitted: two events per request",
    "KA032": "CIS 3.2.2: a sensitive request is not logged at Metadata or above",
    "KA033": "omitManagedFields not set while request/response bodies are logged",
    "KA034": "'*' in users/userGroups/verbs/namespaces is literal, not a wildcard",
    "KA035": "verb that no request carries",
}


@dataclass(frozen=True)
class LintFinding:
    id: str
    severity: str
    path: str
    message: str
    hint: str = ""

    def to_json(self) -> dict:
        return {"id": self.id, "severity": self.severity, "path": self.path,
                "message": self.message, "hint": self.hint}


def lint_policy(data: Any, kubernetes_minor: int) -> list[LintFinding]:
    """All findings for a decoded policy document, ordered by where they are."""
    findings = list(_validation(data, kubernetes_minor))
    policy = Policy.from_data(data)
    if policy.rules:
        for check in (_sensitive, _shadowed, _dead_patterns, _no_catch_all,
                      _request_received, _cis, _managed_fields, _literal_stars, _verbs):
            findings.extend(check(policy))
        findings.extend(_api_groups(policy, kubernetes_minor))
    return sorted(findings, key=lambda f: (_path_key(f.path), f.id))


def has_errors(findings: list[LintFinding]) -> bool:
    return any(f.severity == ERROR for f in findings)


# --- KA001-KA003: what kube-apiserver itself does with the file -----------------------------

#: Rule fields whose loss makes the rule match more than it says.
_WIDENING = ("verbs", "users", "userGroups", "namespaces", "resourceNames")


def _validation(data: Any, kubernetes_minor: int) -> Iterator[LintFinding]:
    for finding in validation.validate_policy(data, kubernetes_minor):
        removed = finding.path == "apiVersion" and any(
            version in finding.message for version in validation.REMOVED_API_VERSIONS)
        if removed:
            yield LintFinding("KA002", finding.severity, finding.path, finding.message,
                              "change apiVersion to audit.k8s.io/v1")
            continue
        if finding.severity == validation.ERROR:
            yield LintFinding("KA001", ERROR, finding.path, finding.message,
                              "kube-apiserver will not start with this policy")
            continue
        name = finding.path.rsplit(".", 1)[-1]
        widening = name in _WIDENING
        yield LintFinding("KA003", ERROR if widening else WARNING, finding.path, finding.message,
                          _move_hint(finding.path) if widening else "remove or fix the field")


def _move_hint(path: str) -> str:
    if ".resources[" in path:
        rule = path.split(".resources[", 1)[0]
        name = path.rsplit(".", 1)[-1]
        return f"indent '{name}' as a field of {rule} (a sibling of 'resources')"
    return "move the field to where it belongs"


# --- KA010-KA013: bodies of sensitive or noisy resources -----------------------------------

_WRITES = frozenset({"create", "update", "patch"})

#: (id, severity, group, resource, subresource, label, why, verbs whose *request* body
#: carries the data: at Request level only those leak; at RequestResponse every verb
#: does, through the response. None: any verb matters (volume).) Only TokenReviews are
#: cluster-scoped.
_BODY_RISKS = (
    ("KA010", ERROR, "", "secrets", "", "Secrets",
     "their bodies carry the secret data", _WRITES),
    ("KA011", WARNING, "", "configmaps", "", "ConfigMaps",
     "they often hold credentials; CIS 3.2.2 asks Metadata (Falco's configmap rules need "
     "bodies)", _WRITES),
    ("KA012", ERROR, "authentication.k8s.io", "tokenreviews", "", "TokenReviews",
     "their bodies carry bearer tokens", frozenset({"create"})),
    ("KA012", ERROR, "", "serviceaccounts", "token", "TokenRequests (serviceaccounts/token)",
     "their responses carry service-account tokens", frozenset()),
    ("KA013", INFO, "", "events", "", "core events", "they are the noisiest resource", None),
    ("KA013", INFO, "events.k8s.io", "events", "", "events.k8s.io events",
     "they are the noisiest resource", None),
)


def _exposes(rule: Rule, request_body_verbs: Optional[frozenset]) -> bool:
    if rule.level == "RequestResponse":
        return True
    if rule.level != "Request":
        return False
    if request_body_verbs is None:
        return True
    return bool(request_body_verbs) and (not rule.verbs or bool(request_body_verbs & set(rule.verbs)))


def _sensitive(policy: Policy) -> Iterator[LintFinding]:
    for check_id, severity, group, resource, subresource, label, why, verbs in _BODY_RISKS:
        for index, rule in enumerate(policy.rules):
            if not coverage.may_match_resource(rule, group, resource, subresource,
                                               cluster_scoped=resource == "tokenreviews"):
                continue
            if _exposes(rule, verbs):
                yield LintFinding(
                    check_id, severity, f"rules[{index}].level",
                    f"{label} reaching this rule are logged at {rule.level}: {why}",
                    f"add a rule logging {label} at Metadata before rules[{index}]")
            if coverage.takes_all_of_resource(rule, group, resource, subresource):
                break


# --- KA020-KA024: rules and resources that do not mean what they say --------------------------

def _shadowed(policy: Policy) -> Iterator[LintFinding]:
    for later_index, earlier_index in enumerate(coverage.first_subsuming(policy.rules)):
        if earlier_index is None:
            continue
        earlier, later = policy.rules[earlier_index], policy.rules[later_index]
        same = earlier.level == later.level
        yield LintFinding(
            "KA020", INFO if same else WARNING, f"rules[{later_index}]",
            f"can never match: rules[{earlier_index}] (level {earlier.level}) takes every "
            f"request it would match" + (", at the same level" if same else
                                         f", so {later.level} is never applied"),
            f"move it before rules[{earlier_index}] or narrow rules[{earlier_index}]"
            if not same else "remove the redundant rule")


def _dead_patterns(policy: Policy) -> Iterator[LintFinding]:
    for index, rule in enumerate(policy.rules):
        for entry_index, entry in enumerate(rule.resources):
            for pattern_index, pattern in enumerate(entry.resources):
                if not coverage.can_match(pattern):
                    yield LintFinding(
                        "KA021", WARNING,
                        f"rules[{index}].resources[{entry_index}].resources[{pattern_index}]",
                        f"{pattern!r} matches no request",
                        "use '*' for every resource, 'R/*' for R and its subresources, "
                        "'*/S' for subresource S" if "*" in pattern or not pattern
                        else "a pattern is 'resource' or 'resource/subresource'")


def _resource_of(pattern: str) -> str:
    if pattern == "*" or pattern.startswith("*/"):
        return ""
    return pattern[:-2] if pattern.endswith("/*") else pattern.split("/", 1)[0]


def _api_groups(policy: Policy, minor: int) -> Iterator[LintFinding]:
    table = apigroups.BUILTIN_GROUPS
    for index, rule in enumerate(policy.rules):
        for entry_index, entry in enumerate(rule.resources):
            group = entry.group
            if group == "*":
                continue
            known = table.get(group)
            close = _close_group(group) if known is None else None
            for pattern_index, pattern in enumerate(entry.resources):
                resource = _resource_of(pattern)
                if not resource:
                    continue
                path = f"rules[{index}].resources[{entry_index}]"
                shown = repr(group) if group else "core ('')"
                serving = apigroups.groups_serving(resource, minor)
                where = " or ".join(repr(g) if g else "core ('')" for g in serving)
                if known is None:
                    if close is not None and resource in table[close]:
                        yield LintFinding("KA022", ERROR, f"{path}.group",
                                          f"{group!r} is not an API group; {resource!r} is served "
                                          f"by {close!r}", f"set group: {close}")
                    continue
                if resource in known:
                    removed = known[resource]
                    if removed is not None and minor >= removed:
                        yield LintFinding(
                            "KA023", WARNING, f"{path}.resources[{pattern_index}]",
                            f"{resource!r} in group {shown} is not served since Kubernetes "
                            f"1.{removed} (target 1.{minor}): this entry matches nothing",
                            f"use group {where}" if serving else "remove the entry")
                    continue
                if serving or any(resource in resources for resources in table.values()):
                    owners = serving or [g for g, r in table.items() if resource in r]
                    where = " or ".join(repr(g) if g else "core ('')" for g in owners)
                    yield LintFinding(
                        "KA022", ERROR, f"{path}.resources[{pattern_index}]",
                        f"{resource!r} is not in group {shown}: it is served by {where}, so this "
                        f"entry matches nothing", f"add an entry with group: {owners[0]!r}"
                        if owners[0] else "add an entry with group: '' (core)")
                    continue
                guess = _close_resource(resource, group)
                yield LintFinding(
                    "KA024", WARNING, f"{path}.resources[{pattern_index}]",
                    f"{resource!r} is not a resource of the built-in group {shown}",
                    f"did you mean {guess!r}?" if guess else
                    "custom resources live in their own API group, not a built-in one")


# difflib costs ~50 us a call: once per distinct name, not once per pattern.
@functools.lru_cache(maxsize=4096)
def _close_group(group: str) -> Optional[str]:
    """The built-in group ``group`` is probably a typo of, or None."""
    close = difflib.get_close_matches(group, [g for g in apigroups.BUILTIN_GROUPS if g], n=1,
                                      cutoff=0.8)
    return close[0] if close else None


@functools.lru_cache(maxsize=4096)
def _close_resource(resource: str, group: str) -> Optional[str]:
    """The resource of built-in ``group`` that ``resource`` is probably a typo of, or None."""
    close = difflib.get_close_matches(resource, list(apigroups.BUILTIN_GROUPS[group]), n=1,
                                      cutoff=0.75)
    return close[0] if close else None


# --- KA030-KA035: coverage, volume and literal-minded fields ---------------------------------

def _is_catch_all(rule: Rule) -> bool:
    return not (rule.users or rule.user_groups or rule.verbs or rule.namespaces
                or rule.resources or rule.non_resource_urls)


def _no_catch_all(policy: Policy) -> Iterator[LintFinding]:
    if not any(_is_catch_all(rule) for rule in policy.rules):
        yield LintFinding("KA030", WARNING, "rules",
                          "no catch-all rule: requests no rule matches get level None and are "
                          "not audited (CIS 3.2.2: most requests at least at Metadata)",
                          "end the rules with '- level: Metadata'")


def _request_received(policy: Policy) -> Iterator[LintFinding]:
    if "RequestReceived" in policy.omit_stages:
        return
    logging = [i for i, rule in enumerate(policy.rules)
               if rule.level != "None" and "RequestReceived" not in rule.omit_stages]
    if logging:
        shown = ", ".join(f"rules[{i}]" for i in logging[:5]) + (" ..." if len(logging) > 5 else "")
        yield LintFinding("KA031", WARNING, "omitStages",
                          f"RequestReceived is logged for {shown}: every request yields an extra "
                          f"event that repeats the request without its outcome",
                          "add 'omitStages: [RequestReceived]' at the top of the policy")


#: CIS 3.2.2 requests that should be logged at Metadata or above:
#: (label, verb, group, resource, subresource), done by an ordinary user in "default".
_CIS_PROBES = (
    ("Secret access", "get", "", "secrets", ""),
    ("Pod changes", "create", "", "pods", ""),
    ("Deployment changes", "patch", "apps", "deployments", ""),
    ("pods/exec", "create", "", "pods", "exec"),
    ("pods/attach", "create", "", "pods", "attach"),
    ("pods/portforward", "create", "", "pods", "portforward"),
    ("pods/proxy", "get", "", "pods", "proxy"),
    ("services/proxy", "get", "", "services", "proxy"),
)


def _cis(policy: Policy) -> Iterator[LintFinding]:
    checker = Checker(policy)
    for label, verb, group, resource, subresource in _CIS_PROBES:
        request = Request(user="jane@example.com", groups=("system:authenticated",), verb=verb,
                          namespace="default", api_group=group, resource=resource,
                          subresource=subresource, name="" if verb == "create" and not subresource
                          else "x", resource_request=True)
        decision = checker.evaluate(request)
        if decision.level == "None":
            path = "rules" if decision.rule_index is None else f"rules[{decision.rule_index}]"
            cause = ("no rule matches it" if decision.rule_index is None
                     else f"rules[{decision.rule_index}] gives it level None")
            yield LintFinding("KA032", WARNING, path,
                              f"CIS 3.2.2: {label} by an ordinary user ({request.describe()}) is "
                              f"not audited: {cause}",
                              "log it at Metadata or above (a rule before the one that drops it)")


def _managed_fields(policy: Policy) -> Iterator[LintFinding]:
    if policy.omit_managed_fields:
        return
    bodies = [i for i, rule in enumerate(policy.rules)
              if level_rank(rule.level) >= level_rank("Request") and not rule.omit_managed_fields]
    if bodies:
        yield LintFinding("KA033", INFO, "omitManagedFields",
                          f"bodies logged by rules[{bodies[0]}]"
                          f"{' and others' if len(bodies) > 1 else ''} keep metadata.managedFields,"
                          f" which adds bulk and no security value",
                          "set 'omitManagedFields: true' at the top of the policy")


def _literal_stars(policy: Policy) -> Iterator[LintFinding]:
    for index, rule in enumerate(policy.rules):
        for field, values in (("users", rule.users), ("userGroups", rule.user_groups),
                              ("verbs", rule.verbs), ("namespaces", rule.namespaces)):
            for value_index, value in enumerate(values):
                if "*" in value:
                    yield LintFinding("KA034", WARNING, f"rules[{index}].{field}[{value_index}]",
                                      f"{value!r} is compared literally: it is not a wildcard "
                                      f"in {field}",
                                      f"omit '{field}' to match every value")


_REQUEST_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete",
                  "deletecollection", "proxy", "post", "put", "head", "options")
_RBAC_ONLY_VERBS = ("use", "bind", "escalate", "impersonate", "approve", "sign", "attest")


def _verbs(policy: Policy) -> Iterator[LintFinding]:
    for index, rule in enumerate(policy.rules):
        for verb_index, verb in enumerate(rule.verbs):
            if verb in _REQUEST_VERBS or "*" in verb:
                continue
            if verb in _RBAC_ONLY_VERBS:
                hint = (f"'{verb}' is checked by authorization; the request itself carries "
                        f"another verb (e.g. create, get)")
            else:
                guess = _verb_guess(verb)
                hint = f"did you mean '{guess}'? verbs are case-sensitive" if guess else \
                    f"request verbs are: {', '.join(_REQUEST_VERBS)}"
            yield LintFinding("KA035", WARNING, f"rules[{index}].verbs[{verb_index}]",
                              f"no request has verb {verb!r}", hint)


def _verb_guess(verb: str) -> Optional[str]:
    if verb.lower() in _REQUEST_VERBS:
        return verb.lower()
    close = difflib.get_close_matches(verb.lower(), _REQUEST_VERBS, n=1, cutoff=0.75)
    return close[0] if close else None


def _path_key(path: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"\[(\d+)\]", path))
