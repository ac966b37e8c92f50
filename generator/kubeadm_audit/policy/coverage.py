"""Which requests a rule can match, decided symbolically (without a request).

Used by lint to prove that a rule is dead (an earlier rule takes every request
it could match) or that some request of a kind may reach a rule. Proofs are
conservative: :func:`subsumes` returns True only when it is certain, so a False
means "not provable", never "reachable".
"""
from __future__ import annotations

from kubeadm_audit.policy.checker import pattern_matches
from kubeadm_audit.policy.model import GroupResources, Rule


def _subset(inner: tuple, outer: tuple) -> bool:
    """Every value allowed by an ``inner`` list is allowed by ``outer`` (empty = any)."""
    return not outer or (bool(inner) and set(inner) <= set(outer))


def pattern_covers(outer: str, inner: str) -> bool:
    """Every request the resource pattern ``inner`` matches is matched by ``outer``."""
    if outer == "*" or outer == inner:
        return True
    if inner == "*":
        return False
    if outer.endswith("/*"):
        resource = outer.rstrip("/*")
        # inner's requests: exact "R[/S]", "*/S" (any resource) and "R/*"
        if inner.startswith("*/"):
            return False
        if inner.endswith("/*"):
            return inner.rstrip("/*") == resource
        return inner.split("/", 1)[0] == resource
    if outer.startswith("*/"):
        subresource = outer.lstrip("*/")
        if inner.endswith("/*"):
            return False  # R/* also matches bare R, which has no subresource
        if inner.startswith("*/"):
            return inner.lstrip("*/") == subresource
        return "/" in inner and inner.split("/", 1)[1] == subresource
    return False


def _entry_covers(outer: GroupResources, inner: GroupResources) -> bool:
    if outer.group != "*" and outer.group != inner.group:
        return False
    if not outer.resources:
        return True
    if not inner.resources:
        return False
    if outer.resource_names and not _subset(inner.resource_names, outer.resource_names):
        return False
    return all(any(pattern_covers(o, i) for o in outer.resources) for i in inner.resources)


def _matches_everything(rule: Rule) -> bool:
    return not (rule.namespaces or rule.resources or rule.non_resource_urls)


def _url_covers(outer: str, inner: str) -> bool:
    if outer == "*" or outer == inner:
        return True
    if inner == "*" or not outer.endswith("*"):
        return False
    return inner.startswith(outer.rstrip("*"))


def subsumes(earlier: Rule, later: Rule) -> bool:
    """True when every request ``later`` can match is matched by ``earlier`` (proven)."""
    if not (_subset(later.users, earlier.users) and _subset(later.user_groups, earlier.user_groups)
            and _subset(later.verbs, earlier.verbs)):
        return False
    if _matches_everything(earlier):
        return True
    if earlier.is_resource_rule:
        if not later.is_resource_rule:
            return False
        if not _subset(later.namespaces, earlier.namespaces):
            return False
        if not earlier.resources:
            return True
        if not later.resources:
            return False
        return all(any(_entry_covers(o, i) for o in earlier.resources) for i in later.resources)
    # earlier is a non-resource rule
    if not later.is_non_resource_rule:
        return False
    return all(any(_url_covers(o, i) for o in earlier.non_resource_urls)
               for i in later.non_resource_urls)


def may_match_resource(rule: Rule, group: str, resource: str, subresource: str = "",
                       cluster_scoped: bool = False) -> bool:
    """Could the rule match some request for group/resource[/subresource]?

    Users, verbs and names are taken as satisfiable (some request has them), and so
    are namespaces -- except that cluster-scoped requests only have namespace "".
    """
    if rule.is_non_resource_rule:
        return False
    if cluster_scoped and rule.namespaces and "" not in rule.namespaces:
        return False
    if not rule.resources:
        return True
    return any(entry.group in (group, "*") and (
        not entry.resources or any(pattern_matches(p, resource, subresource)
                                   for p in entry.resources))
        for entry in rule.resources)


def takes_all_of_resource(rule: Rule, group: str, resource: str, subresource: str = "") -> bool:
    """Does the rule match every request for group/resource[/subresource]? (proven)"""
    target = Rule(level="", resources=(GroupResources(
        group, (f"{resource}/{subresource}" if subresource else resource,)),))
    return subsumes(rule, target)


def can_match(pattern: str) -> bool:
    """False for resource patterns no request can match ('', '*/*', 'a/b/c', ...)."""
    if pattern == "*":
        return True
    tail = pattern.lstrip("*/")
    if pattern.startswith("*/") and tail and "/" not in tail:
        return True
    head = pattern.rstrip("/*")
    if pattern.endswith("/*") and head and "/" not in head:
        return True
    parts = pattern.split("/")
    return len(parts) <= 2 and all(part and part != "*" for part in parts)
