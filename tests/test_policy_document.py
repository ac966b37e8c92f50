"""Reading a policy file as kube-apiserver's decoder does; each case here is a disagreement
the k8s.io/apiserver oracle found (issue 11) and is now a regression test."""
from __future__ import annotations

import pytest

from kubeadm_audit.errors import InputError
from kubeadm_audit.policy import document
from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.model import Policy, Request
from kubeadm_audit.policy.validation import errors, validate_policy

HEAD = '{"apiVersion": "audit.k8s.io/v1", "kind": "Policy", '


def read(text: str):
    data, found = document.read(text)
    return data, document.dedupe(found + validate_policy(data))


def level(text: str, request: Request) -> str:
    data, found = read(text)
    assert not errors(found), found
    return Checker(Policy.from_data(data)).evaluate(request).level


def test_json_repeated_rules_merge_element_by_element():
    """Go decodes the later list into the earlier one's elements: users from the first survive."""
    text = HEAD + '"rules": [{"level": "Metadata", "users": ["a"]}], "rules": [{"level": "Request", "verbs": ["get"]}]}'
    assert level(text, Request(user="b", verb="get")) == "None"
    assert level(text, Request(user="a", verb="get")) == "Request"
    yaml_text = ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata, users: [a]}]\n"
                 "rules: [{level: Request, verbs: [get]}]\n")
    assert level(yaml_text, Request(user="b", verb="get")) == "Request"   # YAML: the last one wins


def test_json_repeated_resources_keep_the_earlier_group():
    text = HEAD + ('"rules": [{"level": "Metadata", "resources": [{"group": "apps", "resources": ["x"]}], '
                   '"resources": [{"resources": ["pods"]}]}]}')
    assert level(text, Request(user="b", verb="get", resource="pods", resource_request=True)) == "None"


def test_json_null_leaves_a_string_but_clears_an_optional_bool():
    assert level(HEAD + '"rules": [{"level": "None", "level": null}]}', Request(verb="get")) == "None"
    data, _ = read(HEAD + '"omitManagedFields": true, "rules": [{"level": "None", "omitManagedFields": false, '
                          '"omitManagedFields": null}]}')
    assert Checker(Policy.from_data(data)).evaluate(Request(verb="get")).omit_managed_fields is True
    _, found = read("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, level: null}]\n")
    assert [f.path for f in errors(found)] == ["rules[0].level"]      # YAML: null wins, level missing


def test_json_type_error_in_a_replaced_occurrence_still_refuses():
    _, found = read(HEAD + '"rules": [{"level": "None", "namespaces": ""}], "rules": [{"level": "None"}]}')
    assert [(f.path, f.stage) for f in errors(found)] == [("rules[0].namespaces", "decode")]
    _, found = read(HEAD + '"rules": [{"level": "None"}, {"level": "None", "users": "x"}], '
                           '"rules": [{"level": "None"}]}')
    assert [f.path for f in errors(found)] == ["rules[1].users"]


def test_unknown_field_in_a_replaced_occurrence_is_still_reported():
    _, found = read(HEAD + '"rules": [{"level": "None"}, {"level": "None", "bogus": 1}], "rules": [{"level": "None"}]}')
    assert "rules[1].bogus" in [f.path for f in found if f.severity == "warning"]


def test_text_starting_with_a_brace_is_json_only():
    with pytest.raises(InputError, match="malformed JSON"):
        document.read("{apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: None}]}")
    data, _ = document.read("# a comment first makes it YAML\n{apiVersion: audit.k8s.io/v1, rules: [{level: None}]}")
    assert data["rules"] == [{"level": "None"}]


@pytest.mark.parametrize("metadata,error", [
    ("{name: 1}", "metadata.name"), ("{labels: {a: 1}}", "metadata.labels.a"),
    ("{generation: '1'}", "metadata.generation"), ("{finalizers: [a, 1]}", "metadata.finalizers[1]"),
    ("{name: x, labels: {a: b}, generation: 0x10, creationTimestamp: null}", None)])
def test_metadata_is_decoded_as_object_meta(metadata, error):
    """Found by the oracle: the decoder type-checks metadata's fields too."""
    _, found = read(f"apiVersion: audit.k8s.io/v1\nkind: Policy\nmetadata: {metadata}\nrules: [{{level: None}}]\n")
    assert [f.path for f in errors(found)] == ([error] if error else [])


def test_unknown_metadata_field_is_a_warning():
    _, found = read("apiVersion: audit.k8s.io/v1\nkind: Policy\nmetadata: {bogus: 1}\nrules: [{level: None}]\n")
    assert [(f.path, f.severity) for f in found] == [("metadata.bogus", "warning")]


def test_json_repeated_keys_inside_metadata_are_repeated_fields():
    """Found by the oracle: the strict decoder sees repeats inside metadata and its maps too."""
    _, found = document.read(HEAD + '"metadata": {"annotations": {"a": "x"}, "annotations": {"a": "x"}, '
                                    '"labels": {"b": "1", "b": "2"}}, "rules": [{"level": "None"}]}')
    assert [f.path for f in found] == ["metadata.annotations", "metadata.labels.b"]


@pytest.mark.parametrize("plain,expected", [("yes", True), ("on", True), ("off", False), ("NO", False)])
def test_yaml11_boolean_omit_managed_fields_takes_effect(plain, expected):
    """Found by the oracle: kube-apiserver reads `omitManagedFields: yes` as true; so must the checker."""
    text = (f"apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: {plain}\n"
            f"rules:\n- level: None\n  omitManagedFields: {plain}\n")
    data, found = read(text)
    assert not errors(found)
    assert Checker(Policy.from_data(data)).evaluate(Request(verb="get")).omit_managed_fields is expected
    assert Policy.from_data(data).omit_managed_fields is expected
