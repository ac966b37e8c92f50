"""Which level does kube-apiserver give a request? The policy checker's semantics.

First matching rule wins. users, userGroups and verbs are literal (``*`` is not a
wildcard); a rule with namespaces or resources is decided only by the resource
check; otherwise one with nonResourceURLs only by the path check; otherwise it
matches everything, with or without a user. In resources, ``*`` matches any
resource, ``R/*`` matches R *and* its subresources, ``*/S`` subresource S of any
resource. Exactly one ``*/`` prefix or ``/*`` suffix is cut (``strings.TrimPrefix/TrimSuffix``,
as kube-apiserver has done since 1.18), so ``pods//*``, ``*//log``, ``pods*/*`` and ``*/*log``
match nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeadm_audit.policy.model import Decision, Policy, Request, Rule, sort_stages

# Why a rule did not match: the first failing check, as upstream checks them.
NO_USER = "no-user"
USERS = "users"
USER_GROUPS = "userGroups"
VERBS = "verbs"
NOT_RESOURCE = "not-resource"
NAMESPACES = "namespaces"
RESOURCES = "resources"
NOT_NON_RESOURCE = "not-non-resource"
URLS = "nonResourceURLs"


def pattern_matches(pattern: str, resource: str, subresource: str) -> bool:
    """Does one ``resources[].resources`` entry match resource[/subresource]?"""
    if pattern == "*":
        return True
    if pattern == (f"{resource}/{subresource}" if subresource else resource):
        return True
    if subresource and pattern.startswith("*/") and subresource == pattern[2:]:
        return True
    return pattern.endswith("/*") and resource == pattern[:-2]


def resource_entry_match(rule: Rule, request: Request) -> tuple[int, str] | None:
    """(index of the resources[] entry, pattern) that matches, or None.

    The pattern is "" when the entry has no resources (the whole group).
    """
    resource, subresource, name = request.resource, request.subresource, request.name
    for index, entry in enumerate(rule.resources):
        if entry.group != request.api_group and entry.group != "*":
            continue
        if not entry.resources:
            return index, ""
        if entry.resource_names and name not in entry.resource_names:
            continue
        for pattern in entry.resources:
            if pattern_matches(pattern, resource, subresource):
                return index, pattern
    return None


def url_match(rule: Rule, path: str) -> str | None:
    """The nonResourceURLs entry that matches path, or None."""
    for spec in rule.non_resource_urls:
        if spec == "*" or spec == path or (spec.endswith("*") and path.startswith(spec.rstrip("*"))):
            return spec
    return None


def mismatch(rule: Rule, request: Request) -> str | None:
    """None when the rule matches the request, else the check that failed."""
    if rule.users:
        if request.user is None:
            return NO_USER
        if request.user not in rule.users:
            return USERS
    if rule.user_groups:
        if request.user is None:
            return NO_USER
        if not any(group in rule.user_groups for group in request.groups):
            return USER_GROUPS
    if rule.verbs and request.verb not in rule.verbs:
        return VERBS
    if rule.namespaces or rule.resources:
        if not request.resource_request:
            return NOT_RESOURCE
        if rule.namespaces and request.namespace not in rule.namespaces:
            return NAMESPACES
        if rule.resources and resource_entry_match(rule, request) is None:
            return RESOURCES
        return None
    if rule.non_resource_urls:
        if request.resource_request:
            return NOT_NON_RESOURCE
        if url_match(rule, request.path) is None:
            return URLS
    return None


@dataclass(frozen=True)
class Step:
    """One rule tried while explaining a request."""

    index: int
    level: str
    matched: bool
    reason: str


@dataclass(frozen=True)
class Explanation:
    request: Request
    decision: Decision
    steps: tuple[Step, ...]


class Checker:
    """Evaluates requests against one policy, like kube-apiserver's policy checker."""

    def __init__(self, policy: Policy | dict[str, Any]) -> None:
        self.policy = policy if isinstance(policy, Policy) else Policy.from_data(policy)
        base = self.policy.omit_stages
        default_omf = self.policy.omit_managed_fields
        # Precomputed result per rule: the stages are the union with the policy's.
        self._decisions = tuple(
            Decision(level=rule.level,
                     omit_stages=sort_stages(base + rule.omit_stages),
                     omit_managed_fields=default_omf if rule.omit_managed_fields is None
                     else rule.omit_managed_fields,
                     rule_index=index)
            for index, rule in enumerate(self.policy.rules))
        self._no_match = Decision(level="None", omit_stages=sort_stages(base),
                                  omit_managed_fields=default_omf, rule_index=None)

    def evaluate(self, request: Request) -> Decision:
        for rule, decision in zip(self.policy.rules, self._decisions):
            if mismatch(rule, request) is None:
                return decision
        return self._no_match

    def explain(self, request: Request) -> Explanation:
        steps = []
        for index, (rule, decision) in enumerate(zip(self.policy.rules, self._decisions)):
            failed = mismatch(rule, request)
            if failed is None:
                steps.append(Step(index, rule.level, True, why_matched(rule, request)))
                return Explanation(request, decision, tuple(steps))
            steps.append(Step(index, rule.level, False, why_not(failed, rule, request)))
        return Explanation(request, self._no_match, tuple(steps))


def why_not(failed: str, rule: Rule, request: Request) -> str:
    """Human reason for a mismatch code from :func:`mismatch`."""
    if failed == NO_USER:
        return "the request has no user (unauthenticated) and the rule names users/userGroups"
    if failed == USERS:
        return f"user {request.user!r} is not in users {_list(rule.users)}"
    if failed == USER_GROUPS:
        return f"none of the groups {_list(request.groups)} is in userGroups {_list(rule.user_groups)}"
    if failed == VERBS:
        return f"verb {request.verb!r} is not in verbs {_list(rule.verbs)}"
    if failed == NOT_RESOURCE:
        return "a resource rule (resources/namespaces) never matches a non-resource request"
    if failed == NAMESPACES:
        return (f"namespace {request.namespace!r} is not in namespaces {_list(rule.namespaces)}"
                + (" ('' means no namespace)" if not request.namespace else ""))
    if failed == RESOURCES:
        group = request.api_group or "core"
        named = f" named {request.name!r}" if request.name else ""
        return f"{request.combined_resource!r} in group {group}{named} matches no resources[] entry"
    if failed == NOT_NON_RESOURCE:
        return "a nonResourceURLs rule never matches a resource request"
    return f"path {request.path!r} matches no nonResourceURLs entry {_list(rule.non_resource_urls)}"


def why_matched(rule: Rule, request: Request) -> str:
    parts = []
    if rule.users:
        parts.append(f"user {request.user!r} is in users")
    if rule.user_groups:
        hit = next(g for g in request.groups if g in rule.user_groups)
        parts.append(f"group {hit!r} is in userGroups")
    if rule.verbs:
        parts.append(f"verb {request.verb!r} is in verbs")
    if rule.namespaces:
        parts.append(f"namespace {request.namespace!r} is in namespaces")
    if rule.resources:
        index, pattern = resource_entry_match(rule, request) or (0, "")
        entry = rule.resources[index]
        what = f"resource {pattern!r}" if pattern else "every resource"
        parts.append(f"resources[{index}] (group {entry.group!r}, {what}) covers "
                     f"{request.combined_resource!r}")
    elif rule.non_resource_urls and not rule.namespaces:
        parts.append(f"path {request.path!r} matches {url_match(rule, request.path)!r}")
    if not parts:
        return "the rule has no conditions, so it matches every request"
    return "; ".join(parts)


def _list(values: Any) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"
