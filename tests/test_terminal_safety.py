"""Issue 10.8: text from audit logs and user files never reaches a terminal as control codes.

In text mode every name, user, path and URI is shown with control characters and
bidi overrides escaped (``\\x1b``, ``\\u202e``); ``-o json`` keeps the exact strings.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kubeadm_audit.cli.output import terminal_safe

ESC = "\x1b]0;owned\x07\x1b[2J"  # set the window title, clear the screen
BIDI = "\u202e"                  # right-to-left override: shows text reversed
C1 = "\x9b31m"                   # one-byte CSI
HOSTILE = f"evil{ESC}{BIDI}{C1}\r\n"
POLICY = ("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
          "- level: Metadata\n")


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "kubeadm_audit", *map(str, args)],
                          input=stdin, capture_output=True, text=True, env=env, timeout=60)


def assert_inert(text: str) -> None:
    for unsafe in ("\x1b", "\x07", "\x9b", "\r", "\u202e"):
        assert unsafe not in text, repr(text)


def test_terminal_safe_escapes_controls_and_keeps_the_rest():
    assert terminal_safe("pods/log é ✓ \\x") == "pods/log é ✓ \\x"
    assert terminal_safe(HOSTILE) == "evil\\x1b]0;owned\\x07\\x1b[2J\\u202e\\x9b31m\\x0d\\x0a"


def _event(audit_id: str, user: str, uri: str) -> str:
    return json.dumps({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                       "auditID": audit_id, "stage": "ResponseComplete", "verb": "get",
                       "requestURI": uri, "user": {"username": user},
                       "objectRef": {"resource": f"pods{ESC}", "namespace": "default",
                                     "apiVersion": "v1"},
                       "requestReceivedTimestamp": "2026-01-01T00:00:00Z",
                       "stageTimestamp": "2026-01-01T00:00:01Z"})


def test_simulate_text_escapes_log_values_and_json_keeps_them(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    log = tmp_path / "audit.log"
    log.write_text(_event("a1", HOSTILE, f"/api/v1/{ESC}") + "\n" + _event("a2", "x", "/") + "\n"
                   + f"not json {ESC}\n")
    text = run("policy", "simulate", "--policy", policy, log, "--compare", policy)
    assert text.returncode == 0, text.stderr
    assert "evil\\x1b]0;owned\\x07" in text.stdout and "pods\\x1b]0;owned" in text.stdout
    assert_inert(text.stdout)
    assert_inert(text.stderr)
    data = json.loads(run("policy", "simulate", "--policy", policy, log, "-o", "json").stdout)
    assert HOSTILE in [row["name"] for row in data["policy"]["byUser"]]
    assert f"pods{ESC}" in [row["name"] for row in data["policy"]["byResource"]]


def test_explain_escapes_request_values(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("- level: Metadata\n",
                                     "- level: None\n  users: [alice]\n- level: Metadata\n"))
    requests = json.dumps({"user": HOSTILE, "verb": "get", "path": f"/x{ESC}"})
    result = run("policy", "explain", "--policy", policy, "--requests", "-", stdin=requests + "\n")
    assert result.returncode == 0, result.stderr
    assert "evil\\x1b" in result.stdout
    assert_inert(result.stdout)
    as_json = run("policy", "explain", "--policy", policy, "--requests", "-", "-o", "json",
                  stdin=requests + "\n")
    assert json.loads(as_json.stdout)["level"] == "Metadata"


@pytest.mark.parametrize("command", ["lint", "validate"])
def test_lint_and_validate_escape_file_names_and_values(tmp_path, command):
    path = tmp_path / f"p{ESC}.yaml"
    # YAML refuses raw control characters, but its double-quoted escapes make them
    path.write_text(POLICY + '- level: Request\n  verbs: ["gett\\e[2J"]\n  users: ["*\\u202e"]\n'
                    '  "bogus\\e[2J": 1\n')
    result = run("policy", command, path)
    assert result.returncode in (0, 1), result.stderr
    assert "p\\x1b]0;owned" in result.stdout and "\\x1b[2J" in result.stdout
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    data = json.loads(run("policy", command, path, "-o", "json").stdout)
    assert data[0]["file"] == str(path)


def test_error_lines_escape_the_file_name(tmp_path):
    path = tmp_path / f"missing{ESC}.yaml"
    result = run("policy", "validate", path)
    assert result.returncode == 2
    assert "missing\\x1b]0;owned" in result.stderr
    assert_inert(result.stderr)
