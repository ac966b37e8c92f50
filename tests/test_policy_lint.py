"""policy lint: every check fires where it should and stays quiet where it should."""
from __future__ import annotations

from pathlib import Path

import pytest

from kubeadm_audit import yamlio
from kubeadm_audit.policy import coverage
from kubeadm_audit.policy.lint import CHECKS, has_errors, lint_policy
from kubeadm_audit.policy.model import Rule

RECIPE = Path(__file__).parent / "fixtures" / "policy" / "zeron-recipe.yaml"
HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nomitManagedFields: true\n"
TAIL = "- level: Metadata\n"


def lint(rules: str, head: str = HEAD, minor: int = 34):
    return lint_policy(yamlio.load(head + "rules:\n" + rules), minor)


def ids(findings, severity=None):
    return [(f.id, f.path) for f in findings if severity is None or f.severity == severity]


def test_clean_policy_has_no_findings():
    assert lint("- level: None\n  nonResourceURLs: ['/healthz*']\n"
                "- level: Metadata\n  resources: [{group: '', resources: [secrets]}]\n" + TAIL) == []


def all_of(findings):
    return [(f.id, f.severity, f.path) for f in findings]


def test_recipe_misplaced_verbs_is_an_error():
    findings = lint_policy(yamlio.load_file(str(RECIPE)), 34)
    assert all_of(findings) == [("KA033", "info", "omitManagedFields"),
                                ("KA003", "error", "rules[3].resources[0].verbs")]
    assert has_errors(findings)
    hint = next(f.hint for f in findings if f.id == "KA003")
    assert "sibling of 'resources'" in hint


def test_unknown_harmless_field_is_a_warning():
    findings = lint("- level: Metadata\n  comment: x\n")
    assert ids(findings) == [("KA003", "rules[0].comment")]
    assert findings[0].severity == "warning"


def test_refused_policy_and_removed_api_version():
    findings = lint_policy(yamlio.load("apiVersion: audit.k8s.io/v1beta1\nrules:\n- level: All\n"), 34)
    assert all_of(findings) == [("KA002", "error", "apiVersion"), ("KA031", "warning", "omitStages"),
                                ("KA001", "error", "rules[0].level")]
    older = lint_policy(yamlio.load("apiVersion: audit.k8s.io/v1beta1\nrules:\n- level: All\n"), 23)
    assert [(f.id, f.severity) for f in older if f.id == "KA002"] == [("KA002", "warning")]


@pytest.mark.parametrize("rule,expected", [
    ("- level: RequestResponse\n", ["KA010", "KA011", "KA012", "KA012", "KA013", "KA013"]),
    ("- level: Request\n  resources: [{group: ''}]\n", ["KA010", "KA011", "KA013"]),
    ("- level: Request\n  verbs: [get, list, watch, delete]\n", ["KA013", "KA013"]),
    ("- level: RequestResponse\n  verbs: [get]\n  resources: [{resources: [secrets]}]\n", ["KA010"]),
    ("- level: RequestResponse\n  resources: [{resources: [serviceaccounts/token]}]\n", ["KA012"]),
    ("- level: Request\n  resources: [{resources: [serviceaccounts/*]}]\n", []),
    ("- level: Request\n  resources: [{group: authentication.k8s.io}]\n", ["KA012"]),
    # TokenReviews are cluster-scoped: namespace "" only
    ("- level: RequestResponse\n  namespaces: [kube-system]\n",
     ["KA010", "KA011", "KA012", "KA013", "KA013"]),
    ("- level: RequestResponse\n  namespaces: ['']\n",
     ["KA010", "KA011", "KA012", "KA012", "KA013", "KA013"]),
])
def test_bodies_of_sensitive_resources(rule, expected):
    found = sorted(f.id for f in lint(rule + TAIL) if f.id.startswith("KA01"))
    assert found == sorted(expected)


def test_sensitive_resources_behind_a_metadata_rule_are_fine():
    rules = ("- level: Metadata\n  resources:\n  - {group: '', resources: [secrets, configmaps, "
             "serviceaccounts/token, events]}\n  - {group: authentication.k8s.io, resources: [tokenreviews]}\n"
             "  - {group: events.k8s.io, resources: [events]}\n- level: RequestResponse\n")
    assert [f for f in lint(rules) if f.id.startswith("KA01")] == []


def test_partial_cover_does_not_stop_the_walk():
    rules = ("- level: Metadata\n  users: [admin]\n  resources: [{resources: [secrets]}]\n"
             "- level: RequestResponse\n  resources: [{resources: [secrets]}]\n")
    assert all_of(lint(rules + TAIL)) == [("KA010", "error", "rules[1].level")]


def test_shadowed_rules_are_reported_exactly():
    rules = ("- level: None\n  resources: [{group: '', resources: ['pods/*']}]\n"
             "- level: RequestResponse\n  verbs: [create]\n  resources: [{resources: [pods, pods/exec]}]\n"
             "- level: Metadata\n  users: [alice]\n  resources: [{resources: [pods, services]}]\n"
             + TAIL + "- level: Request\n  nonResourceURLs: [/x]\n")
    findings = lint(rules)
    # rules[2] is not shadowed: services escape rules[0]; rules[0] drops five CIS probes
    assert all_of(findings) == [("KA032", "warning", "rules[0]")] * 5 + [
        ("KA020", "warning", "rules[1]"), ("KA020", "warning", "rules[4]")]
    assert "rules[0] (level None)" in next(f.message for f in findings if f.path == "rules[1]")


def test_same_level_shadow_is_info():
    findings = lint(TAIL + TAIL)
    assert [(f.id, f.severity, f.path) for f in findings] == [("KA020", "info", "rules[1]")]


@pytest.mark.parametrize("earlier,later,expected", [
    ({"users": ("a",)}, {"users": ("a",), "verbs": ("get",)}, True),
    ({"users": ("a",)}, {}, False),
    ({"verbs": ("get", "list")}, {"verbs": ("get",)}, True),
    ({"user_groups": ("g", "h")}, {"user_groups": ("g",)}, True),
    ({"namespaces": ("a",)}, {"namespaces": ("a",), "non_resource_urls": ()}, True),
    ({"namespaces": ("a",)}, {"namespaces": ("b",)}, False),
    ({"non_resource_urls": ("/healthz*",)}, {"non_resource_urls": ("/healthz/etcd", "/healthz")}, True),
    ({"non_resource_urls": ("/healthz/*",)}, {"non_resource_urls": ("/healthz",)}, False),
    ({"non_resource_urls": ("*",)}, {"namespaces": ("a",)}, False),
])
def test_subsumes(earlier, later, expected):
    assert coverage.subsumes(Rule(level="None", **earlier), Rule(level="None", **later)) is expected


@pytest.mark.parametrize("outer,inner,expected", [
    ("*", "pods/exec", True), ("pods/*", "pods", True), ("pods/*", "pods/exec", True),
    ("pods", "pods/exec", False), ("*/status", "pods/status", True), ("*/status", "*/status", True),
    ("*/status", "pods/*", False), ("pods/*", "*/exec", False), ("pods/exec", "pods/*", False),
    ("*", "*", True), ("pods/*", "*", False)])
def test_pattern_covers(outer, inner, expected):
    assert coverage.pattern_covers(outer, inner) is expected


def test_resource_names_subsumption():
    from kubeadm_audit.policy.model import GroupResources as G
    earlier = Rule(level="None", resources=(G("", ("configmaps",), ("a", "b")),))
    assert coverage.subsumes(earlier, Rule(level="x", resources=(G("", ("configmaps",), ("a",)),)))
    assert not coverage.subsumes(earlier, Rule(level="x", resources=(G("", ("configmaps",)),)))


@pytest.mark.parametrize("pattern,ok", [("*", True), ("pods", True), ("pods/log", True),
                                        ("*/status", True), ("pods/*", True), ("*/*", False),
                                        ("", False), ("a/b/c", False), ("pods//*", False),
                                        ("*//log", False), ("pods*/*", False), ("*/*log", False)])
def test_dead_patterns(pattern, ok):
    findings = lint(f"- level: None\n  resources: [{{resources: ['{pattern}']}}]\n" + TAIL)
    assert [(f.id, f.path) for f in findings if f.id == "KA021"] == (
        [] if ok else [("KA021", "rules[0].resources[0].resources[0]")])


@pytest.mark.parametrize("entry,expected", [
    ("{group: '', resources: [deployments]}", [("KA022", "error", "resources[0]")]),
    ("{resources: [deployments/scale]}", [("KA022", "error", "resources[0]")]),
    ("{group: apps, resources: [deployments, pods]}", [("KA022", "error", "resources[1]")]),
    ("{group: extensions, resources: [deployments]}", [("KA023", "warning", "resources[0]")]),
    ("{group: policy, resources: [podsecuritypolicies]}", [("KA023", "warning", "resources[0]")]),
    ("{group: '', resources: [pod]}", [("KA024", "warning", "resources[0]")]),
    ("{group: '', resources: [pod, deployments, secrets]}",
     [("KA024", "warning", "resources[0]"), ("KA022", "error", "resources[1]")]),
    ("{group: rbac.authorization.k8s.io, resources: [roles, '*', '*/status']}", []),
    ("{group: example.com, resources: [widgets]}", []),
    # group '*' is no wildcard before 1.36: kube-apiserver 1.34 refuses it (the old test, which
    # looked only at KA022-KA024 and at the first finding, did not see that)
    ("{group: '*', resources: [deployments]}", [("KA001", "error", "group")]),
    ("{group: app, resources: [deployments]}", [("KA022", "error", "group")]),
])
def test_api_groups(entry, expected):
    """Every finding of the entry, not only the first."""
    findings = lint(f"- level: Metadata\n  resources: [{entry}]\n" + TAIL)
    assert all_of(findings) == [(i, s, f"rules[0].resources[0].{p}") for i, s, p in expected]


def test_removed_resources_depend_on_the_version():
    rule = "- level: Metadata\n  resources: [{group: policy, resources: [podsecuritypolicies]}]\n"
    assert "KA023" not in [f.id for f in lint(rule + TAIL, minor=24)]
    assert "KA023" in [f.id for f in lint(rule + TAIL, minor=25)]
    ingress = "- level: Metadata\n  resources: [{group: extensions, resources: [ingresses]}]\n"
    found = [f for f in lint(ingress + TAIL, minor=22) if f.id == "KA023"]
    assert len(found) == 1 and "networking.k8s.io" in found[0].hint


def test_wrong_group_hint_names_the_group():
    finding = next(f for f in lint("- level: Metadata\n  resources: [{resources: [deployments]}]\n"
                                   + TAIL) if f.id == "KA022")
    assert "'apps'" in finding.message and "group: 'apps'" in finding.hint


def test_no_catch_all():
    findings = lint("- level: Metadata\n  verbs: [create]\n")
    assert all_of(findings) == [("KA030", "warning", "rules")] + [("KA032", "warning", "rules")] * 4
    assert "KA030" not in [f.id for f in lint(TAIL)]


def test_request_received_not_omitted():
    head = "apiVersion: audit.k8s.io/v1\nomitManagedFields: true\n"
    findings = lint("- level: None\n  verbs: [watch]\n- level: Metadata\n  omitStages: [RequestReceived]\n"
                    "- level: Request\n", head=head)
    assert [f.message for f in findings if f.id == "KA031"] == [
        "RequestReceived is logged for rules[2]: every request yields an extra event that "
        "repeats the request without its outcome"]
    assert "KA031" not in [f.id for f in lint(TAIL)]


def test_cis_probes():
    findings = lint("- level: None\n  resources: [{resources: ['pods/*']}]\n" + TAIL)
    messages = [f.message for f in findings if f.id == "KA032"]
    assert len(messages) == 5 and all("rules[0] gives it level None" in m for m in messages)
    nothing = lint("- level: Metadata\n  verbs: [list]\n")
    assert len([f for f in nothing if f.id == "KA032"]) == 8


def test_managed_fields_info():
    head = "apiVersion: audit.k8s.io/v1\nomitStages: [RequestReceived]\n"
    pods = "- level: Request\n  resources: [{resources: [pods]}]\n"
    assert ids(lint(pods + TAIL, head=head), "info") == [("KA033", "omitManagedFields")]
    assert ids(lint(pods + "  omitManagedFields: true\n" + TAIL,
                    head=head), "info") == []


def test_literal_star_and_unknown_verbs():
    findings = lint("- level: None\n  users: ['*']\n  verbs: ['*', GET, use, fetch]\n"
                    "  namespaces: ['*']\n" + TAIL)
    assert ids(findings, "warning") == [
        ("KA034", "rules[0].namespaces[0]"), ("KA034", "rules[0].users[0]"),
        ("KA034", "rules[0].verbs[0]"), ("KA035", "rules[0].verbs[1]"),
        ("KA035", "rules[0].verbs[2]"), ("KA035", "rules[0].verbs[3]")]
    hints = [f.hint for f in findings if f.id == "KA035"]
    assert "did you mean 'get'" in hints[0] and "authorization" in hints[1]


def test_every_id_is_registered():
    """Each id a check module writes is a registered check (the registry tests cover the rest)."""
    import re
    package = Path(__file__).parents[1] / "generator" / "kubeadm_audit" / "policy" / "lint"
    used = set()
    for module in package.glob("*.py"):
        used |= set(re.findall(r'"(KA\d{3})"', module.read_text()))
    assert used == set(CHECKS)


def test_every_preset_lints_clean():
    from kubeadm_audit import presets

    for name in presets.names():
        findings = lint_policy(dict(presets.get(name).policy), 34)
        assert [f for f in findings if f.severity != "info"] == [], name


# --- cost: lint is about linear in rules x patterns (issue 10.5) ----------------------------

def _random_rules(rng, count: int) -> tuple:
    """Rules drawn from the values where the coverage branches meet (stars, '/', '**', names)."""
    from kubeadm_audit.policy.model import GroupResources

    patterns = ["*", "*/*", "*/log", "*/status", "pods", "pods/*", "pods/log", "pods/status",
                "secrets", "secrets/*", "a/b/c", "", "/", "/x", "**/log", "pods/**", "*/", "pods/",
                "**"]
    urls = ["*", "/api*", "/api", "/apis/*", "/healthz", "**", "/a*", "/", "/apis"]
    rules = []
    for _ in range(count):
        fields = {}
        for name, values in (("users", ["a", "b", "*"]), ("user_groups", ["g", "h"]),
                             ("verbs", ["get", "list", "create"]), ("namespaces", ["", "ns"])):
            if rng.random() < 0.3:
                fields[name] = tuple(rng.sample(values, rng.randint(1, 2)))
        roll = rng.random()
        if roll < 0.6:
            fields["resources"] = tuple(
                GroupResources(rng.choice(["", "*", "apps"]),
                               tuple(rng.sample(patterns, rng.randint(0, 4)))
                               if rng.random() < 0.8 else (),
                               tuple(rng.sample(["x", "y", "z"], rng.randint(0, 2))))
                for _ in range(rng.randint(1, 3)))
        elif roll < 0.85:
            fields["non_resource_urls"] = tuple(rng.sample(urls, rng.randint(1, 3)))
        rules.append(Rule(level="None", **fields))
    return tuple(rules)


def test_first_subsuming_agrees_with_pairwise_subsumes():
    import random

    rng = random.Random(20261130)
    shadowed = 0
    for _ in range(1500):
        rules = _random_rules(rng, rng.randint(1, 8))
        expected = [next((e for e in range(later) if coverage.subsumes(rules[e], rules[later])),
                         None) for later in range(len(rules))]
        assert coverage.first_subsuming(rules) == expected, rules
        shadowed += sum(e is not None for e in expected)
    assert shadowed > 1000  # the draw exercises the interesting cases, not only misses


def _worst_case_policy(rules: int, patterns: int) -> dict:
    """Each rule shares all but its last pattern with every earlier rule: the pairwise worst."""
    shared = [f"res{j}" for j in range(patterns - 1)]
    return {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata", "resources": [
                {"group": "", "resources": [*shared, f"only{i}"]}]} for i in range(rules)]
            + [{"level": "Metadata", "resources": [{"group": "", "resources": ["res1"]}]}]}


def test_lint_of_200_rules_x_200_patterns_is_fast():
    import time

    start = time.process_time()  # CPU time: the machine may be shared
    findings = lint_policy(_worst_case_policy(200, 200), 34)
    elapsed = time.process_time() - start
    # The last rule is shadowed by the first; a pairwise check took 52 s (75 s here) for this,
    # the indexes about 0.3 s.
    assert [(f.id, f.path) for f in findings if f.id == "KA020"] == [("KA020", "rules[200]")]
    assert elapsed < 5, f"{elapsed:.1f} s"
