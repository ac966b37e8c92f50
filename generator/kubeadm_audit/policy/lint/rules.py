"""KA020-KA024: rules and resource entries that do not mean what they say.

Proofs about rule reachability are conservative (:mod:`kubeadm_audit.policy.coverage`).
"""
from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator

from kubeadm_audit.findings import Finding, Severity
from kubeadm_audit.policy import apigroups, coverage
from kubeadm_audit.policy.lint.registry import Context, check

_HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
_TAIL = "- level: Metadata\n"


@check("KA020", Severity.WARNING, "rule can never match: an earlier rule takes every request it would match",
       """An earlier rule matches every request this one would (same or wider users, groups,
       verbs, namespaces, resources, URLs), so this rule never applies: a warning when it asks
       for another level (which is then never used), info when the level is the same.""",
       passing=_HEAD + "- level: None\n  users: [system:kube-proxy]\n  verbs: [watch]\n"
                       "- level: None\n  verbs: [watch]\n" + _TAIL,
       failing=_HEAD + "- level: None\n  verbs: [watch]\n"
                       "- level: RequestResponse\n  users: [system:kube-proxy]\n  verbs: [watch]\n"
               + _TAIL)
def shadowed(context: Context) -> Iterator[Finding]:
    rules = context.policy.rules
    for later_index, earlier_index in enumerate(coverage.first_subsuming(rules)):
        if earlier_index is None:
            continue
        earlier, later = rules[earlier_index], rules[later_index]
        same = earlier.level == later.level
        yield Finding(
            "KA020", Severity.INFO if same else Severity.WARNING,
            f"can never match: rules[{earlier_index}] (level {earlier.level}) takes every "
            f"request it would match" + (", at the same level" if same else
                                         f", so {later.level} is never applied"),
            path=f"rules[{later_index}]",
            hint=f"move it before rules[{earlier_index}] or narrow rules[{earlier_index}]"
            if not same else "remove the redundant rule")


@check("KA021", Severity.WARNING, "resource pattern that no request can match",
       """A resources[] pattern is 'resource', 'resource/subresource', '*', 'resource/*' or
       '*/subresource'; anything else ('*/*', 'a/b/c', '', 'pods*') matches no request.""",
       passing=_HEAD + "- level: None\n  resources: [{group: '', resources: ['pods/*']}]\n" + _TAIL,
       failing=_HEAD + "- level: None\n  resources: [{group: '', resources: ['*/*']}]\n" + _TAIL)
def dead_patterns(context: Context) -> Iterator[Finding]:
    for index, rule in enumerate(context.policy.rules):
        for entry_index, entry in enumerate(rule.resources):
            for pattern_index, pattern in enumerate(entry.resources):
                if not coverage.can_match(pattern):
                    yield Finding(
                        "KA021", Severity.WARNING, f"{pattern!r} matches no request",
                        path=f"rules[{index}].resources[{entry_index}].resources[{pattern_index}]",
                        hint="use '*' for every resource, 'R/*' for R and its subresources, "
                        "'*/S' for subresource S" if "*" in pattern or not pattern
                        else "a pattern is 'resource' or 'resource/subresource'")


def _resource_of(pattern: str) -> str:
    if pattern == "*" or pattern.startswith("*/"):
        return ""
    return pattern[:-2] if pattern.endswith("/*") else pattern.split("/", 1)[0]


def _shown(group: str) -> str:
    return repr(group) if group else "core ('')"


def _api_groups(context: Context) -> Iterator[Finding]:
    """KA022-KA024 in one walk over the resource entries (each check takes its share)."""
    table = apigroups.BUILTIN_GROUPS
    minor = context.minor
    owners: dict[str, tuple[list[str], list[str]]] = {}   # a policy repeats its resource names

    def groups_of(resource: str) -> tuple[list[str], list[str]]:
        """(groups serving ``resource`` at ``minor``, groups that ever had it)."""
        if resource not in owners:
            owners[resource] = (apigroups.groups_serving(resource, minor),
                                [g for g, known in table.items() if resource in known])
        return owners[resource]

    for index, rule in enumerate(context.policy.rules):
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
                shown = _shown(group)
                if known is None:
                    if close is not None and resource in table[close]:
                        yield Finding("KA022", Severity.ERROR,
                                      f"{group!r} is not an API group; {resource!r} is served by {close!r}",
                                      path=f"{path}.group", hint=f"set group: {close}")
                    continue
                if resource in known:
                    removed = known[resource]
                    if removed is not None and minor >= removed:
                        serving = groups_of(resource)[0]
                        where = " or ".join(_shown(g) for g in serving)
                        yield Finding(
                            "KA023", Severity.WARNING,
                            f"{resource!r} in group {shown} is not served since Kubernetes "
                            f"1.{removed} (target 1.{minor}): this entry matches nothing",
                            path=f"{path}.resources[{pattern_index}]",
                            hint=f"use group {where}" if serving else "remove the entry")
                    continue
                serving, ever = groups_of(resource)
                if serving or ever:
                    homes = serving or ever
                    where = " or ".join(_shown(g) for g in homes)
                    yield Finding(
                        "KA022", Severity.ERROR,
                        f"{resource!r} is not in group {shown}: it is served by {where}, so this "
                        f"entry matches nothing", path=f"{path}.resources[{pattern_index}]",
                        hint=f"add an entry with group: {homes[0]!r}"
                        if homes[0] else "add an entry with group: '' (core)")
                    continue
                guess = _close_resource(resource, group)
                yield Finding(
                    "KA024", Severity.WARNING,
                    f"{resource!r} is not a resource of the built-in group {shown}",
                    path=f"{path}.resources[{pattern_index}]",
                    hint=f"did you mean {guess!r}?" if guess else
                    "custom resources live in their own API group, not a built-in one")


def _share(context: Context, check_id: str) -> list[Finding]:
    return [f for f in context.shared("api-groups", lambda: _api_groups(context)) if f.id == check_id]


@check("KA022", Severity.ERROR, "resource in the wrong API group",
       """The entry names a built-in resource under a group that does not serve it (deployments
       in core, pods in apps) or a misspelt group: the entry matches nothing, so the rule does
       not cover what it says.""",
       passing=_HEAD + "- level: Metadata\n  resources: [{group: apps, resources: [deployments]}]\n" + _TAIL,
       failing=_HEAD + "- level: Metadata\n  resources: [{group: '', resources: [deployments]}]\n" + _TAIL)
def wrong_group(context: Context) -> list[Finding]:
    return _share(context, "KA022")


@check("KA023", Severity.WARNING, "resource no longer served in that group at the target Kubernetes version",
       """Resources move and go (extensions/ingresses, policy/podsecuritypolicies): from the
       release that stopped serving them (see --kubernetes-version) the entry matches nothing.""",
       passing=_HEAD + "- level: Metadata\n  resources: [{group: networking.k8s.io, resources: [ingresses]}]\n"
               + _TAIL,
       failing=_HEAD + "- level: Metadata\n  resources: [{group: extensions, resources: [ingresses]}]\n"
               + _TAIL)
def no_longer_served(context: Context) -> list[Finding]:
    return _share(context, "KA023")


@check("KA024", Severity.WARNING, "unknown resource in a built-in API group",
       """A built-in group does not have that resource (a typo, a singular, or a custom resource
       put in a built-in group): the entry matches nothing.""",
       passing=_HEAD + "- level: Metadata\n  resources: [{group: '', resources: [pods]}]\n" + _TAIL,
       failing=_HEAD + "- level: Metadata\n  resources: [{group: '', resources: [pod]}]\n" + _TAIL)
def unknown_resource(context: Context) -> list[Finding]:
    return _share(context, "KA024")


# difflib costs ~50 us a call: once per distinct name, not once per pattern.
@functools.lru_cache(maxsize=4096)
def _close_group(group: str) -> str | None:
    """The built-in group ``group`` is probably a typo of, or None."""
    close = difflib.get_close_matches(group, [g for g in apigroups.BUILTIN_GROUPS if g], n=1,
                                      cutoff=0.8)
    return close[0] if close else None


@functools.lru_cache(maxsize=4096)
def _close_resource(resource: str, group: str) -> str | None:
    """The resource of built-in ``group`` that ``resource`` is probably a typo of, or None."""
    close = difflib.get_close_matches(resource, list(apigroups.BUILTIN_GROUPS[group]), n=1,
                                      cutoff=0.75)
    return close[0] if close else None
