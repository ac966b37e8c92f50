"""The check registry: one :class:`Check` per id, registered by the module that implements it.

A check is a function from a :class:`Context` (the decoded policy, its model, the Kubernetes
minor, what validation found) to findings of its own id, registered with ``@check(...)``
together with everything a user or a test needs to know about it: default severity, a
one-line summary, a description, whether it runs by default, and two example policies, one
that it passes and one that it fails. ``tests/test_policy_lint_registry.py`` runs every
registered check on its own examples, so a check without working examples cannot exist.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from kubeadm_audit.findings import Finding, Severity
from kubeadm_audit.policy import document, validation
from kubeadm_audit.policy.model import Policy

_ID = re.compile(r"KA\d{3}\Z")


class Context:
    """What a check may look at; each part is computed once, the first time a check asks."""

    def __init__(self, data: Any, kubernetes_minor: int, read: Sequence[Finding] = ()) -> None:
        self.data = data
        self.minor = kubernetes_minor
        self._read = tuple(read)
        self._shared: dict[str, list[Finding]] = {}

    def shared(self, key: str, compute: Callable[[], Iterable[Finding]]) -> list[Finding]:
        """Findings several checks take their share of, computed once (``key`` names them)."""
        if key not in self._shared:
            self._shared[key] = list(compute())
        return self._shared[key]

    @functools.cached_property
    def policy(self) -> Policy:
        """The policy as kube-apiserver's lenient decoder leaves it."""
        return Policy.from_data(self.data)

    @functools.cached_property
    def validation(self) -> tuple[Finding, ...]:
        """What reading the file and kube-apiserver's validation find, once each."""
        return tuple(document.dedupe(list(self._read) +
                                     validation.validate_policy(self.data, self.minor)))


Run = Callable[[Context], Iterable[Finding]]


@dataclasses.dataclass(frozen=True)
class Check:
    """A registered check; ``run`` yields findings of ``id`` only."""

    id: str
    severity: Severity          # the usual severity; a finding may say more or less (see description)
    summary: str                # one line: `policy lint --list-checks`, SARIF shortDescription
    description: str            # why it matters and when the severity differs
    passing: str                # a policy (YAML) this check finds nothing in
    failing: str                # a policy (YAML) this check reports
    run: Run
    enabled: bool = True        # on unless --disable; False: only with --enable
    needs_rules: bool = True    # skipped on a policy without rules (validation reports that)


#: id -> check, in id order.
REGISTRY: dict[str, Check] = {}


def check(id: str, severity: Severity, summary: str, description: str, passing: str,
          failing: str, enabled: bool = True, needs_rules: bool = True) -> Callable[[Run], Run]:
    """Register the decorated function as the check ``id`` (ids are unique and never reused)."""
    if not _ID.match(id) or id in REGISTRY:
        raise ValueError(f"check id {id!r} is malformed or already registered")

    def register(run: Run) -> Run:
        REGISTRY[id] = Check(id, severity, summary, " ".join(description.split()), passing,
                             failing, run, enabled, needs_rules)
        ordered = sorted(REGISTRY.items())      # by id, whichever module registers first
        REGISTRY.clear()
        REGISTRY.update(ordered)
        return run

    return register


def default_ids() -> frozenset[str]:
    """The ids that run when no --enable/--disable is given."""
    return frozenset(i for i, c in REGISTRY.items() if c.enabled)


def select(enable: Iterable[str] = (), disable: Iterable[str] = ()) -> frozenset[str]:
    """The ids to run: the defaults, plus ``enable``, minus ``disable`` (which wins).

    ValueError naming the first id no check has.
    """
    enable, disable = list(enable), list(disable)
    for given in enable + disable:
        if given not in REGISTRY:
            raise ValueError(f"unknown check id {given!r} (policy lint --list-checks lists them)")
    return (default_ids() | frozenset(enable)) - frozenset(disable)


def run(context: Context, ids: Iterable[str]) -> Iterator[Finding]:
    """The findings of the checks ``ids``, in registry order."""
    wanted = frozenset(ids)
    has_rules = bool(context.policy.rules)
    for check_id, registered in REGISTRY.items():
        if check_id in wanted and (has_rules or not registered.needs_rules):
            yield from registered.run(context)
