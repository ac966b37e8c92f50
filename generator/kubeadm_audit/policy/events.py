"""From a logged audit Event back to the request attributes the policy saw.

Rules (audit-semantics.md section 7.3): the authenticated ``user`` (``{}`` is no
user at all), ``verb``, ``objectRef`` (present exactly for resource requests;
absent fields are ""); for ``create`` without subresource the name (and a
namespace taken from the body) were back-filled after the policy ran, so the name
is "" and the namespace comes from ``requestURI``. Non-resource requests use the
path of ``requestURI`` (before '?', percent-decoded).

Which stages a request emits (section 2.5): RequestReceived, ResponseStarted for
long-running requests only, ResponseComplete; an unauthenticated request yields a
single ResponseStarted event.
"""
from __future__ import annotations

import json
from typing import Any

from kubeadm_audit.policy.model import Decision, Request

LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})

#: Attribute tuple: (user, groups, verb, namespace, apiGroup, apiVersion, resource,
#: subresource, name, path, resourceRequest) -- hashable, the evaluation cache key.
Key = tuple[Any, ...]


def request_key(event: dict[str, Any]) -> Key | None:
    """The attribute tuple of an Event dict, or None if it has no usable verb.

    Values are taken as the log has them (strings); a value of another type simply
    matches nothing, and an unhashable one makes the key unusable as a cache key.
    """
    return attribute_key(event.get("verb"), event.get("user"), event.get("objectRef"),
                         event.get("stage"), event.get("requestURI"))


def attribute_key(verb: object, user_info: object, ref: object, stage: object,
                  uri: object) -> Key | None:
    """:func:`request_key` from the Event's verb, user, objectRef, stage and requestURI
    fields (None where absent), however they were decoded."""
    if verb.__class__ is not str:
        return None
    user: str | None = None
    groups: tuple[Any, ...] = ()
    if user_info and isinstance(user_info, dict):  # decoders make exact dicts and strs
        user = user_info.get("username", "")
        raw_groups = user_info.get("groups")
        if isinstance(raw_groups, list):
            groups = tuple(raw_groups)
    if isinstance(ref, dict):
        get = ref.get
        subresource = get("subresource", "")
        name = get("name", "")
        namespace = get("namespace", "")
        if verb == "create" and not subresource and stage != "RequestReceived":
            name = ""
            namespace = namespace_from_uri(uri) if isinstance(uri, str) else ""
        return (user, groups, verb, namespace, get("apiGroup", ""), get("apiVersion", ""),
                get("resource", ""), subresource, name, "", True)
    path = uri.split("?", 1)[0] if isinstance(uri, str) else ""
    if "%" in path:
        from urllib.parse import unquote  # here: urllib.parse (and ipaddress) cost start-up time

        path = unquote(path)
    return (user, groups, verb, "", "", "", "", "", "", path, False)


def namespace_from_uri(uri: str) -> str:
    """The namespace a resource URL names (``/api/v1/namespaces/ns/pods`` -> ``ns``).

    The Namespace objects themselves (``/api/v1/namespaces[/name]``) have "".
    """
    parts = uri.split("?", 1)[0].strip("/").split("/")
    # /api/v1/namespaces/NS/RES... or /apis/GROUP/VERSION/namespaces/NS/RES...
    start = 2 if parts[:1] == ["api"] else 3 if parts[:1] == ["apis"] else None
    if start is None:
        return ""
    if parts[start:start + 1] == ["watch"]:
        start += 1
    if len(parts) > start + 2 and parts[start] == "namespaces":
        return parts[start + 1]
    return ""


def to_request(key: Key) -> Request:
    (user, groups, verb, namespace, api_group, api_version, resource, subresource, name, path,
     resource_request) = key
    return Request(user=user, groups=groups, verb=verb, namespace=namespace, api_group=api_group,
                   api_version=api_version, resource=resource, subresource=subresource, name=name,
                   path=path, resource_request=resource_request)


def is_long_running(key: Key) -> bool:
    return key[2] in LONG_RUNNING_VERBS or (key[10] and key[7] in LONG_RUNNING_SUBRESOURCES)


def events_for(decision: Decision, long_running: bool, authenticated: bool = True) -> int:
    """How many events kube-apiserver writes for one request under ``decision``."""
    if decision.level == "None":
        return 0
    omitted = decision.omit_stages
    if not authenticated:
        return 0 if "ResponseStarted" in omitted else 1
    count = ("RequestReceived" not in omitted) + ("ResponseComplete" not in omitted)
    if long_running and "ResponseStarted" not in omitted:
        count += 1
    return count


def describe_key(key: Key) -> str:
    return to_request(key).describe()


def resource_label(key: Key) -> str:
    """``apps/deployments``, ``pods/log``, or ``(non-resource) /logs/*``.

    Non-resource paths keep two segments, so scanners probing random URLs cannot
    grow the per-resource table without bound.
    """
    if not key[10]:
        parts = key[9].split("/", 3)
        return f"(non-resource) {'/'.join(parts[:3])}{'/*' if len(parts) > 3 else ''}"
    resource = f"{_text(key[6])}/{_text(key[7])}" if key[7] else _text(key[6])
    return f"{_text(key[4])}/{resource}" if key[4] else resource


def user_label(key: Key) -> str:
    """The user's row name; a username of another type than string (a hostile log) as JSON."""
    return "(no user)" if key[0] is None else _text(key[0])


def _text(value: object) -> str:
    """A row name part; a value of another type than string (a hostile log) as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
