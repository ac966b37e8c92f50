"""The one Finding/Severity type: ordering, equality with the old strings, placement in files."""
from __future__ import annotations

import json

import pytest

from kubeadm_audit import flags, yamlio
from kubeadm_audit.findings import Finding, Severity, at_or_above
from kubeadm_audit.policy import document, validation


def test_severities_order_by_weight_not_alphabet():
    assert Severity.INFO < Severity.WARNING < Severity.ERROR
    assert sorted([Severity.ERROR, Severity.INFO, Severity.WARNING]) == [
        Severity.INFO, Severity.WARNING, Severity.ERROR]
    assert Severity.WARNING >= "warning" and not Severity.INFO >= "warning"
    with pytest.raises(TypeError):
        _ = Severity.INFO < "loud"


def test_severity_is_the_string_it_was():
    assert Severity.ERROR == "error" and f"{Severity.WARNING}" == "warning" and str(Severity.INFO) == "info"
    assert json.dumps([Severity.ERROR]) == '["error"]'
    assert {"error": 1}[Severity.ERROR] == 1
    with pytest.raises(ValueError, match="one of info, warning, error"):
        Severity.parse("fatal")


def test_finding_is_frozen_and_placed_by_copy():
    finding = Finding("KA001", "error", "bad", path="rules")
    assert finding.severity is Severity.ERROR and str(finding) == "rules: bad"
    placed = finding.at("p.yaml", 3, 5)
    assert (finding.line, placed.source, placed.line, placed.column) == (None, "p.yaml", 3, 5)
    with pytest.raises(AttributeError):
        finding.line = 3  # type: ignore[misc]
    assert placed.to_json() == {"id": "KA001", "severity": "error", "message": "bad", "path": "rules",
                                "source": "p.yaml", "line": 3, "column": 5, "hint": "", "stage": ""}


def test_finding_is_a_value():
    finding = Finding("KA001", "error", "bad", path="rules", line=2)
    same = Finding("KA001", Severity.ERROR, "bad", path="rules", line=2)
    assert finding == same and hash(finding) == hash(same) and len({finding, same}) == 1
    assert finding != finding.at(line=3) and finding != ("KA001",)
    assert finding.replace(hint="h").hint == "h" and finding.hint == ""
    with pytest.raises(TypeError):
        finding.replace(colour="red")
    with pytest.raises(AttributeError):
        del finding.path
    assert repr(finding) == ("Finding(id='KA001', severity=<Severity.ERROR: 'error'>, message='bad', "
                             "path='rules', source='', line=2, column=None, hint='', stage='')")
    import pickle

    assert pickle.loads(pickle.dumps(finding)) == finding


def test_at_or_above():
    found = [Finding("X", Severity.WARNING, "w")]
    assert at_or_above(found, Severity.WARNING) and at_or_above(found, Severity.INFO)
    assert not at_or_above(found, Severity.ERROR) and not at_or_above([], Severity.INFO)


def test_validation_and_flags_speak_finding():
    found = validation.validate_policy({"apiVersion": "audit.k8s.io/v1beta1", "rules": [
        {"level": "Loud", "comment": "x"}]}, 30)
    assert all(isinstance(f, Finding) for f in found)
    assert [(f.id, f.severity, f.path, f.stage) for f in found] == [
        ("KA002", "error", "apiVersion", "decode"),
        ("KA003", "warning", "rules[0].comment", "decode"),
        ("KA001", "error", "rules[0].level", "validate")]
    problems = flags.validate({"audit-log-path": "/l/a.log", "audit-log-maxsize": "-1"})
    assert all(isinstance(p, Finding) for p in problems)
    assert {(p.id, p.severity, p.path) for p in problems} == {
        ("KF001", "error", "--audit-log-maxsize"), ("KF002", "warning", "--audit-policy-file")}
    negative = next(p for p in problems if p.id == "KF001")
    assert str(negative) == "--audit-log-maxsize: --audit-log-maxsize -1 can't be a negative number"


POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
  resources:
  - group: ""
    resources: [pods, "a/b/c"]
    verbs: [get]
- level: None
  level: Request
"""


def test_findings_are_placed_on_their_lines():
    data, read, locate = document.read_located(POLICY, "p.yaml")
    found = document.place(document.dedupe(read + validation.validate_policy(data)), locate, "p.yaml")
    where = {(f.path, f.line, f.column) for f in found}
    assert ("rules[0].resources[0].verbs", 8, 5) in where    # the key of the misplaced field
    assert ("line 10", 10, None) in where                    # the repeated key keeps its own line
    assert all(f.source == "p.yaml" for f in found)


@pytest.mark.parametrize("path,expected", [
    ("rules[0].resources[0].resources[1]", (7, 23)),
    ("rules[0].resources[0].group", (6, 5)),
    ("rules[1].level", (10, 3)),         # a repeated key: the last one, the value kept
    ("rules[7].level", (3, 1)),          # not written: the nearest written parent
    ("", (1, 1)),
])
def test_path_positions(path, expected):
    finding = Finding("X", "info", "m", path=path)
    placed = document.place([finding], document.read_located(POLICY)[2], "p")[0]
    assert (placed.line, placed.column) == expected
    # the same, composed again from the text (what JSON policies use)
    assert yamlio.positions(POLICY)(path) == (expected if path != "rules[7].level" else None)


def test_json_policies_are_placed_too():
    text = '{"apiVersion": "audit.k8s.io/v1",\n "rules": [\n  {"level": "Loud"}]}'
    data, _, locate = document.read_located(text)
    found = document.place(validation.validate_policy(data), locate, "p.json")
    assert [(f.path, f.line) for f in found] == [("rules[0].level", 3)]


def test_unparsable_text_places_nothing():
    assert yamlio.positions("a: [")("a") is None
    assert document.place([Finding("X", "info", "m", path="rules")], yamlio.positions("a: ["), "p")[0].line is None


def test_many_keys_are_located_in_linear_time():
    text = "a:\n" + "".join(f"  k{i}: {i}\n" for i in range(50000))
    locate = yamlio.positions(text)
    assert [locate(f"a.k{i}") for i in (0, 49999)] == [(2, 3), (50001, 3)]
    assert locate("a.k50000") is None and locate("a.k1.x") is None and locate("a[0]") is None
