"""CLI conventions: version, help with examples, exit codes, colour, completion, make install."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

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


def run_on_terminal(*args: str, env: dict) -> tuple:
    """(exit code, output) of ``kubeadm-audit ARGS`` with stdout and stderr on a pseudo-terminal."""
    import pty

    master, slave = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "kubeadm_audit", *map(str, args)], stdin=subprocess.DEVNULL,
                          stdout=slave, stderr=slave, env=env) as process:
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:         # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=120)
    os.close(master)
    return process.returncode, b"".join(chunks).decode()


#: A generate run that warns (a webhook that skips TLS verification): the warning is styled.
WARNS = ("generate", "--preset", "zeron", "--webhook-server", "https://10.0.0.5:8080",
         "--insecure-skip-tls-verify", "--out")


@pytest.mark.parametrize("no_color, coloured", [(None, True), ("", True), ("1", False), ("0", False)])
def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path, no_color, coloured):
    """no-color.org: NO_COLOR set to any non-empty value turns colour off; unset or empty does not."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    code, output = run_on_terminal(*WARNS, tmp_path / "tty", env=env)
    assert code == 0 and "insecure-skip-tls-verify" in output, output
    assert ("\x1b[" in output) == coloured, output
    piped = subprocess.run([sys.executable, "-m", "kubeadm_audit", *map(str, WARNS), tmp_path / "pipe"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert piped.returncode == 0 and "insecure-skip-tls-verify" in piped.stderr, piped.stderr
    assert "\x1b[" not in piped.stderr + piped.stdout


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
