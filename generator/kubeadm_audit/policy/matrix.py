"""Resources x verbs -> level, for people reading a policy.

The rows are the resources people ask about (data below); each lists the verbs
that make sense for it, so impossible cells (``pods/exec`` + ``list``) stay empty.
Requests are built as kube-apiserver derives them: a name for get/update/patch/
delete and for subresources, none for list/watch/create/deletecollection.
"""
from __future__ import annotations

from dataclasses import dataclass

from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.model import Decision, Request

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
_OBJECT = VERBS
_CONNECT = ("get", "create")

#: (row label, group, resource, subresource, namespaced, verbs); "/path" rows are non-resource.
ROWS = (
    ("pods", "", "pods", "", True, _OBJECT),
    ("pods/exec", "", "pods", "exec", True, _CONNECT),
    ("pods/attach", "", "pods", "attach", True, _CONNECT),
    ("pods/portforward", "", "pods", "portforward", True, _CONNECT),
    ("pods/log", "", "pods", "log", True, ("get",)),
    ("pods/status", "", "pods", "status", True, ("get", "update", "patch")),
    ("apps/deployments", "apps", "deployments", "", True, _OBJECT),
    ("services", "", "services", "", True, _OBJECT),
    ("services/proxy", "", "services", "proxy", True, ("get", "create", "update", "patch",
                                                      "delete")),
    ("configmaps", "", "configmaps", "", True, _OBJECT),
    ("secrets", "", "secrets", "", True, _OBJECT),
    ("serviceaccounts/token", "", "serviceaccounts", "token", True, ("create",)),
    ("nodes", "", "nodes", "", False, _OBJECT),
    ("nodes/status", "", "nodes", "status", False, ("get", "update", "patch")),
    ("nodes/proxy", "", "nodes", "proxy", False, ("get", "create")),
    ("namespaces", "", "namespaces", "", False, _OBJECT),
    ("events", "", "events", "", True, _OBJECT),
    ("events.k8s.io/events", "events.k8s.io", "events", "", True, _OBJECT),
    ("coordination.k8s.io/leases", "coordination.k8s.io", "leases", "", True, _OBJECT),
    ("rbac/roles", "rbac.authorization.k8s.io", "roles", "", True, _OBJECT),
    ("rbac/clusterrolebindings", "rbac.authorization.k8s.io", "clusterrolebindings", "", False,
     _OBJECT),
    ("authentication/tokenreviews", "authentication.k8s.io", "tokenreviews", "", False,
     ("create",)),
    ("authorization/subjectaccessreviews", "authorization.k8s.io", "subjectaccessreviews", "",
     False, ("create",)),
    ("apiextensions/customresourcedefinitions", "apiextensions.k8s.io",
     "customresourcedefinitions", "", False, _OBJECT),
    ("example.com/widgets (a CRD)", "example.com", "widgets", "", True, _OBJECT),
    ("/healthz", "", "/healthz", "", False, ("get",)),
    ("/metrics", "", "/metrics", "", False, ("get",)),
    ("/api (discovery)", "", "/api", "", False, ("get",)),
    ("/version", "", "/version", "", False, ("get",)),
)


@dataclass(frozen=True)
class Matrix:
    verbs: tuple[str, ...]
    rows: tuple[tuple[str, dict[str, Decision]], ...]  # (label, {verb: Decision})


def build(checker: Checker, user: str | None, groups: tuple[str, ...], namespace: str) -> Matrix:
    """Evaluate every row x verb for one user (None: unauthenticated)."""
    rows = []
    for label, group, resource, subresource, namespaced, verbs in ROWS:
        cells: dict[str, Decision] = {}
        for verb in verbs:
            cells[verb] = checker.evaluate(_request(user, groups, namespace, group, resource,
                                                    subresource, namespaced, verb))
        rows.append((label, cells))
    return Matrix(VERBS, tuple(rows))


def _request(user: str | None, groups: tuple[str, ...], namespace: str, group: str, resource: str,
             subresource: str, namespaced: bool, verb: str) -> Request:
    if resource.startswith("/"):
        return Request(user=user, groups=groups, verb=verb, path=resource)
    named = bool(subresource) or verb in ("get", "update", "patch", "delete")
    name = "example" if named else ""
    ns = namespace if namespaced else ""
    if resource == "namespaces" and named:
        ns = name  # a Namespace object's requests carry its own name as namespace
    return Request(user=user, groups=groups, verb=verb, namespace=ns, api_group=group,
                   resource=resource, subresource=subresource, name=name, resource_request=True)
