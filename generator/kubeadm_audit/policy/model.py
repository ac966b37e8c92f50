"""The audit.k8s.io/v1 Policy as kube-apiserver sees it after decoding.

``Policy.from_data`` mirrors the lenient decode kube-apiserver falls back to:
unknown fields are dropped and absent lists are empty. It expects data that
:func:`kubeadm_audit.policy.validation.validate_policy` found loadable; values of
the wrong type are coerced to "absent" rather than trusted.
"""
from __future__ import annotations

from kubeadm_audit import versions
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
API_VERSION = versions.AUDIT_API_VERSION

#: Ordinal of each level; unknown strings rank like None (pkg/apis/audit/helpers.go).
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}


def level_rank(level: str) -> int:
    return LEVEL_RANK.get(level, 0)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple("" if item is None else str(item) for item in value)


#: Plain YAML scalars kube-apiserver's YAML 1.1 reader takes for booleans (ours reads YAML 1.2,
#: which keeps them as strings, marked plain by yamlio).
YAML11_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"})
YAML11_FALSE = frozenset({"n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"})


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and type(value) is not str:   # a plain scalar
        return True if value in YAML11_TRUE else False if value in YAML11_FALSE else None
    return None


def sort_stages(stages: Any) -> tuple[str, ...]:
    """Stages in the order a request passes them; unknown names last, sorted."""
    order = {name: rank for rank, name in enumerate(STAGES)}
    return tuple(sorted(set(stages), key=lambda s: (order.get(s, len(STAGES)), s)))


class GroupResources(NamedTuple):
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data: Any) -> GroupResources:
        if not isinstance(data, dict):
            return cls()
        group = data.get("group")
        return cls(group=group if isinstance(group, str) else "",
                   resources=_strings(data.get("resources")),
                   resource_names=_strings(data.get("resourceNames")))


class Rule(NamedTuple):
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None

    @property
    def is_resource_rule(self) -> bool:
        """Namespaces or resources make the rule resource-only (nonResourceURLs ignored)."""
        return bool(self.namespaces or self.resources)

    @property
    def is_non_resource_rule(self) -> bool:
        return not self.is_resource_rule and bool(self.non_resource_urls)

    @classmethod
    def from_data(cls, data: Any) -> Rule:
        if not isinstance(data, dict):
            return cls(level="")
        level = data.get("level")
        resources = data.get("resources")
        return cls(
            level=level if isinstance(level, str) else "",
            users=_strings(data.get("users")),
            user_groups=_strings(data.get("userGroups")),
            verbs=_strings(data.get("verbs")),
            resources=tuple(GroupResources.from_data(item) for item in resources)
            if isinstance(resources, list) else (),
            namespaces=_strings(data.get("namespaces")),
            non_resource_urls=_strings(data.get("nonResourceURLs")),
            omit_stages=_strings(data.get("omitStages")),
            omit_managed_fields=_bool(data.get("omitManagedFields")),
        )


class Policy(NamedTuple):
    rules: tuple[Rule, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False

    @classmethod
    def from_data(cls, data: Any) -> Policy:
        if not isinstance(data, dict):
            return cls()
        rules = data.get("rules")
        return cls(
            rules=tuple(Rule.from_data(item) for item in rules) if isinstance(rules, list) else (),
            omit_stages=_strings(data.get("omitStages")),
            omit_managed_fields=bool(_bool(data.get("omitManagedFields"))),
        )


#: explain request keys -> Request attributes.
REQUEST_KEYS = {"user": "user", "groups": "groups", "verb": "verb", "namespace": "namespace",
                "apiGroup": "api_group", "apiVersion": "api_version", "resource": "resource",
                "subresource": "subresource", "name": "name", "path": "path",
                "resourceRequest": "resource_request"}


class Request(NamedTuple):
    """The authorizer attributes the policy is evaluated against.

    ``user`` None means no user info at all (failed authentication), which is
    different from a user with an empty name.
    """

    user: str | None = None
    groups: tuple[str, ...] = ()
    verb: str = ""
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = False

    @classmethod
    def from_json(cls, data: Any) -> Request:
        """Build from an ``explain`` request object; ValueError says what is wrong.

        Missing keys mean absent; ``groups`` null means no groups, as Go encodes an empty
        list. ``resourceRequest``, when not given, is true exactly when ``resource`` is non-empty.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a request must be a JSON object, not {type(data).__name__}")
        unknown = sorted(set(data) - set(REQUEST_KEYS))
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(REQUEST_KEYS)})")
        values: dict[str, Any] = {}
        for key, attr in REQUEST_KEYS.items():
            if key not in data:
                continue
            value = data[key]
            if key == "user":
                if value is not None and not isinstance(value, str):
                    raise ValueError("'user' must be a string, or null for an unauthenticated request")
            elif key == "groups":
                # null is how Go writes an empty list (an unauthenticated request's groups).
                if value is None:
                    value = ()
                elif not isinstance(value, list) or not all(isinstance(g, str) for g in value):
                    raise ValueError("'groups' must be a list of strings (or null for none)")
                value = tuple(value)
            elif key == "resourceRequest":
                if not isinstance(value, bool):
                    raise ValueError("'resourceRequest' must be true or false")
            elif not isinstance(value, str):
                raise ValueError(f"{key!r} must be a string")
            values[attr] = value
        if values.get("groups") and values.get("user") is None:
            raise ValueError("'groups' given without 'user': a request without a user "
                             "(unauthenticated) has no groups")
        if "/" in values.get("resource", ""):
            resource, _, sub = values["resource"].partition("/")
            raise ValueError(f"'resource' is one segment: write \"resource\": {resource!r}, "
                             f"\"subresource\": {sub!r}")
        values.setdefault("resource_request", bool(values.get("resource")))
        return cls(**values)

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def describe(self) -> str:
        """A short human label, e.g. ``alice get pods/log -n default``."""
        who = "<no user>" if self.user is None else (self.user or '""')
        if self.resource_request:
            group = f"{self.api_group}/" if self.api_group else ""
            what = f"{group}{self.combined_resource}"
            if self.name:
                what += f" {self.name}"
            where = f" -n {self.namespace}" if self.namespace else ""
            return f"{who} {self.verb or '<no verb>'} {what}{where}"
        return f"{who} {self.verb or '<no verb>'} {self.path or '<no path>'}"


class Decision(NamedTuple):
    level: str
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False
    rule_index: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "omitStages": list(self.omit_stages),
                "omitManagedFields": self.omit_managed_fields, "rule": self.rule_index}


__all__ = [
    "API_VERSION",
    "LEVELS",
    "STAGES",
    "Decision",
    "GroupResources",
    "Policy",
    "Request",
    "Rule",
    "level_rank",
    "sort_stages",
]
