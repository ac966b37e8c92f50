"""policy.validation against kube-apiserver's decode, ValidatePolicy and loader rules."""
from __future__ import annotations

import pytest

from kubeadm_audit import yamlio
from kubeadm_audit.errors import InputError
from kubeadm_audit.policy.validation import Finding, errors, is_loadable, load_policy, validate_policy


def check(text: str) -> list[Finding]:
    return validate_policy(yamlio.load(text))


def paths(findings, severity="error"):
    return [f.path for f in findings if f.severity == severity]


HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\n"


def test_minimal_policy_is_clean():
    assert check(HEAD + "rules:\n- level: Metadata\n") == []


def test_kind_may_be_omitted_when_api_version_given():
    assert check("apiVersion: audit.k8s.io/v1\nrules: [{level: None}]\n") == []


def test_missing_api_version_is_an_error():
    findings = check("kind: Policy\nrules: [{level: None}]\n")
    assert paths(findings) == ["apiVersion"]


@pytest.mark.parametrize("version", ["audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1"])
def test_removed_api_versions_are_refused_with_a_hint(version):
    findings = check(f"apiVersion: {version}\nkind: Policy\nrules: [{{level: None}}]\n")
    assert paths(findings) == ["apiVersion"]
    assert "1.24" in findings[0].message and "audit.k8s.io/v1" in findings[0].message


def test_other_api_version_and_wrong_kind():
    findings = check("apiVersion: v1\nkind: ConfigMap\nrules: [{level: None}]\n")
    assert paths(findings) == ["apiVersion", "kind"]


@pytest.mark.parametrize("text", ["", HEAD, HEAD + "rules: []\n", HEAD + "rules:\n"])
def test_zero_rules_is_refused(text):
    assert not is_loadable(check(text))


def test_not_a_mapping():
    assert paths(validate_policy(["a"])) == [""]
    assert paths(validate_policy("text")) == [""]


def test_level_required_and_supported_values():
    findings = check(HEAD + "rules:\n- verbs: [get]\n- level: metadata\n- level: Request\n")
    assert paths(findings) == ["rules[0].level", "rules[1].level"]
    assert "did you mean 'Metadata'" in findings[1].message


def test_null_rule_has_no_level():
    assert paths(check(HEAD + "rules:\n- null\n")) == ["rules[0].level"]


@pytest.mark.parametrize("url,count", [("*", 0), ("/healthz*", 0), ("/", 0), ("/a/b", 0),
                                       ("", 1), ("healthz", 1), ("/a/*/*", 1), ("/a/*.log", 1),
                                       ("/a**", 1), ("a*b", 2)])
def test_non_resource_urls(url, count):
    findings = check(HEAD + f"rules:\n- level: None\n  nonResourceURLs: ['{url}']\n")
    assert paths(findings) == ["rules[0].nonResourceURLs[0]"] * count


@pytest.mark.parametrize("group,ok", [("", True), ("*", True), ("apps", True),
                                      ("rbac.authorization.k8s.io", True),
                                      ("rbac.authorization.k8s.io/v1beta1", False),
                                      ("Apps", False), ("-apps", False), ("a" * 254, False)])
def test_group_must_be_a_dns_subdomain(group, ok):
    findings = check(HEAD + f"rules:\n- level: None\n  resources:\n  - group: '{group}'\n")
    assert paths(findings) == ([] if ok else ["rules[0].resources[0].group"])


def test_resource_names_need_resources():
    findings = check(HEAD + "rules:\n- level: None\n  resources:\n  - resources: [pods]\n"
                            "    resourceNames: [a]\n  - resourceNames: [b]\n")
    assert paths(findings) == ["rules[0].resources[1].resourceNames"]


def test_empty_resource_name_is_allowed():
    assert check(HEAD + "rules:\n- level: None\n  resources:\n  - resources: [pods]\n"
                        "    resourceNames: ['']\n") == []


def test_stages_policy_and_rule():
    findings = check(HEAD + "omitStages: [RequestReceived, '']\nrules:\n- level: None\n"
                            "  omitStages: [Panic, responseComplete]\n")
    assert paths(findings) == ["omitStages[1]", "rules[0].omitStages[1]"]


@pytest.mark.parametrize("extra", ["  resources: [{group: ''}]\n", "  namespaces: [default]\n"])
def test_mixing_resources_and_non_resource_urls_is_refused(extra):
    findings = check(HEAD + "rules:\n- level: None\n  nonResourceURLs: [/x]\n" + extra)
    assert paths(findings) == ["rules[0].nonResourceURLs"]


def test_strings_that_are_not_validated_pass():
    text = HEAD + ("rules:\n- level: None\n  users: ['*', '']\n  userGroups: ['']\n"
                   "  verbs: ['*', GET]\n  namespaces: ['', '*']\n"
                   "  resources:\n  - resources: ['', Pods, a/b/c, '*/*']\n")
    assert check(text) == []


def test_wrong_value_types_are_decode_errors():
    text = HEAD + ("omitManagedFields: 'true'\nrules:\n- level: 1\n  verbs: get\n"
                   "  resources: [pods]\n  omitManagedFields: 0\n  users: [{a: b}]\n")
    assert paths(check(text)) == ["omitManagedFields", "rules[0].level", "rules[0].verbs",
                                  "rules[0].resources[0]", "rules[0].omitManagedFields",
                                  "rules[0].users[0]"]


def test_string_verbs_error_suggests_a_list():
    finding = check(HEAD + "rules:\n- level: None\n  verbs: get\n")[0]
    assert "['get']" in finding.message


def test_yaml11_scalars():
    # kube-apiserver's YAML 1.1 reader reads `yes` as a boolean: fine for a bool, not for a string.
    assert check(HEAD + "omitManagedFields: yes\nrules:\n- level: None\n") == []
    findings = check(HEAD + "rules:\n- level: None\n  namespaces: [no, '0600', 0600]\n")
    assert paths(findings) == ["rules[0].namespaces[0]", "rules[0].namespaces[2]"]


def test_nulls_decode_to_zero_values():
    assert check(HEAD + "omitStages:\nrules:\n- level: None\n  verbs:\n  resources:\n"
                        "  - group:\n    resources:\n  omitManagedFields:\n") == []


def test_unknown_fields_are_warnings_and_still_loadable():
    findings = check(HEAD + "metadata: {name: x}\nfoo: 1\nrules:\n- level: None\n  omitStage: [Panic]\n")
    assert paths(findings, "warning") == ["foo", "rules[0].omitStage"]
    assert "did you mean 'omitStages'" in findings[1].message
    assert is_loadable(findings)


def test_misplaced_verbs_names_the_consequence():
    findings = check(HEAD + "rules:\n- level: RequestResponse\n  resources:\n  - group: ''\n"
                            "    resources: [pods]\n    verbs: [create, patch]\n")
    assert [str(f) for f in findings] == [
        "rules[0].resources[0].verbs: unknown field, kube-apiserver drops it: 'verbs' belongs on "
        "the rule, not inside resources[]; as written this rule matches every verb"]
    assert findings[0].severity == "warning"


@pytest.mark.parametrize("field,consequence", [("namespaces", "every namespace"),
                                               ("users", "every user"),
                                               ("userGroups", "every user group")])
def test_other_misplaced_rule_fields(field, consequence):
    findings = check(HEAD + f"rules:\n- level: None\n  resources:\n  - group: ''\n"
                            f"    {field}: [x]\n")
    assert consequence in findings[0].message


def test_misplaced_resource_fields_and_policy_fields():
    findings = check(HEAD + "verbs: [get]\nrules:\n- level: None\n  resourceNames: [a]\n"
                            "  group: apps\n")
    assert paths(findings, "warning") == ["verbs", "rules[0].resourceNames", "rules[0].group"]
    assert "any name" in findings[1].message
    assert "belongs on a rule" in findings[0].message


def test_capitalised_level_is_dropped_then_missing():
    findings = check(HEAD + "rules:\n- Level: Metadata\n")
    assert [(f.path, f.severity) for f in findings] == [("rules[0].Level", "warning"),
                                                        ("rules[0].level", "error")]
    assert "case-sensitive" in findings[1].message


def test_errors_accumulate():
    findings = check("apiVersion: audit.k8s.io/v1beta1\nrules:\n- level: x\n- {}\n")
    assert len(errors(findings)) == 3


def test_load_policy_returns_the_model_or_raises():
    policy = load_policy(yamlio.load(HEAD + "omitStages: [RequestReceived]\nrules:\n"
                                            "- level: Metadata\n  verbs: [get]\n"), "p.yaml")
    assert policy.rules[0].verbs == ("get",) and policy.omit_stages == ("RequestReceived",)
    with pytest.raises(InputError) as info:
        load_policy(yamlio.load(HEAD + "rules:\n- level: Bad\n- {}\n"), "p.yaml")
    assert str(info.value).startswith("p.yaml: rules[0].level: kube-apiserver would refuse")
    assert "1 more" in str(info.value)


def test_group_wildcard_needs_kubernetes_1_36():
    """kubernetes/kubernetes#135262 (1.36) added resources[].group "*"; before it the group must
    be a DNS subdomain, so kube-apiserver refuses the policy."""
    from kubeadm_audit.policy.validation import validate_policy

    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
              "rules": [{"level": "None", "resources": [{"group": "*", "resources": ["*/status"]}]},
                        {"level": "Metadata"}]}
    old = [f for f in validate_policy(policy, 35) if f.severity == "error"]
    assert [f.path for f in old] == ["rules[0].resources[0].group"]
    assert "1.36" in old[0].message
    assert not [f for f in validate_policy(policy, 36) if f.severity == "error"]
    assert not [f for f in validate_policy(policy) if f.severity == "error"]


def test_group_wildcard_cli_follows_kubernetes_version(tmp_path):
    from conftest import run_cli

    path = tmp_path / "star.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  resources:\n"
                    "  - group: '*'\n    resources: ['*/status']\n- level: Metadata\n")
    assert run_cli("policy", "validate", "--kubernetes-version", "v1.35.2", path).returncode == 1
    assert run_cli("policy", "validate", "--kubernetes-version", "v1.36.0", path).returncode == 0
    refused = run_cli("generate", "--policy", path, "--kubernetes-version", "v1.34.2", "--out", tmp_path / "b")
    assert refused.returncode == 2 and not (tmp_path / "b").exists()
    assert run_cli("generate", "--policy", path, "--kubernetes-version", "v1.36.0",
                   "--out", tmp_path / "b").returncode == 0


def test_v1beta1_policy_is_deprecated_before_1_24_and_refused_after():
    from kubeadm_audit.policy.validation import validate_policy

    policy = {"apiVersion": "audit.k8s.io/v1beta1", "kind": "Policy", "rules": [{"level": "Metadata"}]}
    assert [f.severity for f in validate_policy(policy, 23) if f.path == "apiVersion"] == ["warning"]
    assert [f.severity for f in validate_policy(policy, 24) if f.path == "apiVersion"] == ["error"]
    assert [f.severity for f in validate_policy(policy) if f.path == "apiVersion"] == ["error"]
