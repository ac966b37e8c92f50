"""What the user reads: --help lists only what works, no markup, completion of file arguments."""
from __future__ import annotations

import re
import subprocess

import pytest

from conftest import ROOT, one_error_line, run_cli

COMMANDS = ("generate", "policy validate", "policy lint", "policy explain", "policy simulate",
            "policy show", "flags validate", "kubeadm-config merge", "manifest apply", "manifest check",
            "plugin install")


def _options(help_text: str) -> set:
    return set(re.findall(r"^\s+(--[a-z][a-z-]*)", help_text, re.M))


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_markup(command):
    result = run_cli(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    for markup in ("``", "\\b", ":func:", ":mod:", "**"):
        assert markup not in result.stdout, (command, markup)


@pytest.mark.parametrize("command", ("manifest apply", "manifest check"))
def test_manifest_help_lists_no_option_that_does_nothing_there(command):
    shown = _options(run_cli(*command.split(), "--help").stdout)
    assert {"--config", "--preset", "--webhook-server", "--kubernetes-version", "--policy-path"} <= shown
    assert not shown & {"--kubeadm-api", "--kubeadm-route", "--patches-dir"}
    rejected = run_cli(*command.split(), "x.yaml", "--kubeadm-api", "v1beta4")
    assert rejected.returncode == 2 and "No such option" in rejected.stderr


def test_merge_help_names_the_version_it_uses():
    text = run_cli("kubeadm-config", "merge", "--help").stdout
    assert "--kubeadm-api" not in _options(text) and "--kubeadm-route" not in _options(text)
    flat = " ".join(text.split())
    assert "[default: FILE's kubernetesVersion" in flat
    assert not re.search(r"default: v1\.\d+", flat)


def _complete(words: str, env_extra: dict | None = None, cwd=None) -> list:
    env = {"_KUBEADM_AUDIT_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)), **(env_extra or {})}
    result = run_cli(env=env, cwd=cwd)
    return result.stdout.splitlines()


@pytest.mark.parametrize("words", [
    "kubeadm-audit manifest check ",
    "kubeadm-audit kubeadm-config merge ",
    "kubeadm-audit policy validate ",
    "kubeadm-audit policy simulate --policy ",
    "kubeadm-audit generate --ca-file ",
    "kubeadm-audit generate --config ",
])
def test_completion_completes_file_arguments(words):
    # click's bash completion answers "file," and leaves the listing to the shell (compgen -f)
    assert "file," in _complete(words)


def test_completion_of_options_and_commands_still_works():
    assert "plain,manifest" in _complete("kubeadm-audit man")
    assert "plain,--preset" in _complete("kubeadm-audit generate --pre")


def test_make_clean_removes_the_benchmark_data():
    dry = subprocess.run(["make", "-C", str(ROOT), "-n", "clean"], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert re.search(r"rm -rf .*\bbench/\.data\b", dry.stdout), dry.stdout
    assert ".cache" not in dry.stdout    # the shared build cache of the real components stays


_POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: {level}\n"
_MULTI = {
    "two policies": _POLICY.format(level="Metadata") + "---\n" + _POLICY.format(level="None"),
    "a broken second document": _POLICY.format(level="Metadata") + "---\n: : [\n",
    "a trailing separator": _POLICY.format(level="Metadata") + "---\n",
    "explicit document end": _POLICY.format(level="Metadata") + "...\n---\n" + _POLICY.format(level="None"),
}


@pytest.mark.parametrize("case", sorted(_MULTI))
def test_policy_validate_reads_the_first_document_as_kube_apiserver_does(tmp_path, case):
    path = tmp_path / "policy.yaml"
    path.write_text(_MULTI[case])
    result = run_cli("policy", "validate", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "malformed" not in result.stdout + result.stderr
    if case == "a trailing separator":
        assert "warning" not in result.stdout
    else:
        assert "kube-apiserver reads one policy per file, the first document" in result.stdout
    explained = run_cli("policy", "explain", "--policy", path, "--request",
                        '{"user":"a","verb":"get","resource":"pods","resourceRequest":true}', "-o", "json")
    assert explained.returncode == 0 and '"level": "Metadata"' in explained.stdout, explained.stderr


def test_first_document_only_agrees_with_kube_apiserver():
    import oracle

    request = {"user": "a", "groups": None, "verb": "get", "namespace": "", "apiGroup": "", "apiVersion": "v1",
               "resource": "pods", "subresource": "", "name": "", "path": "", "resourceRequest": True}
    cases = [(text, [request]) for text in _MULTI.values()]
    cases.append(("---\n---\n" + _POLICY.format(level="None"), [request]))   # an empty first document
    found = [problem for version in oracle.ORACLE_VERSIONS for problem in oracle.check_policies(version, cases)]
    assert not found, oracle.report(found)


def _log(path, events: int = 20) -> None:
    import json

    lines = []
    for i in range(events):
        lines.append(json.dumps({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"id-{i}",
            "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/default/pods", "verb": "list",
            "user": {"username": "alice", "groups": ["system:authenticated"]},
            "objectRef": {"resource": "pods", "namespace": "default", "apiVersion": "v1"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": f"2026-11-30T10:00:{i:02d}.000000Z",
            "stageTimestamp": f"2026-11-30T10:00:{i:02d}.100000Z"}))
    path.write_text("\n".join(lines) + "\n")


def test_simulate_takes_the_bundles_policy_and_webhook_settings(tmp_path):
    import json

    bundle = tmp_path / "zeron"
    made = run_cli("generate", "--preset", "zeron", "--webhook-server", "https://192.0.2.10:8080",
                   "--insecure-skip-tls-verify", "--webhook-throttle-qps", "7", "--out", bundle)
    assert made.returncode == 0, made.stderr
    log = tmp_path / "audit.log"
    _log(log)
    result = run_cli("policy", "simulate", "--bundle", bundle, log, "-o", "json")
    assert result.returncode == 0, result.stderr
    hook = json.loads(result.stdout)["policy"]["webhook"]
    # the zeron preset's --audit-webhook-batch-max-size=1 and the qps given at generate time
    assert (hook["maxSize"], hook["throttleQps"]) == (1, 7.0)
    same = run_cli("policy", "simulate", "--policy", bundle / "audit-policy.yaml", log, "-o", "json",
                   "--webhook-batch-max-size", "1", "--webhook-throttle-qps", "7",
                   "--webhook-throttle-burst", str(hook["throttleBurst"]))
    assert json.loads(same.stdout)["policy"]["webhook"] == hook
    # an option given on the command line wins over the bundle
    override = run_cli("policy", "simulate", "--bundle", bundle, log, "-o", "json", "--webhook-batch-max-size", "50")
    assert json.loads(override.stdout)["policy"]["webhook"]["maxSize"] == 50


def test_simulate_needs_a_policy_or_a_bundle(tmp_path):
    log = tmp_path / "audit.log"
    _log(log, 2)
    neither = run_cli("policy", "simulate", log)
    assert neither.returncode == 2 and "--policy FILE or --bundle DIR" in neither.stderr
    not_bundle = run_cli("policy", "simulate", "--bundle", tmp_path, log)
    assert not_bundle.returncode == 2 and "not a bundle" in one_error_line(not_bundle)
