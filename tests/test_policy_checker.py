"""The checker's semantics, rule by rule, from audit-semantics.md section 2."""
from __future__ import annotations

import pytest

from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.model import Request


def level(rules, request, **policy):
    return Checker({"apiVersion": "audit.k8s.io/v1", "rules": rules, **policy}).evaluate(request).level


def res(**kw):
    kw.setdefault("resource_request", True)
    kw.setdefault("user", "alice")
    kw.setdefault("verb", "get")
    return Request(**kw)


def nonres(path, **kw):
    kw.setdefault("user", "alice")
    kw.setdefault("verb", "get")
    return Request(path=path, resource_request=False, **kw)


PODS = res(resource="pods", namespace="default", name="p")


def test_first_match_wins():
    rules = [{"level": "Request", "verbs": ["get"]}, {"level": "Metadata"}]
    decision = Checker({"rules": rules}).evaluate(PODS)
    assert (decision.level, decision.rule_index) == ("Request", 0)
    decision = Checker({"rules": rules}).evaluate(res(resource="pods", verb="list"))
    assert (decision.level, decision.rule_index) == ("Metadata", 1)


def test_no_match_is_none_with_policy_stages():
    decision = Checker({"omitStages": ["Panic"], "omitManagedFields": True,
                        "rules": [{"level": "Metadata", "verbs": ["list"]}]}).evaluate(PODS)
    assert decision.to_json() == {"level": "None", "omitStages": ["Panic"],
                                  "omitManagedFields": True, "rule": None}


def test_rule_without_conditions_matches_everything_even_without_user():
    rules = [{"level": "Metadata"}]
    assert level(rules, PODS) == "Metadata"
    assert level(rules, nonres("/healthz", user=None)) == "Metadata"


@pytest.mark.parametrize("users,user,expected", [
    (["alice"], "alice", "Metadata"), (["alice"], "Alice", "None"), (["*"], "alice", "None"),
    (["*"], "*", "Metadata"), (["alice"], None, "None"), ([""], "", "Metadata"),
    ([""], None, "None")])
def test_users_are_literal_and_need_user_info(users, user, expected):
    assert level([{"level": "Metadata", "users": users}], res(resource="pods", user=user)) == expected


@pytest.mark.parametrize("rule_groups,groups,expected", [
    (["system:nodes"], ("system:nodes",), "Metadata"),
    (["a", "b"], ("c", "b"), "Metadata"),
    (["*"], ("system:nodes",), "None"),
    (["system:nodes"], (), "None")])
def test_user_groups_any_of_literal(rule_groups, groups, expected):
    request = res(resource="pods", groups=groups)
    assert level([{"level": "Metadata", "userGroups": rule_groups}], request) == expected


def test_user_groups_without_user_info_never_match():
    assert level([{"level": "Metadata", "userGroups": ["system:unauthenticated"]}],
                 res(resource="pods", user=None)) == "None"


def test_users_and_groups_both_must_hold():
    rule = {"level": "Metadata", "users": ["alice"], "userGroups": ["g"]}
    assert level([rule], res(resource="pods", groups=("g",))) == "Metadata"
    assert level([rule], res(resource="pods", groups=("h",))) == "None"
    assert level([rule], res(resource="pods", user="bob", groups=("g",))) == "None"


@pytest.mark.parametrize("verbs,verb,expected", [
    (["get"], "get", "Metadata"), (["GET"], "get", "None"), (["*"], "get", "None"),
    (["*"], "*", "Metadata"), (["get", "list"], "list", "Metadata")])
def test_verbs_exact_no_wildcard(verbs, verb, expected):
    assert level([{"level": "Metadata", "verbs": verbs}], res(resource="pods", verb=verb)) == expected


def test_resource_rule_never_matches_non_resource_request():
    assert level([{"level": "Metadata", "resources": [{"group": "*"}]}], nonres("/api")) == "None"
    assert level([{"level": "Metadata", "namespaces": [""]}], nonres("/api")) == "None"


@pytest.mark.parametrize("namespaces,namespace,expected", [
    (["default"], "default", "Metadata"), (["default"], "kube-system", "None"),
    (["*"], "default", "None"), ([""], "", "Metadata"), ([""], "default", "None")])
def test_namespaces_literal_and_empty_means_no_namespace(namespaces, namespace, expected):
    request = res(resource="pods", verb="list", namespace=namespace)
    assert level([{"level": "Metadata", "namespaces": namespaces}], request) == expected


def test_namespace_object_is_matched_by_its_own_name():
    rule = [{"level": "Metadata", "namespaces": [""]}]
    assert level(rule, res(resource="namespaces", name="foo", namespace="foo")) == "None"
    assert level(rule, res(resource="namespaces", verb="list")) == "Metadata"


def test_namespaces_alone_match_any_resource_in_them():
    rule = [{"level": "Metadata", "namespaces": ["kube-system"]}]
    assert level(rule, res(resource="secrets", namespace="kube-system")) == "Metadata"
    assert level(rule, res(resource="leases", api_group="coordination.k8s.io",
                           namespace="kube-system")) == "Metadata"


def test_namespaces_with_non_resource_urls_is_a_resource_rule():
    rule = [{"level": "Metadata", "namespaces": ["default"], "nonResourceURLs": ["*"]}]
    assert level(rule, nonres("/healthz")) == "None"
    assert level(rule, res(resource="pods", namespace="default")) == "Metadata"


@pytest.mark.parametrize("group,api_group,expected", [
    ("", "", "Metadata"), ("", "apps", "None"), ("apps", "apps", "Metadata"),
    ("*", "apps", "Metadata"), ("*", "", "Metadata"), (None, "apps", "None"),
    (None, "", "Metadata")])
def test_group_defaults_to_core_and_star_is_every_group(group, api_group, expected):
    entry = {"resources": ["deployments"]} if group is None else {"group": group,
                                                                  "resources": ["deployments"]}
    request = res(resource="deployments", api_group=api_group)
    assert level([{"level": "Metadata", "resources": [entry]}], request) == expected


@pytest.mark.parametrize("pattern,resource,subresource,expected", [
    ("pods", "pods", "", True),
    ("pods", "pods", "log", False),
    ("pods/log", "pods", "log", True),
    ("pods/log", "pods", "exec", False),
    ("pods/*", "pods", "", True),      # unlike RBAC: R/* also matches bare R
    ("pods/*", "pods", "exec", True),
    ("pods/*", "nodes", "proxy", False),
    ("*/status", "pods", "status", True),
    ("*/status", "deployments", "status", True),
    ("*/status", "pods", "", False),
    ("*", "pods", "", True),
    ("*", "pods", "exec", True),
    ("*/*", "pods", "exec", False),
    ("*/*", "pods", "", False),
    ("Pods", "pods", "", False),
    # one "/*" or "*/" is cut (TrimSuffix/TrimPrefix), the rest is literal (kube-apiserver >= 1.18)
    ("pods//*", "pods", "x", False),
    ("pods//*", "pods/", "x", True),
    ("*//status", "pods", "status", False),
    ("pods*/*", "pods", "x", False),
    ("*/*log", "pods", "log", False),
    ("*/*log", "pods", "*log", True),
    ("pods/**", "pods", "x", False),    # "/*" suffix needed
])
def test_resource_patterns(pattern, resource, subresource, expected):
    rule = {"level": "Metadata", "resources": [{"group": "", "resources": [pattern]}]}
    request = res(resource=resource, subresource=subresource)
    assert (level([rule], request) == "Metadata") is expected


def test_empty_resources_in_entry_matches_every_resource_and_subresource_of_group():
    rule = {"level": "Metadata", "resources": [{"group": "apps"}]}
    assert level([rule], res(resource="deployments", api_group="apps", subresource="scale")) == "Metadata"
    assert level([rule], res(resource="pods")) == "None"


@pytest.mark.parametrize("names,name,verb,expected", [
    (["a"], "a", "get", True), (["a"], "b", "get", False), (["a"], "", "list", False),
    (["a"], "", "create", False), ([""], "", "list", True), (["A"], "a", "get", False)])
def test_resource_names(names, name, verb, expected):
    rule = {"level": "Metadata",
            "resources": [{"group": "", "resources": ["configmaps"], "resourceNames": names}]}
    request = res(resource="configmaps", name=name, verb=verb, namespace="kube-system")
    assert (level([rule], request) == "Metadata") is expected


def test_later_entries_are_tried_after_a_resource_names_miss():
    rule = {"level": "Metadata", "resources": [
        {"resources": ["configmaps"], "resourceNames": ["x"]}, {"resources": ["configmaps"]}]}
    assert level([rule], res(resource="configmaps", name="y")) == "Metadata"


@pytest.mark.parametrize("spec,path,expected", [
    ("*", "/anything", True), ("/healthz", "/healthz", True), ("/healthz", "/healthz/", False),
    ("/healthz*", "/healthz", True), ("/healthz*", "/healthz/etcd", True),
    ("/healthz/*", "/healthz", False), ("/healthz/*", "/healthz/etcd", True),
    ("/logs*", "/logsfoo", True), ("/api*", "/api", True), ("/version", "/version/", False),
    ("/metrics**", "/metrics", True)])
def test_non_resource_urls(spec, path, expected):
    rule = {"level": "Metadata", "nonResourceURLs": [spec]}
    assert (level([rule], nonres(path)) == "Metadata") is expected


def test_non_resource_rule_never_matches_resource_requests():
    rule = [{"level": "Metadata", "nonResourceURLs": ["*", "/api*"]}]
    assert level(rule, res(resource="pods", path="/api/v1/pods")) == "None"
    assert level(rule, nonres("/api/v1")) == "Metadata"


def test_omit_stages_union_of_policy_and_rule():
    checker = Checker({"omitStages": ["RequestReceived"], "rules": [
        {"level": "None", "verbs": ["watch"], "omitStages": ["Panic"]},
        {"level": "Metadata", "omitStages": ["ResponseStarted", "RequestReceived"]}]})
    decision = checker.evaluate(PODS)
    assert decision.omit_stages == ("RequestReceived", "ResponseStarted")
    assert checker.evaluate(res(resource="pods", verb="watch")).omit_stages == \
        ("RequestReceived", "Panic")


@pytest.mark.parametrize("policy_value,rule_value,expected", [
    (None, None, False), (True, None, True), (True, False, False), (False, True, True),
    (None, True, True)])
def test_omit_managed_fields_precedence(policy_value, rule_value, expected):
    rule = {"level": "Metadata"}
    if rule_value is not None:
        rule["omitManagedFields"] = rule_value
    data = {"rules": [rule]}
    if policy_value is not None:
        data["omitManagedFields"] = policy_value
    assert Checker(data).evaluate(PODS).omit_managed_fields is expected


def test_api_version_is_not_used():
    rule = [{"level": "Metadata", "resources": [{"group": "apps", "resources": ["deployments"]}]}]
    assert level(rule, res(resource="deployments", api_group="apps", api_version="v1beta1")) == "Metadata"


def test_explain_lists_each_rule_and_why():
    checker = Checker({"rules": [
        {"level": "None", "users": ["system:kube-proxy"]},
        {"level": "None", "nonResourceURLs": ["/healthz*"]},
        {"level": "RequestResponse", "verbs": ["create"], "resources": [{"resources": ["pods"]}]},
        {"level": "Metadata", "resources": [{"group": "", "resources": ["pods/*"]}]}]})
    explanation = checker.explain(PODS)
    assert [s.matched for s in explanation.steps] == [False, False, False, True]
    assert "'alice' is not in users" in explanation.steps[0].reason
    assert "never matches a resource request" in explanation.steps[1].reason
    assert "verb 'get' is not in verbs" in explanation.steps[2].reason
    assert "resource 'pods/*'" in explanation.steps[3].reason
    assert explanation.decision.rule_index == 3


def test_request_from_json():
    request = Request.from_json({"user": "alice", "groups": ["g"], "verb": "get",
                                 "resource": "pods", "subresource": "log", "namespace": "ns"})
    assert request.resource_request and request.combined_resource == "pods/log"
    assert not Request.from_json({"path": "/healthz", "verb": "get"}).resource_request
    assert Request.from_json({"user": None}).user is None
    assert Request.from_json({}).user is None
    assert Request.from_json({"resource": "pods", "resourceRequest": False}).resource_request is False


def test_request_from_json_reads_null_groups_as_none():
    """Go writes an unauthenticated request's empty groups as null (issue 11)."""
    assert Request.from_json({"user": None, "groups": None}).groups == ()
    assert Request.from_json({"user": "alice", "groups": None, "verb": "get"}).groups == ()


@pytest.mark.parametrize("data,message", [
    ({"usr": "a"}, "unknown key 'usr'"), ([], "JSON object"), ({"user": 1}, "'user'"),
    ({"groups": "g", "user": "a"}, "'groups'"), ({"groups": ["g"]}, "without 'user'"),
    ({"verb": None}, "'verb' must be a string"), ({"resourceRequest": "yes"}, "true or false"),
    ({"resource": "pods/log"}, "\"subresource\": 'log'")])
def test_request_from_json_rejects(data, message):
    with pytest.raises(ValueError, match=None) as info:
        Request.from_json(data)
    assert message in str(info.value)
