"""Which requests a rule can match, decided symbolically (without a request).

Used by lint to prove that a rule is dead (an earlier rule takes every request
it could match) or that some request of a kind may reach a rule. Proofs are
conservative: :func:`subsumes` returns True only when it is certain, so a False
means "not provable", never "reachable".
"""
from __future__ import annotations

from collections.abc import Sequence

from kubeadm_audit.policy.checker import pattern_matches
from kubeadm_audit.policy.model import GroupResources, Rule


def _subset(inner: tuple[str, ...], outer: tuple[str, ...]) -> bool:
    """Every value allowed by an ``inner`` list is allowed by ``outer`` (empty = any)."""
    return not outer or (bool(inner) and set(inner) <= set(outer))


def pattern_covers(outer: str, inner: str) -> bool:
    """Every request the resource pattern ``inner`` matches is matched by ``outer``."""
    if outer == "*" or outer == inner:
        return True
    if inner == "*":
        return False
    if outer.endswith("/*"):
        resource = outer[:-2]
        # inner's requests: exact "R[/S]", "*/S" (any resource) and "R/*"
        if inner.startswith("*/"):
            return False
        if inner.endswith("/*"):
            return inner[:-2] == resource
        return inner.split("/", 1)[0] == resource
    if outer.startswith("*/"):
        subresource = outer[2:]
        if inner.endswith("/*"):
            return False  # R/* also matches bare R, which has no subresource
        if inner.startswith("*/"):
            return inner[2:] == subresource
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
    # Exactly one "*/" or "/*" is cut (TrimPrefix/TrimSuffix); what is left is literal, and
    # no real resource or subresource name contains "/" or "*".
    tail, head = pattern[2:], pattern[:-2]
    if pattern.startswith("*/") and tail and not set(tail) & {"/", "*"}:
        return True
    if pattern.endswith("/*") and head and not set(head) & {"/", "*"}:
        return True
    parts = pattern.split("/")
    return len(parts) <= 2 and all(part and part != "*" for part in parts)


# --- every rule against every earlier one, without comparing them pairwise -------------------
#
# ``subsumes`` over all pairs costs rules^2 x patterns^2. ``first_subsuming`` gets the same
# answers from inverted indexes over the earlier rules: for each condition of a later rule,
# the set of earlier rules (or resources[] entries) that satisfy it, intersected in C. Each
# index mirrors one branch of ``subsumes``/``pattern_covers`` exactly; a test compares the two.

def _inner_resource_key(pattern: str) -> str | None:
    """The R an outer ``R/*`` must name to cover ``pattern`` (None: no ``R/*`` covers it)."""
    if pattern.startswith("*/"):
        return None
    return pattern.rstrip("/*") if pattern.endswith("/*") else pattern.split("/", 1)[0]


def _inner_subresource_key(pattern: str) -> str | None:
    """The S an outer ``*/S`` must name to cover ``pattern`` (None: no ``*/S`` covers it)."""
    if pattern.endswith("/*"):
        return None
    if pattern.startswith("*/"):
        return pattern.lstrip("*/")
    return pattern.split("/", 1)[1] if "/" in pattern else None


class _Members:
    """Which indexed items allow a list value: those with the list empty ("any") or holding it."""

    def __init__(self) -> None:
        self.any: set[int] = set()
        self.holding: dict[str, set[int]] = {}

    def add(self, item: int, values: tuple[str, ...]) -> None:
        if not values:
            self.any.add(item)
        for value in set(values):
            self.holding.setdefault(value, set()).add(item)

    def allowing(self, values: tuple[str, ...]) -> set[int]:
        """Items whose list is empty or contains every one of ``values`` (``_subset``)."""
        if not values:
            return self.any
        result: set[int] | None = None
        for value in set(values):
            holders = self.holding.get(value)
            if not holders:
                return self.any
            result = set(holders) if result is None else result & holders
            if not result:
                return self.any
        return self.any | result if result else self.any


class _Index:
    """The earlier rules, indexed by what each one covers."""

    def __init__(self) -> None:
        self.users, self.user_groups, self.verbs = _Members(), _Members(), _Members()
        self.namespaces = _Members()
        self.everything: set[int] = set()       # rules matching every request
        self.whole_resource: set[int] = set()   # resource rules without resources (namespaces only)
        self.non_resource: set[int] = set()
        # resources[] entries (ids); owner[id] is the rule index
        self.owner: list[int] = []
        self.whole_group: dict[str, set[int]] = {}   # group -> rules with an entry of that group, no resources
        self.names = _Members()                      # entries by resourceNames
        self.star: dict[str, set[int]] = {}          # group -> entries with '*'
        self.exact: dict[tuple[str, str], set[int]] = {}           # (group, pattern) -> entries
        self.by_resource: dict[tuple[str, str], set[int]] = {}     # (group, R) -> entries with 'R/*'
        self.by_subresource: dict[tuple[str, str], set[int]] = {}  # (group, S) -> entries with '*/S'
        # nonResourceURLs of non-resource rules
        self.url_star: set[int] = set()
        self.url_exact: dict[str, set[int]] = {}
        self.url_prefix: dict[str, set[int]] = {}    # prefix -> rules with 'prefix*'
        self.url_prefix_lengths: set[int] = set()

    def add(self, index: int, rule: Rule) -> None:
        self.users.add(index, rule.users)
        self.user_groups.add(index, rule.user_groups)
        self.verbs.add(index, rule.verbs)
        if _matches_everything(rule):
            self.everything.add(index)
        elif rule.is_resource_rule:
            self.namespaces.add(index, rule.namespaces)
            if not rule.resources:
                self.whole_resource.add(index)
            for entry in rule.resources:
                self._add_entry(index, entry)
        else:
            self.non_resource.add(index)
            for url in set(rule.non_resource_urls):
                if url == "*":
                    self.url_star.add(index)
                    continue
                self.url_exact.setdefault(url, set()).add(index)
                if url.endswith("*"):
                    prefix = url.rstrip("*")
                    self.url_prefix.setdefault(prefix, set()).add(index)
                    self.url_prefix_lengths.add(len(prefix))

    def _add_entry(self, index: int, entry: GroupResources) -> None:
        group = entry.group
        if not entry.resources:
            self.whole_group.setdefault(group, set()).add(index)
            return
        entry_id = len(self.owner)
        self.owner.append(index)
        self.names.add(entry_id, entry.resource_names)
        for pattern in set(entry.resources):
            if pattern == "*":
                self.star.setdefault(group, set()).add(entry_id)
                continue
            self.exact.setdefault((group, pattern), set()).add(entry_id)
            if pattern.endswith("/*"):
                self.by_resource.setdefault((group, pattern.rstrip("/*")), set()).add(entry_id)
            elif pattern.startswith("*/"):
                self.by_subresource.setdefault((group, pattern.lstrip("*/")), set()).add(entry_id)

    def subsuming(self, rule: Rule) -> set[int]:
        """The indexed rules that take every request ``rule`` can match."""
        candidates = self.users.allowing(rule.users) & self.user_groups.allowing(rule.user_groups)
        if candidates:
            candidates &= self.verbs.allowing(rule.verbs)
        if not candidates:
            return candidates
        found = candidates & self.everything
        if rule.is_resource_rule:
            scoped = candidates & self.namespaces.allowing(rule.namespaces)
            found |= scoped & self.whole_resource
            if rule.resources and scoped:
                found |= self._covering_entries(rule.resources, scoped)
        elif rule.is_non_resource_rule:
            found |= self._covering_urls(rule.non_resource_urls, candidates & self.non_resource)
        return found

    def _covering_entries(self, entries: tuple[GroupResources, ...], candidates: set[int]) -> set[int]:
        """Candidates having, for each inner entry, one entry that covers it whole."""
        empty: set[int] = set()
        for entry in entries:
            group = entry.group
            rules = self.whole_group.get(group, empty) | self.whole_group.get("*", empty)
            if entry.resources:
                ids = self._entries_covering_patterns(group, entry.resources)
                if ids:
                    ids &= self.names.allowing(entry.resource_names)
                    owner = self.owner
                    rules = rules | {owner[i] for i in ids}
            candidates = candidates & rules
            if not candidates:
                break
        return candidates

    def _entries_covering_patterns(self, group: str, patterns: tuple[str, ...]) -> set[int] | None:
        groups = (group,) if group == "*" else (group, "*")
        running: set[int] | None = None
        for pattern in set(patterns):
            parts = [self.star.get(g) for g in groups]
            if pattern != "*":
                resource_key = _inner_resource_key(pattern)
                subresource_key = _inner_subresource_key(pattern)
                for g in groups:
                    parts.append(self.exact.get((g, pattern)))
                    if resource_key is not None:
                        parts.append(self.by_resource.get((g, resource_key)))
                    if subresource_key is not None:
                        parts.append(self.by_subresource.get((g, subresource_key)))
            covering: set[int] = set()
            for part in parts:
                if part:
                    covering |= part if running is None else running & part
            running = covering
            if not running:
                return None
        return running

    def _covering_urls(self, urls: tuple[str, ...], candidates: set[int]) -> set[int]:
        empty: set[int] = set()
        for url in set(urls):
            rules = set(self.url_star)
            if url != "*":
                rules |= self.url_exact.get(url, empty)
                for length in self.url_prefix_lengths:
                    if length <= len(url):
                        rules |= self.url_prefix.get(url[:length], empty)
            candidates = candidates & rules
            if not candidates:
                break
        return candidates


def first_subsuming(rules: Sequence[Rule]) -> list[int | None]:
    """For each rule, the index of the first earlier rule that ``subsumes`` it, or None.

    The same answers as trying ``subsumes`` on every earlier rule, in about linear time
    for the policies people write (sets of earlier rules intersected per condition).
    """
    index = _Index()
    result: list[int | None] = []
    for position, rule in enumerate(rules):
        found = index.subsuming(rule) if position else set()
        result.append(min(found) if found else None)
        index.add(position, rule)
    return result
