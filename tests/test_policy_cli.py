"""The policy commands through the real CLI (subprocess), exit codes and output."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import AUDIT_SAMPLES

FIXTURES = Path(__file__).parent / "fixtures" / "policy"
RECIPE = FIXTURES / "zeron-recipe.yaml"


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "kubeadm_audit", "policy", *map(str, args)],
                          input=stdin, capture_output=True, text=True, env=env, timeout=60)


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_recipe_is_loadable_but_warns_about_verbs():
    result = run("validate", RECIPE)
    assert result.returncode == 0, result.stderr
    assert "rules[3].resources[0].verbs" in result.stdout and "every verb" in result.stdout
    assert "valid (1 warning)" in result.stdout


def test_validate_refused_policy_exits_1(tmp_path):
    path = write(tmp_path, "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Everything\n")
    result = run("validate", path, RECIPE)
    assert result.returncode == 1
    assert f"{path}:1:1: error: apiVersion:" in result.stdout
    assert f"{path}:4:3: error: rules[0].level: unsupported value 'Everything'" in result.stdout
    assert "invalid" in result.stdout and f"{RECIPE}: valid" in result.stdout


def test_validate_json(tmp_path):
    path = write(tmp_path, "apiVersion: audit.k8s.io/v1\nrules: []\n")
    result = run("validate", path, "-o", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report == [{"file": str(path), "loadable": False, "findings": [
        {"id": "KA001", "path": "rules", "severity": "error", "stage": "load",
         "message": "a policy needs at least one rule: kube-apiserver refuses to load a policy "
                    "with 0 rules", "source": str(path), "line": 2, "column": 1, "hint": ""}]}]


@pytest.mark.parametrize("text,message", [("rules: [\n", "malformed YAML"),
                                          ("rules: {a: [1, 2}\n", "malformed YAML")])
def test_validate_malformed_yaml_exits_2(tmp_path, text, message):
    result = run("validate", write(tmp_path, text))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_validate_missing_file_exits_2(tmp_path):
    result = run("validate", tmp_path / "nope.yaml")
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_explain_text_says_which_rule_and_why():
    result = run("explain", "--policy", RECIPE, "--request",
                 '{"user":"alice","verb":"get","resource":"pods","namespace":"default"}')
    assert result.returncode == 0, result.stderr
    assert "match rules[3] (RequestResponse)" in result.stdout
    assert "skip  rules[0] (None): a nonResourceURLs rule never matches a resource request" \
        in result.stdout
    assert "=> level RequestResponse from rules[3]; omitStages: RequestReceived" in result.stdout
    assert "every verb" in result.stderr  # the dropped field is why `get` is caught


def test_explain_json_single_and_lines(tmp_path):
    result = run("explain", "--policy", RECIPE, "-o", "json", "--request",
                 '{"user":null,"verb":"get","path":"/healthz/etcd"}')
    assert json.loads(result.stdout) == {"level": "None", "omitStages": [],
                                         "omitManagedFields": False, "rule": 0}
    # Go writes an unauthenticated request's empty groups as null: read as no groups (issue 11)
    null_groups = run("explain", "--policy", RECIPE, "-o", "json", "--request",
                      '{"user":null,"groups":null,"verb":"get","path":"/healthz/etcd"}')
    assert null_groups.returncode == 0 and null_groups.stdout == result.stdout, null_groups.stderr
    requests = write(tmp_path, '{"user":"a","verb":"get","path":"/api"}\n\n'
                               '{"user":"a","verb":"create","resource":"tokenreviews",'
                               '"apiGroup":"authentication.k8s.io"}\n', "r.jsonl")
    result = run("explain", "--policy", RECIPE, "--requests", requests, "-o", "json")
    lines = result.stdout.splitlines()
    assert [json.loads(line)["rule"] for line in lines] == [4, 1]
    stdin = run("explain", "--policy", RECIPE, "--requests", "-", "-o", "json",
                stdin=requests.read_text())
    assert stdin.stdout == result.stdout


@pytest.mark.parametrize("args,message", [
    (("--request", "{bad"), "--request: invalid request JSON"),
    (("--request", '{"usr":"a"}'), "unknown key 'usr'"),
    (("--request", '{"verb":1}'), "'verb' must be a string"),
    (("--request", "[]"), "must be a JSON object"),
    ((), "give exactly one of --request"),
])
def test_explain_bad_requests_exit_2(args, message):
    result = run("explain", "--policy", RECIPE, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_explain_bad_line_names_file_and_line(tmp_path):
    requests = write(tmp_path, '{"verb":"get"}\nnot json\n', "r.jsonl")
    result = run("explain", "--policy", RECIPE, "--requests", requests)
    assert result.returncode == 2
    assert f"{requests}: line 2: invalid request JSON" in result.stderr
    assert result.stdout == ""


def test_explain_refuses_a_policy_kube_apiserver_refuses(tmp_path):
    path = write(tmp_path, "apiVersion: audit.k8s.io/v1\nrules:\n- level: Loud\n")
    result = run("explain", "--policy", path, "--request", "{}")
    assert result.returncode == 2
    assert "rules[0].level: kube-apiserver would refuse this policy" in result.stderr


def test_lint_recipe_exits_1_with_id_and_hint():
    result = run("lint", RECIPE)
    assert result.returncode == 1
    assert f"{RECIPE}:33:5: rules[3].resources[0].verbs: error KA003:" in result.stdout
    assert "    fix: indent 'verbs' as a field of rules[3]" in result.stdout
    assert "1 error, 0 warnings, 1 info" in result.stdout


def test_lint_json_and_version(tmp_path):
    path = write(tmp_path, "apiVersion: audit.k8s.io/v1\nomitStages: [RequestReceived]\n"
                           "rules:\n- level: Metadata\n  resources: [{group: policy, "
                           "resources: [podsecuritypolicies]}]\n- level: Metadata\n")
    old = json.loads(run("lint", path, "-o", "json", "--kubernetes-version", "v1.24.3").stdout)
    new = run("lint", path, "-o", "json", "--kubernetes-version", "v1.25.0")
    assert new.returncode == 0  # warnings only
    assert [f["id"] for f in old[0]["findings"]] == []
    assert [f["id"] for f in json.loads(new.stdout)[0]["findings"]] == ["KA023"]


def test_lint_clean_and_list_checks(tmp_path):
    path = write(tmp_path, "apiVersion: audit.k8s.io/v1\nomitStages: [RequestReceived]\n"
                           "rules:\n- level: Metadata\n")
    result = run("lint", path)
    assert (result.returncode, result.stdout.strip()) == (0, f"{path}: clean")
    assert "KA010" in run("lint", "--list-checks").stdout
    listed = json.loads(run("lint", "--list-checks", "-o", "json").stdout)
    assert [c["id"] for c in listed][:3] == ["KA001", "KA002", "KA003"]
    last = {k: v for k, v in listed[-1].items() if k in ("id", "severity", "enabled")}
    assert last == {"id": "KA036", "severity": "info", "enabled": False}


LINT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  verbs: [GET]
- level: RequestResponse
  resources:
  - group: ""
    resources: [pods]
"""


def test_lint_json_has_every_finding_with_its_line(tmp_path):
    path = write(tmp_path, LINT_POLICY)
    result = run("lint", path, "-o", "json")
    assert result.returncode == 0, result.stderr    # warnings and infos only
    (report,) = json.loads(result.stdout)
    assert [(f["id"], f["severity"], f["path"], f["line"], f["column"]) for f in report["findings"]] == [
        ("KA033", "info", "omitManagedFields", 1, 1),     # not written: the document's start
        ("KA031", "warning", "omitStages", 1, 1),
        ("KA030", "warning", "rules", 3, 1)] + [("KA032", "warning", "rules", 3, 1)] * 7 + [
        ("KA035", "warning", "rules[0].verbs[0]", 5, 11)]
    assert all(f["source"] == str(path) for f in report["findings"])


def test_lint_fail_on(tmp_path):
    path = write(tmp_path, LINT_POLICY)
    assert run("lint", path).returncode == 0
    assert run("lint", path, "--fail-on", "error").returncode == 0
    assert run("lint", path, "--fail-on", "warning").returncode == 1
    assert run("lint", path, "--fail-on", "info", "--disable", "KA030", "--disable", "KA031",
               "--disable", "KA032", "--disable", "KA035").returncode == 1      # KA033 is info
    quiet = run("lint", path, "--fail-on", "info", "--disable", "KA030", "--disable", "KA031",
                "--disable", "KA032", "--disable", "KA035", "--disable", "KA033")
    assert (quiet.returncode, quiet.stdout.strip()) == (0, f"{path}: clean")
    assert run("lint", path, "--fail-on", "fatal").returncode == 2


def test_lint_disable_and_enable(tmp_path):
    path = write(tmp_path, LINT_POLICY + "- level: Metadata\n")

    def ids(*args: str) -> list:
        return [f["id"] for f in json.loads(run("lint", path, "-o", "json", *args).stdout)[0]["findings"]]

    assert "KA035" in ids() and "KA035" not in ids("--disable", "KA035")
    assert "KA036" not in ids()                                # off by default
    assert ids("--enable", "ka036").count("KA036") == 3        # /healthz, /livez, /readyz
    assert "KA036" not in ids("--enable", "KA036", "--disable", "KA036")


@pytest.mark.parametrize("option", ["--disable", "--enable"])
def test_lint_unknown_check_id_exits_2_naming_it(tmp_path, option):
    result = run("lint", write(tmp_path, LINT_POLICY), option, "KA010", option, "KA999")
    assert result.returncode == 2 and result.stdout == ""
    assert "'KA999'" in result.stderr and option in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_lint_reports_repeated_fields_on_their_line(tmp_path):
    path = write(tmp_path, "apiVersion: audit.k8s.io/v1\nomitStages: [RequestReceived]\nrules:\n"
                           "- level: None\n  level: Metadata\n")
    result = run("lint", path)
    assert result.returncode == 0 and result.stderr == ""
    assert f"{path}:5: line 5: warning KA003: 'level' is given more than once" in result.stdout


def test_lint_bad_version_and_no_files_exit_2():
    assert run("lint", RECIPE, "--kubernetes-version", "latest").returncode == 2
    assert run("lint").returncode == 2


METADATA_POLICY = ("apiVersion: audit.k8s.io/v1\nomitStages: [RequestReceived]\n"
                   "rules:\n- level: Metadata\n")


def _event(audit_id: str, second: int) -> str:
    return json.dumps({"kind": "Event", "level": "Metadata", "auditID": audit_id,
                       "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/d/pods",
                       "verb": "list", "user": {"username": "u"},
                       "objectRef": {"resource": "pods", "namespace": "d"},
                       "stageTimestamp": f"2026-01-01T00:00:{second:02d}.000000Z"})


def test_simulate_real_logs_with_compare_json(tmp_path):
    policy = write(tmp_path, METADATA_POLICY)
    result = run("simulate", "--policy", RECIPE, "--compare", policy, "-o", "json",
                 AUDIT_SAMPLES / "audit2rbac-demo.log", AUDIT_SAMPLES / "falco-k8s-audit-trace-events.jsonl")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["input"]["requests"] == 88 and report["input"]["malformed"] == 0
    assert report["policy"]["file"] == str(RECIPE)
    # pods (every verb, the misplaced `verbs` being dropped) and subjectaccessreviews
    assert [(t["from"], t["to"]) for t in report["compare"]["transitions"]] == \
        [("Metadata", "RequestResponse")]
    assert report["compare"]["delta"]["events"] == report["policy"]["events"] - \
        report["compare"]["events"]
    assert report["policy"]["webhook"]["capacityEventsPerSecond"] == 4000


def test_simulate_text_stdin():
    text = (AUDIT_SAMPLES / "audit2rbac-demo.log").read_text()
    result = run("simulate", "--policy", RECIPE, "-", stdin=text)
    assert result.returncode == 0, result.stderr
    assert "Replayed 37 events = 37 requests" in result.stdout
    assert "webhook: keeps up" in result.stdout
    assert "\r" not in result.stderr  # no progress bar when stderr is not a terminal


def test_simulate_batch_size_one_falls_behind(tmp_path):
    log = tmp_path / "audit.log"
    log.write_text("".join(_event(f"id{i}", i // 30) + "\n" for i in range(600)))  # 30/s for 20 s
    result = run("simulate", "--policy", write(tmp_path, METADATA_POLICY), log,
                 "--webhook-batch-max-size", "1")
    assert result.returncode == 0
    assert "falls behind" in result.stdout and "capacity of 10 events/s" in result.stdout
    ok = run("simulate", "--policy", write(tmp_path, METADATA_POLICY), log)
    assert "keeps up" in ok.stdout


def test_simulate_empty_and_garbage_logs_exit_2(tmp_path):
    policy = write(tmp_path, METADATA_POLICY)
    empty = tmp_path / "empty.log"
    empty.write_text("")
    result = run("simulate", "--policy", policy, empty)
    assert result.returncode == 2
    assert result.stderr.strip() == f"kubeadm-audit: error: {empty}: no audit events to replay " \
                                    f"(0 lines, 0 malformed)"
    garbage = tmp_path / "garbage.log"
    garbage.write_text("garbage\n{}\n")
    result = run("simulate", "--policy", policy, garbage)
    assert result.returncode == 2 and f"first malformed at {garbage}:1, {garbage}:2" in result.stderr


def test_simulate_malformed_lines_are_reported_not_fatal(tmp_path):
    log = tmp_path / "audit.log.gz"
    import gzip

    log.write_bytes(gzip.compress(("oops\n" + _event("a", 1) + "\n").encode()))
    result = run("simulate", "--policy", write(tmp_path, METADATA_POLICY), log, "-o", "json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["input"]["malformedAt"] == [f"{log}:1"]
    assert "1 malformed line(s) skipped" in result.stderr


def test_simulate_unknown_level_in_policy_exits_2(tmp_path):
    policy = write(tmp_path, "apiVersion: audit.k8s.io/v1\nrules:\n- level: Verbose\n")
    log = tmp_path / "a.log"
    log.write_text(_event("a", 1) + "\n")
    result = run("simulate", "--policy", policy, log)
    assert result.returncode == 2
    assert "rules[0].level" in result.stderr and "'Verbose'" in result.stderr


def test_show_matrix_levels_and_rules(tmp_path):
    path = write(tmp_path, "apiVersion: audit.k8s.io/v1\nomitStages: [RequestReceived]\nrules:\n"
                           "- level: None\n  users: [system:kube-proxy]\n  verbs: [watch]\n"
                           "- level: None\n  nonResourceURLs: ['/healthz*']\n"
                           "- level: Metadata\n  resources: [{resources: [secrets, 'pods/*']}]\n"
                           "- level: RequestResponse\n  verbs: [create]\n"
                           "- level: Request\n")
    result = run("show", path, "--matrix")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[2:-1]}
    assert lines["secrets"] == ["Meta"] * 8
    assert lines["pods/exec"] == ["Meta", "Meta"]
    assert lines["configmaps"][:4] == ["Req", "Req", "Req", "ReqResp"]
    assert lines["/healthz"] == ["-"]
    proxy = run("show", path, "--matrix", "--user", "system:kube-proxy", "--rules", "-o", "json")
    rows = {row["resource"]: row["verbs"] for row in json.loads(proxy.stdout)["rows"]}
    assert rows["services"]["watch"] == {"level": "None", "omitStages": ["RequestReceived"],
                                         "omitManagedFields": False, "rule": 0}
    assert rows["services"]["get"]["rule"] == 4


def test_show_matrix_unauthenticated_and_rule_list(tmp_path):
    path = write(tmp_path, "apiVersion: audit.k8s.io/v1\nrules:\n"
                           "- level: Metadata\n  userGroups: [system:authenticated]\n")
    unauth = json.loads(run("show", path, "--matrix", "--unauthenticated", "-o", "json").stdout)
    assert unauth["user"] is None
    assert {cell["level"] for row in unauth["rows"] for cell in row["verbs"].values()} == {"None"}
    listing = run("show", path)
    assert "rules[0] Metadata        groups system:authenticated" in listing.stdout


def test_progress_bar_counts_bytes_and_clears_its_line(tmp_path, capsys):
    from kubeadm_audit.cli.policy.simulate import _Progress

    log = tmp_path / "a.log"
    log.write_text("x" * 99 + "\n")
    progress = _Progress((str(log),))
    assert progress.total == 100
    list(progress.wrap([("a", 1, [b"x" * 49 + b"\n"])]))
    progress.update(1)
    progress.close()
    err = capsys.readouterr().err
    assert " 50% 1 lines" in err and err.endswith("\r") and "\033" not in err
    assert _Progress(("-",)).total == 0  # stdin: a line counter, no percentage


def test_simulate_legacy_format_gets_a_hint(tmp_path):
    log = tmp_path / "legacy.log"
    log.write_text('2026-01-01T00:00:00Z AUDIT: id="1" stage="ResponseComplete" ip="10.0.0.1" '
                   'method="get" user="a" groups="" as="<self>" asgroups="<lookup>" '
                   'user-agent="x" namespace="d" uri="/api/v1/namespaces/d/pods" response="200"\n')
    result = run("simulate", "--policy", write(tmp_path, METADATA_POLICY), log)
    assert result.returncode == 2
    assert "--audit-log-format=legacy" in result.stderr and "Traceback" not in result.stderr


def test_duplicate_fields_warn_and_the_last_value_wins_as_in_kube_apiserver(tmp_path):
    import json

    from conftest import run_cli

    policy = tmp_path / "dup.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  level: Metadata\n")
    validated = run_cli("policy", "validate", policy)
    assert validated.returncode == 0
    assert "line 5: 'level' is given more than once" in validated.stdout
    explained = run_cli("policy", "explain", "--policy", policy, "--request", '{"verb": "get", "path": "/x"}',
                        "-o", "json")
    assert explained.returncode == 0 and json.loads(explained.stdout)["level"] == "Metadata"
    assert "given more than once" in explained.stderr
