"""CLI conventions: version, help with examples, exit codes, colour, completion, make install."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest
from conftest import ROOT, run_cli

from kubeadm_audit import __version__


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and __version__ in result.stdout


@pytest.mark.parametrize("command", [["generate"], ["flags", "validate"], ["policy", "validate"], ["policy", "lint"],
                                     ["policy", "explain"], ["policy", "simulate"], ["policy", "show"],
                                     ["kubeadm-config", "merge"], ["manifest", "apply"], ["manifest", "check"],
                                     ["plugin", "install"], ["krm"]])
def test_help_has_examples(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "Examples:" in result.stdout


def test_unknown_command_and_option_exit_2_one_line():
    for args in (["frobnicate"], ["generate", "--out", "x", "--bogus"]):
        result = run_cli(*args)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_no_colour_when_not_a_terminal(tmp_path):
    result = run_cli("generate", "--out", tmp_path / "b", "--no-log", env={"NO_COLOR": ""})
    assert "\x1b[" not in result.stderr and "\x1b[" not in result.stdout


def test_shell_completion_script():
    result = run_cli(env={"_KUBEADM_AUDIT_COMPLETE": "bash_source"})
    assert result.returncode == 0 and "complete" in result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_copies_bundle_files_with_modes(tmp_path):
    bundle = tmp_path / "bundle"
    ca = ROOT / "tests" / "fixtures" / "tls" / "ca.pem"
    assert run_cli("generate", "--preset", "zeron", "--webhook-server", "https://10.0.0.5:8080",
                   "--ca-file", ca, "--out", bundle).returncode == 0
    root = tmp_path / "root"
    result = subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"BUNDLE={bundle}", f"DESTDIR={root}"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    webhook = root / "etc/kubernetes/audit-webhook.yaml"
    assert webhook.read_text() == (bundle / "audit-webhook.yaml").read_text()
    assert stat.S_IMODE(os.stat(webhook).st_mode) == 0o600
    assert (root / "etc/kubernetes/audit-policy.yaml").exists()
    missing = subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"BUNDLE={tmp_path / 'none'}"],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "no bundle" in missing.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_generate_lets_the_audit_config_choose_the_preset(tmp_path):
    def dry(*args):
        result = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "--preset" not in dry("generate", "CONFIG=audit.yaml", "OUT=x")
    assert "--preset falco" in dry("generate", "PRESET=falco", "OUT=x")
    assert dry("join", "BUNDLE=b", "JOIN_CONFIG=j.yaml") == dry("join-control-plane", "BUNDLE=b", "JOIN_CONFIG=j.yaml")
