"""The plugin 'kubeadm-audit plugin install' writes starts Python without ``site`` (issue 10, item 5).

kustomize starts the plugin once per build of every overlay, so the launcher runs
``python -S`` with the search path the installation had at install time instead of
letting ``site`` work it out (the .pth files, the user site, sitecustomize) on every
call. These tests check that the path it writes is the installation's own (not the
installing shell's PYTHONPATH or working directory) and that the plugin still finds
PyYAML and this package with nothing in the environment to help it.
"""
from __future__ import annotations

import os
import subprocess
import sys

from kubeadm_audit import kustomize_plugin
from pipelines import audit_config, install_plugin, run_cli
from test_krm import KCP, kpt_style_list


def test_search_path_is_the_installations_own(tmp_path):
    site, extra, gone = tmp_path / "site-packages", tmp_path / "from-pythonpath", tmp_path / "gone"
    site.mkdir()
    extra.mkdir()
    path = [str(tmp_path), str(extra), "", str(site), str(gone), str(site)]
    assert kustomize_plugin.search_path(path, False, str(extra)) == [str(site)]
    # with -P (safe_path) Python put no script directory first: nothing is dropped for it
    assert kustomize_plugin.search_path(path, True, str(extra)) == [str(tmp_path), str(site)]
    assert kustomize_plugin.search_path(path, False, None) == [str(extra), str(site)]


def test_the_launcher_runs_python_without_site():
    text = kustomize_plugin.script("/usr/bin/python3", "/pkg", ["/site"])
    assert text.startswith("#!/usr/bin/python3 -S\n")
    assert "sys.path.insert(0, '/pkg')" in text and "['/site']" in text
    long = kustomize_plugin.script("/opt/a path/" + "x" * 150 + "/python", "/pkg", ["/site"])
    assert long.startswith("#!/bin/sh\n''''exec '/opt/a path/") and " -S \"$0\" \"$@\"" in long
    compile(long, "plugin", "exec")


def test_the_plugin_finds_its_packages_with_a_bare_environment(tmp_path):
    plugin = install_plugin(tmp_path / "home")
    assert plugin.read_text().startswith(f"#!{sys.executable} -S\n")
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}     # no PYTHONPATH, no VIRTUAL_ENV
    text = kpt_style_list([KCP], audit_config())
    ours = subprocess.run([str(plugin)], input=text, capture_output=True, text=True, cwd=tmp_path, env=bare)
    assert ours.returncode == 0, ours.stderr
    reference = run_cli("krm", input=text, cwd=tmp_path)
    assert reference.returncode == 0 and ours.stdout == reference.stdout   # byte for byte what the CLI writes
    probe = subprocess.run([str(plugin), "--help"], capture_output=True, text=True, env=bare)
    assert probe.returncode == 0 and "usage: kubeadm-audit krm" in probe.stdout


def test_an_install_from_a_shell_with_pythonpath_does_not_keep_it(tmp_path):
    stray = tmp_path / "stray"
    stray.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(stray), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "kubeadm_audit", "plugin", "install", "--plugin-home",
                             str(tmp_path / "home")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    plugin = tmp_path / "home" / "kubeadm-audit.dev" / "v1alpha1" / "auditconfig" / "AuditConfig"
    assert str(stray) not in plugin.read_text() and str(tmp_path) + "'" not in plugin.read_text()


def test_the_plugin_ends_with_mains_exit_code_and_its_messages(tmp_path):
    """The launcher ends the process without the interpreter's teardown (krm.run): the
    exit code, stdout and stderr must still be exactly what main gives."""
    plugin = install_plugin(tmp_path / "home")
    bad = kpt_style_list([KCP], audit_config(preset="loudest"))
    ours = subprocess.run([str(plugin)], input=bad, capture_output=True, text=True, cwd=tmp_path)
    reference = run_cli("krm", input=bad, cwd=tmp_path)
    assert ours.returncode == reference.returncode == 2
    assert ours.stderr == reference.stderr and "loudest" in ours.stderr and "Traceback" not in ours.stderr
    assert ours.stdout == reference.stdout and "results:" in ours.stdout
